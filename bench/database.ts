/**
 * The benchmark database: on BENCH_DATABASE_URL (a superuser URL) or on an embedded PostgreSQL
 * started for the run; a fresh database either way, removed at the end. Seeds the demo tenants
 * through tenantry and bulk tickets straight into app.tickets as the superuser.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Tenantry } from '../src/index.js';
import { startEmbeddedPostgres } from '../src/embedded/embedded-postgres.js';
import { createPool, withDatabase } from '../src/data/driver/index.js';
import { demoTenants as placedDemoTenants, seedDemoTenants } from '../app/fixtures.js';

/** The demo tenants, all pooled: the HTTP and driver pairs measure the shared schema. */
export const demoTenants = placedDemoTenants.map((t) => ({ ...t, isolation: 'pooled' as const }));

export interface BenchDatabase {
  /** Superuser URL of the benchmark database. */
  readonly url: string;
  readonly name: string;
  /** `embedded` or the host of BENCH_DATABASE_URL. */
  readonly server: string;
  /** PostgreSQL runs on this machine (its backends' CPU time can be read from /proc). */
  readonly local: boolean;
}

export async function openBenchDatabase(onCleanup: (fn: () => Promise<void>) => void): Promise<BenchDatabase> {
  let serverUrl = process.env.BENCH_DATABASE_URL;
  let server: string;
  if (serverUrl) {
    server = new URL(serverUrl).host;
  } else {
    const dir = await mkdtemp(path.join(tmpdir(), 'tenantry-bench-'));
    onCleanup(() => rm(dir, { recursive: true, force: true }));
    // The cleanup stops the server on SIGINT/SIGTERM (not embedded-postgres's own hook, which
    // would end the process first); the folder goes at exit in any case.
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const embedded = await startEmbeddedPostgres({ dataDir: dir, persistent: false, exitOnSignal: false });
    onCleanup(() => embedded.stop());
    serverUrl = embedded.url;
    server = 'embedded';
  }
  const name = `tenantry_bench_${randomBytes(4).toString('hex')}`;
  const admin = createPool(serverUrl, { max: 1 });
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = serverUrl;
  onCleanup(async () => {
    const a = createPool(url, { max: 1 });
    try {
      await a.query(`drop database if exists ${name} with (force)`);
    } finally {
      await a.end();
    }
  });
  const host = new URL(serverUrl).hostname;
  return { url: withDatabase(serverUrl, name), name, server, local: ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host) };
}

export interface SeedResult {
  readonly bulkTenants: number;
  readonly ticketsPerTenant: number;
  readonly totalTickets: number;
  readonly seconds: number;
}

/**
 * The demo tenants (users, six tickets each), then `ticketsPerTenant` tickets for each of
 * `bulkTenants` synthetic tenants and for each demo tenant, so the benchmark tenant's lookups go
 * through a (tenant_id, id) index over ~100k rows. Ids are md5-derived UUIDs.
 */
export async function seedBench(tenantry: Tenantry, url: string, bulkTenants: number, ticketsPerTenant: number): Promise<SeedResult> {
  const t0 = performance.now();
  await seedDemoTenants(tenantry, demoTenants);
  const su = createPool(url, { max: 1 });
  try {
    await su.query(
      `insert into app.tickets (tenant_id, id, title, description, status, priority, created_at, updated_at)
       select t.tid, md5(t.tid::text || ':' || g)::uuid, 'Bulk ticket ' || g,
              repeat('Lorem ipsum dolor sit amet. ', 1 + g % 8),
              (array['open', 'pending', 'resolved', 'closed'])[1 + g % 4],
              (array['low', 'normal', 'high', 'urgent'])[1 + (g / 4) % 4],
              now() - make_interval(mins => g), now() - make_interval(mins => g)
         from (select md5('tenantry-bench-tenant-' || n)::uuid as tid from generate_series(1, $1::int) n
               union all select unnest($3::uuid[])) t,
              generate_series(1, $2::int) g`,
      [bulkTenants, ticketsPerTenant, demoTenants.map((d) => d.id)]);
    await su.query('vacuum analyze app.tickets');
    const [{ n } = { n: '0' }] = await su.query<{ n: string }>('select count(*)::text as n from app.tickets');
    return { bulkTenants, ticketsPerTenant, totalTickets: Number(n), seconds: (performance.now() - t0) / 1000 };
  } finally {
    await su.end();
  }
}

/** `count` ticket ids of one tenant, in a fixed pseudo-random order. */
export async function ticketIds(url: string, tenantId: string, count: number): Promise<string[]> {
  const su = createPool(url, { max: 1 });
  try {
    const rows = await su.query<{ id: string }>(
      'select id::text as id from app.tickets where tenant_id = $1 order by md5(id::text) limit $2', [tenantId, count]);
    if (rows.length < Math.min(count, 10)) throw new Error(`only ${rows.length} tickets for tenant ${tenantId}`);
    return rows.map((r) => r.id);
  } finally {
    await su.end();
  }
}

export async function serverVersion(url: string): Promise<string> {
  const su = createPool(url, { max: 1 });
  try {
    const [row] = await su.query<{ v: string }>('select version() as v');
    return row?.v ?? 'unknown';
  } finally {
    await su.end();
  }
}
