/**
 * `npx tsx bench/placements.ts`: what the three placements cost. A benchmark, not a test: it exits
 * non-zero only when the run itself is broken (a non-2xx response, a failed migration, a failed
 * audit, a server crash), never because a ratio misses its target (that is a WARN line).
 *
 *   1. provisioning: N tenants of each placement, created one at a time through
 *      withPlatformScope + tenantry.createTenant (placements interleaved), in a database of its own
 *      (dropped, with its tenant databases, before part 2)
 *   2. migration across S schema tenants: S schema tenants are created (parallel batches), then ONE
 *      added-column migration is applied to all S + 1 targets (the pooled schema and every tenant
 *      schema) with migrateAll at concurrency 1, then another at 4, then another at 8. Reset
 *      between runs: every run adds the NEXT migration to the same source (0002 at c=1, 0003 at
 *      c=4, 0004 at c=8, each one `alter table tickets add column ...` with a constant default,
 *      i.e. a catalog-only change), so each run applies exactly one migration to every target.
 *      The admin pool is sized concurrency + 1, as `tenantry migrate --concurrency N` does.
 *      "apply" is until the last target reported, "audit" the auditAll() that migrateAll runs after.
 *      Then kill and resume: the next migration through the CLI (`node bin/tenantry.js migrate
 *      --concurrency 4 --json`), SIGKILLed once a third of the targets reported, then run again to
 *      the end; the second run must apply exactly what the first did not.
 *   3. random-tenant read: the real helpdesk (child process) under autocannon, GET
 *      /api/v1/tickets/:id (a) for one schema tenant, (b) uniformly at random over S schema tenants
 *      (a JWT per tenant for its one user, signed with the server's secret); rounds alternate a, b, a, b, ... Besides
 *      req/s and latency: CPU time per request of the server process and of the PostgreSQL
 *      backends (from /proc, when PostgreSQL is local), which the machine's other load disturbs
 *      far less, and catalog lookups per request. BENCH_POOLED_CONTROL=1 adds (c) one pooled
 *      tenant and (d) S pooled tenants, to tell what is specific to schema tenants.
 *   4. cold database tenant: a fresh server; C database tenants hit once each, sequentially (the
 *      first request opens that tenant's pool), then again at once (warm); interleaved with the
 *      first and second request of C schema tenants (catalog cold, shared pool warm) as control
 *
 * PostgreSQL: BENCH_DATABASE_URL (a superuser URL) or an embedded server in a temp folder. On a
 * BENCH_DATABASE_URL server every database the run creates (its own and each tenant_<hex>) and
 * the t_<hex> roles of its schema tenants are dropped at the end. An embedded server is deleted
 * with all its databases when it stops, so only part 1's database is dropped one by one there
 * (BENCH_DROP=1 drops everything explicitly anyway).
 *
 * Results: tables on stdout and bench/results/placements.json. Settings: see `settings` below
 * (BENCH_PARTS=1,2,3,4, BENCH_SCHEMA_TENANTS=1000, BENCH_PROVISION_TENANTS=30, BENCH_COLD_TENANTS=100,
 * BENCH_MIGRATE_CONCURRENCY=4,8, BENCH_DURATION=6, BENCH_ROUNDS=3, BENCH_CONNECTIONS=16, ...).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tenantry, withPlatformScope, type Isolation, type MigrationRun } from '../src/index.js';
import { TokenService } from '../src/auth/token-service.js';
import { listTargets } from '../src/migrate/targets.js';
import { loadMigrations } from '../src/migrate/migration-files.js';
import { migrateAll } from '../src/migrate/orchestrator.js';
import { startEmbeddedPostgres } from '../src/embedded/embedded-postgres.js';
import { tenantDatabase, tenantRole } from '../src/core/tenant-ids.js';
import { createPool, ident, withDatabase } from '../src/data/driver/index.js';
import type { PlacementsOrchestratorMessage, PlacementsServerMessage } from './placements-server.js';
import { ROLE_PASSWORD, cleanupOnExit, clockTicks, machine } from './common.js';

// ---------------------------------------------------------------------------------------------
// Settings

function int(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}
function intList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (!list.length || list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${name} must be a comma-separated list of positive integers`);
  return list;
}

const settings = {
  parts: intList('BENCH_PARTS', [1, 2, 3, 4]),
  provision: {
    tenants: int('BENCH_PROVISION_TENANTS', 30, 1),
    warmup: int('BENCH_PROVISION_WARMUP', 2),
  },
  schemaTenants: int('BENCH_SCHEMA_TENANTS', 1000, 1),
  createConcurrency: int('BENCH_CREATE_CONCURRENCY', 6, 1),
  ticketsPerTenant: int('BENCH_TICKETS', 5, 1),
  migrate: {
    concurrency: intList('BENCH_MIGRATE_CONCURRENCY', [4, 8]),
    /** Also run one migration through tenantry.migrateAll() at this concurrency (its admin pool has 4 connections); 0: off. */
    viaTenantry: int('BENCH_MIGRATE_VIA_TENANTRY', 0),
  },
  http: {
    connections: int('BENCH_CONNECTIONS', 16, 1),
    duration: int('BENCH_DURATION', 6, 1),
    warmup: int('BENCH_WARMUP', 2),
    initialWarmup: int('BENCH_INITIAL_WARMUP', 5),
    rounds: int('BENCH_ROUNDS', 3, 1),
    pool: int('BENCH_POOL', 10, 1),
    requestsPerClient: 2000,
    /** Also load 1 pooled tenant vs N pooled tenants (c, d): is the b/a gap specific to schemas? */
    pooledControl: process.env.BENCH_POOLED_CONTROL === '1',
  },
  cold: {
    tenants: int('BENCH_COLD_TENANTS', 100, 1),
    createConcurrency: int('BENCH_COLD_CREATE_CONCURRENCY', 4, 1),
  },
};
const has = (part: number) => settings.parts.includes(part);

const JWT_SECRET = 'placements-bench-jwt-secret-0123456789abcdef';
const jwt = { secret: JWT_SECRET, issuer: 'tenantry', audience: 'tenantry-api', ttlSeconds: 3600 };
const projectRoot = fileURLToPath(new URL('../', import.meta.url));
const appMigrations = path.join(projectRoot, 'app', 'migrations');
const resultsFile = path.join(projectRoot, 'bench', 'results', 'placements.json');
const isolations: readonly Isolation[] = ['pooled', 'schema', 'database'];

/** The added-column migrations, one per migration run (see the header). */
const addedColumns = [
  { file: '0002_add_ticket_tags.sql', sql: "alter table tickets add column tags text[] not null default '{}';\n" },
  { file: '0003_add_ticket_channel.sql', sql: "alter table tickets add column channel text not null default 'web';\n" },
  { file: '0004_add_ticket_due_at.sql', sql: 'alter table tickets add column due_at timestamptz;\n' },
  { file: '0005_add_ticket_source.sql', sql: "alter table tickets add column source text not null default 'api';\n" },
  { file: '0006_add_ticket_locale.sql', sql: "alter table tickets add column locale text not null default 'en';\n" },
  { file: '0007_add_ticket_sla_minutes.sql', sql: 'alter table tickets add column sla_minutes integer not null default 0;\n' },
];

// ---------------------------------------------------------------------------------------------
// Small helpers

const started = Date.now();
const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}`);

function sortedOf(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}
/** Nearest-rank percentile. */
function pct(values: readonly number[], p: number): number {
  if (!values.length) return Number.NaN;
  const s = sortedOf(values);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
function median(values: readonly number[]): number {
  if (!values.length) return Number.NaN;
  const s = sortedOf(values);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN;
}
function round(n: number, digits = 2): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
const ratio = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);
function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
function summary(values: readonly number[]) {
  return { n: values.length, p50: round(median(values)), p95: round(pct(values, 95)), p99: round(pct(values, 99)), mean: round(mean(values)), max: round(Math.max(...values)) };
}

/** Runs fn(0..count-1) with at most `concurrency` in flight; the first error stops new starts. */
async function parallel(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (failed === undefined && next < count) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        failed ??= err;
      }
    }
  }));
  if (failed !== undefined) throw failed;
}

/** A small seeded PRNG (mulberry32): the same request mix on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** md5(text)::uuid, as PostgreSQL computes it. */
function md5Uuid(text: string): string {
  const h = createHash('md5').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
const ticketIdOf = (tenantId: string, n: number) => md5Uuid(`${tenantId}:${n}`);

// ---------------------------------------------------------------------------------------------
// Cleanup: last registered first (servers, then databases, then the embedded server and folder)

const { onCleanup, cleanup } = cleanupOnExit();

// ---------------------------------------------------------------------------------------------
// PostgreSQL

interface PgServer { readonly url: string; readonly kind: 'embedded' | 'external'; /** runs on this machine: its backends' CPU time is in /proc */ readonly local: boolean }

async function openServer(): Promise<PgServer> {
  const external = process.env.BENCH_DATABASE_URL;
  if (external) return { url: external, kind: 'external', local: ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(new URL(external).hostname) };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-placements-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const embedded = await startEmbeddedPostgres({ dataDir: dir, persistent: false, exitOnSignal: false });
  onCleanup(() => embedded.stop());
  return { url: embedded.url, kind: 'embedded', local: true };
}

interface RunDatabase { readonly url: string; readonly name: string; drop(): Promise<void> }

/**
 * A fresh database for (part of) the run. drop() removes it, every tenant_<hex> database its
 * catalog lists and, on an external server, the t_<hex> roles of its schema tenants.
 */
async function createRunDatabase(server: PgServer, label: string): Promise<RunDatabase> {
  const name = `tenantry_placements_${label}_${randomBytes(3).toString('hex')}`;
  const a = createPool(server.url, { max: 1 });
  try { await a.query(`create database ${ident(name)}`); } finally { await a.end(); }
  const url = withDatabase(server.url, name);
  let dropped: Promise<void> | undefined;
  const drop = () => (dropped ??= (async () => {
    let tenants: { id: string; isolation: Isolation }[] = [];
    const su = createPool(url, { max: 1 });
    try {
      tenants = await su.query<{ id: string; isolation: Isolation }>(
        "select id::text as id, isolation from tenantry.tenants where isolation <> 'pooled'");
    } catch { /* no catalog yet */ } finally { await su.end(); }
    const a2 = createPool(server.url, { max: 4 });
    try {
      const t0 = performance.now();
      const dbs = tenants.filter((t) => t.isolation === 'database');
      await parallel(dbs.length, 4, async (i) => {
        await a2.query(`drop database if exists ${ident(tenantDatabase(dbs[i]!.id))} with (force)`);
      });
      await a2.query(`drop database if exists ${ident(name)} with (force)`);
      const roleNames = server.kind === 'external' ? tenants.filter((t) => t.isolation === 'schema').map((t) => tenantRole(t.id)) : [];
      for (let i = 0; i < roleNames.length; i += 200) {
        await a2.query(`drop role if exists ${roleNames.slice(i, i + 200).map(ident).join(', ')}`);
      }
      log(`dropped ${name}, ${dbs.length} tenant databases${roleNames.length ? ` and ${roleNames.length} tenant roles` : ''} in ${fmt((performance.now() - t0) / 1000, 1)} s`);
    } finally {
      await a2.end();
    }
  })());
  onCleanup(async () => {
    // A throw-away embedded cluster is deleted with every database in it when it stops; dropping
    // each one first only costs time (DROP DATABASE of a database with 1,000 schemas and of ~100
    // tenant databases took over a minute on the loaded test machine). BENCH_DROP=1 drops anyway.
    if (server.kind === 'embedded' && process.env.BENCH_DROP !== '1') {
      if (!dropped) log(`leaving ${name} and its tenant databases to the embedded server's removal (BENCH_DROP=1 drops them first)`);
      return;
    }
    await drop();
  });
  return { url, name, drop };
}

async function startTenantry(url: string, migrationsDir: string): Promise<Tenantry> {
  return Tenantry.start({ databaseUrl: url, migrationsDir, jwt, rolePasswords: { app: ROLE_PASSWORD, platform: ROLE_PASSWORD } });
}

const platform = <T>(fn: () => Promise<T>) => withPlatformScope({ actor: 'bench', reason: 'placements benchmark' }, fn);

// ---------------------------------------------------------------------------------------------
// The helpdesk in a child process

class ServerProcess {
  private exited = false;
  private constructor(private readonly child: ChildProcess, readonly port: number, readonly stop: () => Promise<void>) {
    child.once('exit', () => { this.exited = true; });
  }

  static async start(dbUrl: string, migrationsDir: string): Promise<ServerProcess> {
    const child = fork(path.join(projectRoot, 'bench', 'placements-server.ts'), [], {
      cwd: projectRoot,
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        PLACEMENTS_DB_URL: dbUrl,
        PLACEMENTS_MIGRATIONS_DIR: migrationsDir,
        PLACEMENTS_JWT_SECRET: JWT_SECRET,
        PLACEMENTS_ROLE_PASSWORD: ROLE_PASSWORD,
        PLACEMENTS_POOL_MAX: String(settings.http.pool),
        NODE_ENV: 'production',
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const kill = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send({ type: 'stop' } satisfies PlacementsOrchestratorMessage, () => {});
      const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
      await gone;
      clearTimeout(timer);
    };
    onCleanup(kill);
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the helpdesk server did not start within 60 s')), 60_000);
      child.on('message', (m: PlacementsServerMessage) => {
        if (m.type === 'ready') { clearTimeout(timer); resolve(m.port); }
      });
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`the helpdesk server exited (${code ?? signal}) before it was ready`)); });
    });
    return new ServerProcess(child, port, kill);
  }

  assertAlive(): void {
    if (this.exited) throw new Error('the helpdesk server process exited during the run');
  }

  /** CPU time of the server process so far, milliseconds. */
  cpuMs(): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer to the CPU probe')), 5_000);
      const onMessage = (m: PlacementsServerMessage) => {
        if (m.type !== 'cpu') return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        resolve((m.user + m.system) / 1000);
      };
      this.child.on('message', onMessage);
      this.child.send({ type: 'cpu' } satisfies PlacementsOrchestratorMessage);
    });
  }

  pools(): Promise<{ open: number; reserved: number }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer to the pool probe')), 5_000);
      const onMessage = (m: PlacementsServerMessage) => {
        if (m.type !== 'pools') return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        resolve({ open: m.open, reserved: m.reserved });
      };
      this.child.on('message', onMessage);
      this.child.send({ type: 'pools' } satisfies PlacementsOrchestratorMessage);
    });
  }
}

/** One GET on a keep-alive connection; latency from write to the last byte. */
function timedGet(agent: http.Agent, port: number, urlPath: string, token: string): Promise<{ status: number; ms: number; body: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'GET', agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function expectTicket(agent: http.Agent, port: number, tenantId: string, ticketId: string, token: string): Promise<number> {
  const r = await timedGet(agent, port, `/api/v1/tickets/${ticketId}`, token);
  if (r.status !== 200) throw new Error(`GET /api/v1/tickets/${ticketId} of tenant ${tenantId}: ${r.status} ${r.body.slice(0, 300)}`);
  const body = JSON.parse(r.body) as { id?: string };
  if (body.id !== ticketId) throw new Error(`GET /api/v1/tickets/${ticketId} returned ticket ${body.id}`);
  return r.ms;
}

// ---------------------------------------------------------------------------------------------
// autocannon (untyped CommonJS package: typed here for the parts used)

interface AcRequest { method?: string; path?: string; headers?: Record<string, string> }
interface AcClient { setRequests(requests: AcRequest[]): void }
interface AcHistogram { average: number; mean: number; total: number; p50: number; p90: number; p99: number; max: number; min: number }
interface AcResult {
  requests: AcHistogram; latency: AcHistogram; duration: number;
  errors: number; timeouts: number; non2xx: number; resets: number; mismatches: number;
  '2xx': number; statusCodeStats: Record<string, { count: number }>;
}
type Autocannon = (opts: {
  url: string; connections: number; duration: number; requests?: AcRequest[]; setupClient?: (client: AcClient) => void;
}) => PromiseLike<AcResult> & { stop(): void };
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

interface LoadTarget { readonly tenantId: string; readonly token: string }

async function load(port: number, targets: readonly LoadTarget[], seconds: number, seed: number, ticketsPerTenant: number): Promise<AcResult> {
  let clientNo = 0;
  const requestsFor = (n: number): AcRequest[] => {
    const rnd = prng(seed * 7919 + n);
    return Array.from({ length: settings.http.requestsPerClient }, () => {
      const t = targets[Math.floor(rnd() * targets.length)]!;
      const ticket = ticketIdOf(t.tenantId, 1 + Math.floor(rnd() * ticketsPerTenant));
      return { method: 'GET', path: `/api/v1/tickets/${ticket}`, headers: { authorization: `Bearer ${t.token}` } };
    });
  };
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: settings.http.connections,
    duration: seconds,
    requests: requestsFor(-1),
    setupClient: (client) => client.setRequests(requestsFor(clientNo++)),
  });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad) {
    throw new Error(`load run had ${result.non2xx} non-2xx responses, ${result.errors} errors, ${result.timeouts} timeouts ` +
      `(status codes: ${JSON.stringify(result.statusCodeStats)})`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Machine


/** utime + stime of a process, in clock ticks (undefined once it is gone). */
async function procTicks(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}


// ---------------------------------------------------------------------------------------------
// Part 1: provisioning

async function benchProvisioning(server: PgServer, migrationsDir: string) {
  const { tenants: n, warmup } = settings.provision;
  log(`part 1: provisioning ${n} tenants per placement (+${warmup} warm-up each), one at a time, placements interleaved`);
  const db = await createRunDatabase(server, 'prov');
  const tenantry = await startTenantry(db.url, migrationsDir);
  const samples: Record<Isolation, number[]> = { pooled: [], schema: [], database: [] };
  try {
    for (let i = 0; i < warmup + n; i++) {
      // Rotate the order so no placement always runs first (or right after a database creation).
      for (let k = 0; k < isolations.length; k++) {
        const isolation = isolations[(i + k) % isolations.length]!;
        const slug = `prov-${isolation}-${i}`;
        const t0 = performance.now();
        const { tenant } = await platform(() => tenantry.createTenant({ slug, name: slug, isolation }));
        const ms = performance.now() - t0;
        if (tenant.status !== 'active' || tenant.isolation !== isolation) throw new Error(`tenant ${slug} is ${tenant.status}/${tenant.isolation}`);
        if (i >= warmup) samples[isolation].push(ms);
      }
    }
  } finally {
    await tenantry.close();
    await db.drop();
  }
  const stats = Object.fromEntries(isolations.map((iso) => [iso, summary(samples[iso])])) as Record<Isolation, ReturnType<typeof summary>>;
  const base = stats.pooled;
  return {
    tenantsPerPlacement: n,
    warmupPerPlacement: warmup,
    ms: stats,
    ratioToPooled: {
      schema: { p50: round(ratio(stats.schema.p50, base.p50), 1), p95: round(ratio(stats.schema.p95, base.p95), 1) },
      database: { p50: round(ratio(stats.database.p50, base.p50), 1), p95: round(ratio(stats.database.p95, base.p95), 1) },
    },
    samplesMs: Object.fromEntries(isolations.map((iso) => [iso, samples[iso].map((x) => round(x, 1))])),
  };
}

// ---------------------------------------------------------------------------------------------
// Part 2: many schema tenants, and migrating them

async function createSchemaTenants(tenantry: Tenantry, url: string, count: number) {
  log(`creating ${count} schema tenants (createTenant, ${settings.createConcurrency} at a time) ...`);
  const ids: string[] = new Array(count);
  const t0 = performance.now();
  let done = 0;
  // Rate per quarter of the run: does creating a tenant get slower as the catalog grows?
  const quarter = Math.max(1, Math.round(count / 4));
  const quarters: { upTo: number; tenantsPerSecond: number }[] = [];
  let mark = t0;
  await parallel(count, settings.createConcurrency, async (i) => {
    const slug = `schema-${String(i).padStart(5, '0')}`;
    const { tenant } = await platform(() => tenantry.createTenant({ slug, name: `Schema tenant ${i}`, isolation: 'schema' }));
    ids[i] = tenant.id;
    if (++done % quarter === 0 || done === count) {
      const now = performance.now();
      const n = done - (quarters.at(-1)?.upTo ?? 0);
      quarters.push({ upTo: done, tenantsPerSecond: round(n / ((now - mark) / 1000), 1) });
      mark = now;
      log(`  ${done}/${count} schema tenants (${fmt(quarters.at(-1)!.tenantsPerSecond, 1)}/s in this stretch)`);
    }
  });
  const createSeconds = (performance.now() - t0) / 1000;
  // A few tickets each, written as the superuser (bypasses RLS) in one statement per schema.
  const t1 = performance.now();
  const su = createPool(url, { max: 1 });
  try {
    await su.query(`do $$
      declare r record;
      begin
        for r in select id from tenantry.tenants where isolation = 'schema' loop
          execute format('insert into %I.tickets (tenant_id, id, title, description)
            select $1, md5($1::text || '':'' || g)::uuid, ''Ticket '' || g, ''Placements benchmark ticket''
            from generate_series(1, ${settings.ticketsPerTenant}) g', 't_' || replace(r.id::text, '-', '')) using r.id;
          execute format('insert into %I.users (tenant_id, id, email, name, role, password_hash)
            values ($1, $1, ''bench@'' || $1 || ''.test'', ''Bench agent'', ''agent'', ''-'')', 't_' || replace(r.id::text, '-', '')) using r.id;
        end loop;
      end $$`);
  } finally {
    await su.end();
  }
  const ticketSeconds = (performance.now() - t1) / 1000;
  log(`  ${count} schema tenants in ${fmt(createSeconds, 1)} s (${fmt(count / createSeconds, 1)}/s); tickets in ${fmt(ticketSeconds, 1)} s`);
  return { ids, createSeconds: round(createSeconds, 2), tenantsPerSecond: round(count / createSeconds, 1), concurrency: settings.createConcurrency, quarters };
}

/** Pooled tenants with a few tickets each in the shared schema (for the control scenarios of part 3). */
async function createPooledTenants(tenantry: Tenantry, url: string, count: number): Promise<string[]> {
  log(`creating ${count} pooled tenants for the control scenarios ...`);
  const ids: string[] = new Array(count);
  await parallel(count, settings.createConcurrency, async (i) => {
    const slug = `pooled-${String(i).padStart(5, '0')}`;
    const { tenant } = await platform(() => tenantry.createTenant({ slug, name: `Pooled tenant ${i}`, isolation: 'pooled' }));
    ids[i] = tenant.id;
  });
  const su = createPool(url, { max: 1 });
  try {
    await su.query(`insert into app.tickets (tenant_id, id, title, description)
      select t.id, md5(t.id::text || ':' || g)::uuid, 'Ticket ' || g, 'Placements benchmark ticket'
      from unnest($1::uuid[]) t(id), generate_series(1, ${settings.ticketsPerTenant}) g`, [ids]);
    await su.query(`insert into app.users (tenant_id, id, email, name, role, password_hash)
      select t.id, t.id, 'bench@' || t.id || '.test', 'Bench agent', 'agent', '-' from unnest($1::uuid[]) t(id)`, [ids]);
    await su.query('analyze app.tickets');
  } finally {
    await su.end();
  }
  return ids;
}

interface MigrationRunResult {
  label: string;
  via: 'migrateAll (admin pool concurrency+1, as the CLI)' | 'tenantry.migrateAll() (admin pool of 4)';
  concurrency: number;
  migration: string;
  targets: number;
  totalSeconds: number;
  applySeconds: number;
  auditSeconds: number;
  targetsPerSecond: number;
  applyTargetsPerSecond: number;
  targetMs: ReturnType<typeof summary>;
  counts: MigrationRun['counts'];
  allApplied: boolean;
  auditOk: boolean;
  auditFindings: number;
  ok: boolean;
}

async function runMigration(tenantry: Tenantry, url: string, migrationsDir: string, step: number, concurrency: number, expectedTargets: number, viaTenantry: boolean): Promise<MigrationRunResult> {
  const added = addedColumns[step];
  if (!added) throw new Error(`no added-column migration #${step + 2} is defined (too many migration runs)`);
  await writeFile(path.join(migrationsDir, added.file), added.sql);
  const files = await loadMigrations(migrationsDir);
  const version = Number(added.file.slice(0, 4));
  const label = viaTenantry ? `tenantry.migrateAll c=${concurrency}` : `migrateAll c=${concurrency}`;
  log(`migration run ${label}: ${added.file} across ${expectedTargets} targets ...`);
  const admin = createPool(url, { max: concurrency + 1, applicationName: 'tenantry-migrate' });
  let lastResultAt = 0;
  const t0 = performance.now();
  let run: MigrationRun;
  try {
    const onResult = () => { lastResultAt = performance.now(); };
    run = viaTenantry
      // Tenantry.migrateAll reads the migrations folder it was started with: this one.
      ? await tenantry.migrateAll({ concurrency, onResult })
      : await migrateAll(admin, url, files, { concurrency, onResult });
  } finally {
    await admin.end();
  }
  const total = (performance.now() - t0) / 1000;
  const apply = (lastResultAt - t0) / 1000;
  const allApplied = run.results.length === expectedTargets && run.results.every((r) =>
    r.status === 'applied' && r.applied.length === 1 && r.applied[0]!.version === version);
  const out: MigrationRunResult = {
    label,
    via: viaTenantry ? 'tenantry.migrateAll() (admin pool of 4)' : 'migrateAll (admin pool concurrency+1, as the CLI)',
    concurrency,
    migration: added.file,
    targets: run.results.length,
    totalSeconds: round(total, 2),
    applySeconds: round(apply, 2),
    auditSeconds: round(total - apply, 2),
    targetsPerSecond: round(run.results.length / total, 1),
    applyTargetsPerSecond: round(run.results.length / apply, 1),
    targetMs: summary(run.results.map((r) => r.durationMs)),
    counts: run.counts,
    allApplied,
    auditOk: run.audit?.ok ?? false,
    auditFindings: run.audit?.findings.length ?? -1,
    ok: run.ok,
  };
  log(`  ${fmt(total, 1)} s total (apply ${fmt(apply, 1)} s + audit ${fmt(total - apply, 1)} s), ${fmt(out.targetsPerSecond, 1)} targets/s; ` +
    `counts ${JSON.stringify(run.counts)}, audit ${out.auditOk ? 'ok' : `FAILED (${out.auditFindings} findings)`}, run.ok=${run.ok}`);
  if (!run.ok || !allApplied) {
    const failed = run.results.filter((r) => r.status !== 'applied').slice(0, 5).map((r) => `${r.target}: ${r.status} ${r.error ?? ''}`);
    const findings = (run.audit?.findings ?? []).slice(0, 5).map((f) => `${f.target} ${f.check} ${f.object}: ${f.message}`);
    throw new Error(`migration run ${label} did not apply cleanly:\n  ${[...failed, ...findings].join('\n  ')}`);
  }
  return out;
}

interface KilledRunResult {
  migration: string;
  targets: number;
  concurrency: number;
  killedAfterReported: number;
  migratedAtKill: number;
  firstRunSeconds: number;
  secondRunSeconds: number;
  secondRunExitCode: number | null;
  secondRunCounts: Record<string, number>;
  allMigratedAfter: boolean;
}

/** Runs `node bin/tenantry.js migrate ... --json`; SIGKILLs it once `killAfter` targets reported. */
function runCliMigrate(url: string, dir: string, concurrency: number, killAfter: number | null) {
  return new Promise<{ code: number | null; signal: string | null; reported: number; summary: Record<string, unknown> | null; seconds: number }>((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['bin/tenantry.js', 'migrate', '--concurrency', String(concurrency), '--json', '--migrations', dir], {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: url, TENANTRY_DB_ROLE_PASSWORD: ROLE_PASSWORD, TENANTRY_JWT_SECRET: JWT_SECRET, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let reported = 0;
    let summary: Record<string, unknown> | null = null;
    let pending = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line.includes('"event":"target"')) reported++;
        if (line.includes('"event":"summary"')) summary = JSON.parse(line) as Record<string, unknown>;
        if (killAfter !== null && reported >= killAfter && child.exitCode === null) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0 && signal !== 'SIGKILL') log(`  tenantry migrate exited ${code}: ${stderr.slice(-500)}`);
      resolve({ code, signal, reported, summary, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

/** How many targets have `version` in their ledger (superuser, one query per database). */
async function countMigrated(url: string, version: number): Promise<number> {
  const su = createPool(url, { max: 1, applicationName: 'bench-count' });
  try {
    const targets = await listTargets(su, url);
    const inControl = targets.filter((t) => t.databaseUrl === url).map((t) => t.schema);
    const [row] = await su.query<{ n: number }>(`
      select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relname = 'tenantry_migrations' and n.nspname = any($1::text[])
        and (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I.tenantry_migrations where version = %s', n.nspname, $2::int), false, true, '')))[1]::text::int > 0`,
      [inControl, version]);
    return row?.n ?? 0;
  } finally {
    await su.end();
  }
}

/**
 * `tenantry migrate` across every target, killed with SIGKILL part-way, then run again: the second
 * run must apply exactly what the first did not, and leave every target migrated.
 */
async function runKilledMigration(url: string, migrationsDir: string, step: number, concurrency: number, expectedTargets: number): Promise<KilledRunResult> {
  const added = addedColumns[step];
  if (!added) throw new Error(`no added-column migration #${step + 2} is defined (too many migration runs)`);
  await writeFile(path.join(migrationsDir, added.file), added.sql);
  const version = Number(added.file.slice(0, 4));
  const killAfter = Math.floor(expectedTargets / 3);
  log(`kill and resume: tenantry migrate --concurrency ${concurrency} (${added.file}), SIGKILL after ${killAfter} of ${expectedTargets} targets reported ...`);
  const first = await runCliMigrate(url, migrationsDir, concurrency, killAfter);
  if (first.signal !== 'SIGKILL') throw new Error(`the first run ended by itself (code ${first.code}) before it was killed`);
  // The killed runner's transactions roll back once the server notices the closed sockets.
  const su = createPool(url, { max: 1, applicationName: 'bench-watch' });
  try {
    for (const deadline = Date.now() + 30_000; ;) {
      const [r] = await su.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = 'tenantry-migrate'");
      if (!r?.n) break;
      if (Date.now() > deadline) throw new Error('the killed run still has sessions after 30 s');
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    await su.end();
  }
  const migratedAtKill = await countMigrated(url, version);
  log(`  killed after ${first.reported} targets reported (${fmt(first.seconds, 1)} s); ${migratedAtKill} targets hold ${added.file}`);
  const second = await runCliMigrate(url, migrationsDir, concurrency, null);
  const counts = ((second.summary as { counts?: Record<string, number> } | null)?.counts) ?? {};
  const after = await countMigrated(url, version);
  const result: KilledRunResult = {
    migration: added.file, targets: expectedTargets, concurrency, killedAfterReported: first.reported, migratedAtKill,
    firstRunSeconds: round(first.seconds, 2), secondRunSeconds: round(second.seconds, 2), secondRunExitCode: second.code,
    secondRunCounts: counts, allMigratedAfter: after === expectedTargets,
  };
  log(`  second run: exit ${second.code}, ${fmt(second.seconds, 1)} s, counts ${JSON.stringify(counts)}; ${after}/${expectedTargets} targets migrated`);
  if (second.code !== 0 || after !== expectedTargets || counts.applied !== expectedTargets - migratedAtKill || counts.up_to_date !== migratedAtKill
    || migratedAtKill < first.reported || migratedAtKill >= expectedTargets) {
    throw new Error(`kill and resume did not add up: ${JSON.stringify(result)}`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Part 3: one tenant vs many, under load

async function benchRandomTenantRead(url: string, migrationsDir: string, schemaIds: readonly string[], pooledIds: readonly string[], pgLocal: boolean) {
  const { connections, duration, warmup, rounds } = settings.http;
  log(`part 3: starting the helpdesk (pool ${settings.http.pool}) ...`);
  const server = await ServerProcess.start(url, migrationsDir);
  const tokens = new TokenService(jwt);
  const sign = (tid: string) => tokens.sign({ sub: tid, role: 'agent', tid });
  const targetsOf = async (ids: readonly string[]) => {
    const out: LoadTarget[] = [];
    for (const tenantId of ids) out.push({ tenantId, token: await sign(tenantId) });
    return out;
  };
  const many = await targetsOf(schemaIds);
  const one: LoadTarget[] = [many[0]!];
  const pooledMany = await targetsOf(pooledIds);
  type Key = 'a' | 'b' | 'c' | 'd';
  const scenarios: Record<Key, { name: string; targets: readonly LoadTarget[] }> = {
    a: { name: 'a: 1 schema tenant', targets: one },
    b: { name: `b: ${many.length} schema tenants, uniform random`, targets: many },
    c: { name: 'c: 1 pooled tenant (control)', targets: pooledMany.slice(0, 1) },
    d: { name: `d: ${pooledMany.length} pooled tenants, uniform random (control)`, targets: pooledMany },
  };
  const keys: Key[] = pooledMany.length ? ['a', 'b', 'c', 'd'] : ['a', 'b'];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  // Catalog lookups (scans of tenantry.tenants) per round: how often the server's catalog cache
  // missed. Approximate: backends flush their statistics about once a second.
  const su = createPool(url, { max: 1 });
  // CPU time per request of the server process and of the PostgreSQL backends of the run
  // database: far less disturbed by other load on the machine than req/s is.
  const clk = clockTicks();
  const backendCpu = new Map<number, number>();
  const pgCpuMs = async (): Promise<number> => {
    const pids = await su.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
    for (const { pid } of pids) {
      const ticks = await procTicks(pid);
      if (ticks !== undefined) backendCpu.set(pid, ticks);
    }
    let sum = 0;
    for (const ticks of backendCpu.values()) sum += ticks;
    return (sum / clk) * 1000;
  };
  const snapshot = async () => {
    await new Promise((r) => setTimeout(r, 1200));
    const [row] = await su.query<{ n: string }>(
      "select (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::text as n from pg_stat_user_tables where relid = 'tenantry.tenants'::regclass");
    return { catalog: Number(row?.n ?? 0), serverCpu: await server.cpuMs(), pgCpu: pgLocal ? await pgCpuMs() : Number.NaN };
  };
  try {
    // Sanity: the right ticket comes back, for the single tenant and a spread of the others.
    const spread = (list: readonly LoadTarget[]) => list.filter((_, i) => i % Math.max(1, Math.floor(list.length / 20)) === 0);
    for (const t of [one[0]!, ...spread(many), ...spread(pooledMany)]) {
      await expectTicket(agent, server.port, t.tenantId, ticketIdOf(t.tenantId, 1), t.token);
    }
    const runs: {
      scenario: Key; round: number; reqPerSec: number; p50: number; p99: number; total: number;
      catalogLookupsPer1k: number; serverCpuUs: number; pgCpuUs: number;
    }[] = [];
    let seed = 1;
    // Warm every backend's caches for both scenarios before anything is measured.
    log(`  warm-up: ${settings.http.initialWarmup} s per scenario`);
    for (const key of keys) await load(server.port, scenarios[key].targets, settings.http.initialWarmup, seed++, settings.ticketsPerTenant);
    for (let roundNo = 1; roundNo <= rounds; roundNo++) {
      for (const key of keys) {
        const s = scenarios[key];
        if (warmup) await load(server.port, s.targets, warmup, seed++, settings.ticketsPerTenant);
        const s0 = await snapshot();
        const r = await load(server.port, s.targets, duration, seed++, settings.ticketsPerTenant);
        const s1 = await snapshot();
        const k = r['2xx'] / 1000;
        const catalogLookupsPer1k = round((s1.catalog - s0.catalog) / k, 1);
        const serverCpuUs = round((s1.serverCpu - s0.serverCpu) / k, 0);
        const pgCpuUs = round((s1.pgCpu - s0.pgCpu) / k, 0);
        server.assertAlive();
        runs.push({ scenario: key, round: roundNo, reqPerSec: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r['2xx'], catalogLookupsPer1k, serverCpuUs, pgCpuUs });
        log(`  round ${roundNo} ${s.name}: ${fmt(r.requests.average)} req/s, p50 ${fmt(r.latency.p50, 1)} ms, p99 ${fmt(r.latency.p99, 1)} ms ` +
          `(${fmt(r['2xx'])} x 200; CPU/request: server ${fmt(serverCpuUs)} us, PostgreSQL ${fmt(pgCpuUs)} us; ~${fmt(catalogLookupsPer1k, 0)} catalog lookups per 1,000 requests)`);
      }
    }
    const of = (key: Key) => {
      const rs = runs.filter((r) => r.scenario === key);
      return {
        name: scenarios[key].name,
        tenants: scenarios[key].targets.length,
        medianReqPerSec: round(median(rs.map((r) => r.reqPerSec)), 0),
        medianP50Ms: round(median(rs.map((r) => r.p50)), 1),
        medianP99Ms: round(median(rs.map((r) => r.p99)), 1),
        requests200: rs.reduce((a, r) => a + r.total, 0),
        catalogLookupsPer1kRequests: round(median(rs.map((r) => r.catalogLookupsPer1k)), 1),
        medianServerCpuUsPerRequest: round(median(rs.map((r) => r.serverCpuUs)), 0),
        medianPgCpuUsPerRequest: round(median(rs.map((r) => r.pgCpuUs)), 0),
        rounds: rs.map((r) => ({
          round: r.round, reqPerSec: round(r.reqPerSec, 0), p50Ms: r.p50, p99Ms: r.p99,
          catalogLookupsPer1k: r.catalogLookupsPer1k, serverCpuUsPerRequest: r.serverCpuUs, pgCpuUsPerRequest: r.pgCpuUs,
        })),
      };
    };
    const a = of('a');
    const b = of('b');
    // Each b round against the a round just before it: pairs see similar background load.
    const pairRatios = (single: Key, spread: Key) => runs.filter((r) => r.scenario === spread).map((rb) => {
      const ra = runs.find((r) => r.scenario === single && r.round === rb.round)!;
      return round(rb.reqPerSec / ra.reqPerSec, 3);
    });
    const pooledControl = pooledMany.length ? (() => {
      const c = of('c');
      const d = of('d');
      return {
        c, d,
        ratioDtoC: round(ratio(d.medianReqPerSec, c.medianReqPerSec), 3),
        pairRatiosDtoC: pairRatios('c', 'd'),
        serverCpuRatioDtoC: round(ratio(d.medianServerCpuUsPerRequest, c.medianServerCpuUsPerRequest), 2),
        pgCpuRatioDtoC: round(ratio(d.medianPgCpuUsPerRequest, c.medianPgCpuUsPerRequest), 2),
      };
    })() : null;
    return {
      connections, durationSeconds: duration, warmupSeconds: warmup, rounds, pool: settings.http.pool,
      catalogCacheTtlMs: Number(process.env.TENANTRY_CATALOG_CACHE_TTL_MS ?? 30_000),
      ticketsPerTenant: settings.ticketsPerTenant, non2xx: 0,
      a, b,
      ratioBtoA: round(ratio(b.medianReqPerSec, a.medianReqPerSec), 3),
      pairRatiosBtoA: pairRatios('a', 'b'),
      medianPairRatioBtoA: round(median(pairRatios('a', 'b')), 3),
      serverCpuRatioBtoA: round(ratio(b.medianServerCpuUsPerRequest, a.medianServerCpuUsPerRequest), 2),
      pgCpuRatioBtoA: round(ratio(b.medianPgCpuUsPerRequest, a.medianPgCpuUsPerRequest), 2),
      p99RatioBtoA: round(ratio(b.medianP99Ms, a.medianP99Ms), 2),
      pooledControl,
    };
  } finally {
    agent.destroy();
    await su.end();
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Part 4: the first request to a database tenant

async function createColdTenants(tenantry: Tenantry, count: number) {
  log(`part 4: creating ${count} database tenants (+1 warm-up), ${settings.cold.createConcurrency} at a time, one ticket each ...`);
  const tenants: { id: string; ticket: string }[] = new Array(count + 1);
  const t0 = performance.now();
  await parallel(count + 1, settings.cold.createConcurrency, async (i) => {
    const slug = `database-${String(i).padStart(4, '0')}`;
    const ticket = randomUUID();
    const { tenant } = await platform(() => tenantry.createTenant({ slug, name: `Database tenant ${i}`, isolation: 'database' }, async (t) => {
      await tenantry.db.query('insert into tickets (id, title) values ($1, $2)', [ticket, 'Cold start ticket']);
      await tenantry.db.query(`insert into users (id, email, name, role, password_hash) values ($1, $2, 'Bench agent', 'agent', '-')`, [t.id, `bench@${t.id}.test`]);
    }));
    tenants[i] = { id: tenant.id, ticket };
  });
  const seconds = (performance.now() - t0) / 1000;
  log(`  ${count + 1} database tenants in ${fmt(seconds, 1)} s`);
  return { tenants, seconds: round(seconds, 2) };
}

async function benchColdDatabaseTenant(url: string, migrationsDir: string, cold: { id: string; ticket: string }[], schemaIds: readonly string[]) {
  const [warmTenant, ...dbTenants] = cold;
  const control = schemaIds.slice(-dbTenants.length);
  log(`part 4: fresh helpdesk; ${dbTenants.length} database tenants, first and second request each, interleaved with ${control.length} schema tenants ...`);
  const server = await ServerProcess.start(url, migrationsDir);
  const tokens = new TokenService(jwt);
  const sign = (tid: string) => tokens.sign({ sub: tid, role: 'agent', tid });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    // Warm the HTTP connection, the code paths and the shared pool on a tenant not measured, and
    // one database tenant (the first pool opened runs code nothing else has run yet).
    const warmSchema = schemaIds[0]!;
    const warmSchemaToken = await sign(warmSchema);
    for (let i = 0; i < 20; i++) await expectTicket(agent, server.port, warmSchema, ticketIdOf(warmSchema, 1 + (i % settings.ticketsPerTenant)), warmSchemaToken);
    const warmDbToken = await sign(warmTenant!.id);
    for (let i = 0; i < 5; i++) await expectTicket(agent, server.port, warmTenant!.id, warmTenant!.ticket, warmDbToken);
    const before = await server.pools();
    const { maxConnections, poolSize } = { maxConnections: Number(process.env.TENANTRY_DATABASE_CONNECTIONS_MAX ?? 40), poolSize: Number(process.env.TENANTRY_DATABASE_POOL_SIZE ?? 2) };
    const poolCap = Math.floor(maxConnections / poolSize);
    const rows: { i: number; evicts: boolean; dbFirst: number; dbSecond: number; schemaFirst: number; schemaSecond: number }[] = [];
    for (let i = 0; i < dbTenants.length; i++) {
      const d = dbTenants[i]!;
      const dToken = await sign(d.id);
      const s = control[i % control.length]!;
      const sToken = await sign(s);
      const sTicket = ticketIdOf(s, 1);
      const openBefore = before.open + i;
      const dbFirst = await expectTicket(agent, server.port, d.id, d.ticket, dToken);
      const dbSecond = await expectTicket(agent, server.port, d.id, d.ticket, dToken);
      const schemaFirst = await expectTicket(agent, server.port, s, sTicket, sToken);
      const schemaSecond = await expectTicket(agent, server.port, s, sTicket, sToken);
      rows.push({ i, evicts: openBefore >= poolCap, dbFirst, dbSecond, schemaFirst, schemaSecond });
    }
    server.assertAlive();
    const after = await server.pools();
    const col = (k: 'dbFirst' | 'dbSecond' | 'schemaFirst' | 'schemaSecond', filter: (r: (typeof rows)[number]) => boolean = () => true) =>
      summary(rows.filter(filter).map((r) => r[k]));
    const dbFirst = col('dbFirst');
    const dbSecond = col('dbSecond');
    log(`  database tenant first request p50 ${fmt(dbFirst.p50, 1)} ms p99 ${fmt(dbFirst.p99, 1)} ms; second p50 ${fmt(dbSecond.p50, 2)} ms p99 ${fmt(dbSecond.p99, 2)} ms; pools open ${before.open} -> ${after.open}`);
    return {
      tenants: dbTenants.length,
      poolCap,
      poolsOpenBefore: before.open,
      poolsOpenAfter: after.open,
      connectionsReservedAfter: after.reserved,
      databaseFirst: dbFirst,
      databaseSecond: dbSecond,
      databaseFirstNoEviction: col('dbFirst', (r) => !r.evicts),
      databaseFirstWithEviction: col('dbFirst', (r) => r.evicts),
      schemaFirst: col('schemaFirst'),
      schemaSecond: col('schemaSecond'),
      ratioFirstToSecond: { p50: round(ratio(dbFirst.p50, dbSecond.p50), 1), p99: round(ratio(dbFirst.p99, dbSecond.p99), 1) },
      samplesMs: rows.map((r) => ({ ...r, dbFirst: round(r.dbFirst, 2), dbSecond: round(r.dbSecond, 2), schemaFirst: round(r.schemaFirst, 2), schemaSecond: round(r.schemaSecond, 2) })),
    };
  } finally {
    agent.destroy();
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  log(`settings: ${JSON.stringify(settings)}`);
  const server = await openServer();
  log(`PostgreSQL: ${server.kind === 'embedded' ? 'embedded (temp folder)' : new URL(server.url).host}`);
  const probe = createPool(server.url, { max: 1 });
  let pgVersion = 'unknown';
  try {
    const [row] = await probe.query<{ v: string }>('select version() as v');
    pgVersion = row?.v ?? pgVersion;
  } finally { await probe.end(); }
  const env = await machine(pgVersion);

  const migrationsDir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-placements-migrations-'));
  onCleanup(() => rm(migrationsDir, { recursive: true, force: true }));
  process.once('exit', () => rmSync(migrationsDir, { recursive: true, force: true }));
  for (const f of await readdir(appMigrations)) if (f.endsWith('.sql')) await copyFile(path.join(appMigrations, f), path.join(migrationsDir, f));

  const results: Record<string, unknown> = {
    when: new Date().toISOString(),
    command: `npx tsx bench/placements.ts`,
    server: server.kind,
    machine: env,
    settings,
  };

  if (has(1)) results.provisioning = await benchProvisioning(server, migrationsDir);

  if (has(2) || has(3) || has(4)) {
    const db = await createRunDatabase(server, 'main');
    const tenantry = await startTenantry(db.url, migrationsDir);
    onCleanup(() => tenantry.close());
    const schema = await createSchemaTenants(tenantry, db.url, settings.schemaTenants);
    results.schemaTenants = { count: settings.schemaTenants, createSeconds: schema.createSeconds, tenantsPerSecond: schema.tenantsPerSecond, concurrency: schema.concurrency, ratePerQuarter: schema.quarters };

    if (has(2)) {
      log(`part 2: one added-column migration per run across ${settings.schemaTenants} schema tenants + the pooled schema`);
      const expected = settings.schemaTenants + 1;
      const runs: MigrationRunResult[] = [];
      let step = 0;
      for (const c of [1, ...settings.migrate.concurrency]) runs.push(await runMigration(tenantry, db.url, migrationsDir, step++, c, expected, false));
      if (settings.migrate.viaTenantry) runs.push(await runMigration(tenantry, db.url, migrationsDir, step++, settings.migrate.viaTenantry, expected, true));
      const killed = await runKilledMigration(db.url, migrationsDir, step++, 4, expected);
      const base = runs[0]!;
      results.migration = {
        killedAndResumed: killed,
        reset: 'each run adds the next migration to the same source (0002 at c=1, 0003 at c=4, 0004 at c=8, ...); every run applies exactly one catalog-only added-column migration to every target',
        runs: runs.map((r) => ({ ...r, speedupVsC1: round(base.totalSeconds / r.totalSeconds, 2), applySpeedupVsC1: round(base.applySeconds / r.applySeconds, 2) })),
      };
    }

    if (has(3)) {
      const pooledIds = settings.http.pooledControl ? await createPooledTenants(tenantry, db.url, settings.schemaTenants) : [];
      results.randomTenantRead = await benchRandomTenantRead(db.url, migrationsDir, schema.ids, pooledIds, server.local);
    }

    if (has(4)) {
      const created = await createColdTenants(tenantry, settings.cold.tenants);
      const cold = await benchColdDatabaseTenant(db.url, migrationsDir, created.tenants, schema.ids);
      results.coldDatabaseTenant = { createSeconds: created.seconds, createConcurrency: settings.cold.createConcurrency, ...cold };
    }
  }
  results.totalSeconds = round((Date.now() - started) / 1000, 1);

  await mkdir(path.dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, JSON.stringify(results, null, 2) + '\n');
  report(results);
  log(`wrote ${path.relative(projectRoot, resultsFile)}`);
}

// ---------------------------------------------------------------------------------------------
// Report

/* eslint-disable @typescript-eslint/no-explicit-any */
function report(r: Record<string, any>): void {
  const out: string[] = [''];
  const m = r.machine;
  out.push(`Machine: ${m.nproc} CPU (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, ${String(m.postgres).split(' on ')[0]} (${r.server}); load at start ${m.loadAvgAtStart.join(' ')}`);
  if (r.provisioning) {
    const p = r.provisioning;
    out.push('', `1. Provisioning, ms per tenant (${p.tenantsPerPlacement} per placement, one at a time)`);
    out.push(table(['placement', 'p50 ms', 'p95 ms', 'mean ms', 'max ms', 'p50 x pooled', 'p95 x pooled'], isolations.map((iso) => [
      iso, fmt(p.ms[iso].p50, 1), fmt(p.ms[iso].p95, 1), fmt(p.ms[iso].mean, 1), fmt(p.ms[iso].max, 1),
      iso === 'pooled' ? '1.0' : fmt(p.ratioToPooled[iso].p50, 1), iso === 'pooled' ? '1.0' : fmt(p.ratioToPooled[iso].p95, 1),
    ])));
  }
  if (r.schemaTenants) {
    const s = r.schemaTenants;
    out.push('', `Setup: ${s.count} schema tenants created in ${fmt(s.createSeconds, 1)} s (${fmt(s.tenantsPerSecond, 1)}/s, ${s.concurrency} createTenant calls at a time; ` +
      `per quarter ${s.ratePerQuarter.map((q: any) => `${fmt(q.tenantsPerSecond, 1)}/s`).join(', ')})`);
  }
  if (r.migration) {
    out.push('', `2. One added-column migration across ${r.schemaTenants.count} schema tenants + pooled schema (${r.migration.runs[0].targets} targets)`);
    out.push(table(['run', 'migration', 'total s', 'apply s', 'audit s', 'targets/s', 'speed-up', 'apply speed-up', 'target p50 ms', 'applied', 'audit'],
      r.migration.runs.map((x: any) => [x.label, x.migration, fmt(x.totalSeconds, 1), fmt(x.applySeconds, 1), fmt(x.auditSeconds, 1), fmt(x.targetsPerSecond, 1),
        `${fmt(x.speedupVsC1, 2)}x`, `${fmt(x.applySpeedupVsC1, 2)}x`, fmt(x.targetMs.p50, 0), `${x.counts.applied}/${x.targets}`, x.auditOk ? 'ok' : 'FAILED'])));
    const k = r.migration.killedAndResumed;
    if (k) {
      out.push(`tenantry migrate --concurrency ${k.concurrency} (${k.migration}) SIGKILLed after ${k.killedAfterReported} targets reported (${fmt(k.firstRunSeconds, 1)} s): ` +
        `${k.migratedAtKill} held the migration; the second run (exit ${k.secondRunExitCode}, ${fmt(k.secondRunSeconds, 1)} s) applied ${k.secondRunCounts.applied}, ` +
        `found ${k.secondRunCounts.up_to_date} up to date; all ${k.targets} migrated: ${k.allMigratedAfter ? 'yes' : 'NO'}`);
    }
  }
  if (r.randomTenantRead) {
    const h = r.randomTenantRead;
    out.push('', `3. GET /api/v1/tickets/:id, ${h.connections} connections, ${h.rounds} x ${h.durationSeconds} s per scenario, alternating (pool ${h.pool}, catalog cache TTL ${fmt(h.catalogCacheTtlMs)} ms)`);
    const rows = h.pooledControl ? [h.a, h.b, h.pooledControl.c, h.pooledControl.d] : [h.a, h.b];
    out.push(table(['scenario', 'req/s (median)', 'p50 ms', 'p99 ms', 'rounds req/s', '200s', 'server CPU us/req', 'PG CPU us/req', 'catalog lookups/1k req'], rows.map((x: any) => [
      x.name, fmt(x.medianReqPerSec), fmt(x.medianP50Ms, 1), fmt(x.medianP99Ms, 1), x.rounds.map((y: any) => fmt(y.reqPerSec)).join(' / '), fmt(x.requests200),
      fmt(x.medianServerCpuUsPerRequest), fmt(x.medianPgCpuUsPerRequest), `~${fmt(x.catalogLookupsPer1kRequests, 0)}`,
    ])));
    out.push(`b/a throughput ${fmt(h.ratioBtoA, 3)} (target >= 0.9${h.ratioBtoA >= 0.9 ? '' : ': WARN, below target'}; per pair ${h.pairRatiosBtoA.map((x: number) => fmt(x, 2)).join(', ')}), ` +
      `b/a p99 ${fmt(h.p99RatioBtoA, 2)}, b/a CPU per request: server ${fmt(h.serverCpuRatioBtoA, 2)}, PostgreSQL ${fmt(h.pgCpuRatioBtoA, 2)}; non-2xx: 0`);
    if (h.pooledControl) {
      const pc = h.pooledControl;
      out.push(`control d/c throughput ${fmt(pc.ratioDtoC, 3)} (per pair ${pc.pairRatiosDtoC.map((x: number) => fmt(x, 2)).join(', ')}), ` +
        `d/c CPU per request: server ${fmt(pc.serverCpuRatioDtoC, 2)}, PostgreSQL ${fmt(pc.pgCpuRatioDtoC, 2)}`);
    }
  }
  if (r.coldDatabaseTenant) {
    const c = r.coldDatabaseTenant;
    out.push('', `4. First request after server start, ${c.tenants} tenants one at a time (pools open ${c.poolsOpenBefore} -> ${c.poolsOpenAfter}, cap ${c.poolCap})`);
    const row = (name: string, s: any) => [name, String(s.n), fmt(s.p50, 2), fmt(s.p95, 2), fmt(s.p99, 2), fmt(s.max, 2)];
    out.push(table(['request', 'n', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'], [
      row('database tenant, 1st (pool opens)', c.databaseFirst),
      row('  of which no eviction needed', c.databaseFirstNoEviction),
      row('  of which evicts an idle pool', c.databaseFirstWithEviction),
      row('database tenant, 2nd (warm)', c.databaseSecond),
      row('schema tenant, 1st (catalog miss)', c.schemaFirst),
      row('schema tenant, 2nd (warm)', c.schemaSecond),
    ]));
    out.push(`database 1st/2nd: p50 ${fmt(c.ratioFirstToSecond.p50, 1)}x, p99 ${fmt(c.ratioFirstToSecond.p99, 1)}x`);
  }
  out.push('', `total ${fmt(r.totalSeconds, 0)} s`);
  console.log(out.join('\n'));
}

main()
  .then(() => cleanup())
  .then(() => process.exit(0))
  .catch(async (err) => {
    console.error('\nbenchmark failed:', err instanceof Error ? err.stack ?? err.message : err);
    await cleanup();
    process.exit(1);
  });
