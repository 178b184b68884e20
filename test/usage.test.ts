/**
 * Usage metering (docs/usage.md) on a real PostgreSQL, in process (the toolkit and the helpdesk
 * through inject): exact counts after known traffic, idempotent flushes (a batch written twice, a
 * flush whose answer never came), two toolkits on one database, the routes (roles, validation,
 * tenant isolation, JSON and CSV) and storage samples of each placement.
 * Real processes (SIGTERM, SIGKILL, two servers): test/usage-processes.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { withPlatformScope, parseUsageRange, type Tenantry, type UsageRecord } from '../src/index.js';
import { buildServer } from '../app/server.js';
import { ADMIN_TOKEN, callAs, startTestStack, startTestTenantry, type TestStack } from './helpers.js';

const HOUR = 3_600_000;
/** A range that holds every row written by this run. */
const wide = () => parseUsageRange({ from: new Date(Date.now() - 2 * HOUR).toISOString(), to: new Date(Date.now() + 2 * HOUR).toISOString() });

/** Totals of a tenant's stored usage (platform scope, straight from the toolkit). */
async function totals(tenantry: Tenantry, tenantId: string) {
  const rows = await withPlatformScope({ actor: 'test', reason: 'usage totals' }, () => tenantry.usage.queryAll(wide(), { tenantId }));
  return {
    apiCalls: rows.reduce((n, r) => n + r.apiCalls, 0),
    dbTimeMs: rows.reduce((n, r) => n + r.dbTimeMs, 0),
    egressBytes: rows.reduce((n, r) => n + r.egressBytes, 0),
    storageBytes: rows.reduce<number | null>((n, r) => (r.storageBytes === null ? n : Math.max(n ?? 0, r.storageBytes)), null),
  };
}

describe('usage metering', () => {
  let stack: TestStack;
  let acme: string;

  before(async () => {
    stack = await startTestStack({ catalogTimeoutMs: 1_000 });
    acme = stack.tenants.find((t) => t.slug === 'acme')!.id;
  });
  after(async () => { await stack?.close(); });

  it('counts api_calls and egress_bytes exactly, and db time, per admitted request', async () => {
    const token = await stack.token('acme', 'agent');
    await stack.tenantry.usage.flush();
    const before = await totals(stack.tenantry, acme);
    let bytes = 0;
    const N = 25;
    for (let i = 0; i < N; i++) {
      const res = await callAs(stack, 'acme', token, 'GET', `/api/v1/tickets?limit=${1 + (i % 5)}`);
      assert.equal(res.statusCode, 200);
      bytes += Buffer.byteLength(res.body);
    }
    // Refused before admission (no credential): not counted.
    assert.equal((await callAs(stack, 'acme', undefined, 'GET', '/api/v1/tickets')).statusCode, 401);
    // Admitted, then refused by its handler (an agent may not read usage): counted, with its body.
    const refused = await callAs(stack, 'acme', token, 'GET', '/api/v1/usage');
    assert.equal(refused.statusCode, 403);
    bytes += Buffer.byteLength(refused.body);
    const flushed = await stack.tenantry.usage.flush();
    assert.ok(flushed.batchId?.startsWith(`${stack.tenantry.usage.instanceId}:`), JSON.stringify(flushed));
    const now = await totals(stack.tenantry, acme);
    assert.equal(now.apiCalls - before.apiCalls, N + 1, 'api_calls');
    assert.equal(now.egressBytes - before.egressBytes, bytes, 'egress_bytes = the bodies\' bytes');
    assert.ok(now.dbTimeMs > before.dbTimeMs, `db_time_ms grew (${before.dbTimeMs} → ${now.dbTimeMs})`);
    assert.ok(stack.tenantry.usage.meter.size <= stack.tenants.length, 'after a flush, at most a db-time fraction per tenant is carried');
  });

  it('a batch written twice adds nothing the second time', async () => {
    const { store } = stack.tenantry.usage;
    const before = await totals(stack.tenantry, acme);
    const hour = Math.floor(Date.now() / HOUR);
    const batch = `test:${randomUUID()}`;
    const deltas = [{ tenantId: acme, hour, apiCalls: 7, dbTimeMs: 11, egressBytes: 1_000, storageBytes: null }];
    assert.equal(await store.write(batch, deltas), true);
    assert.equal(await store.write(batch, deltas), false, 'the retry is recognised');
    const now = await totals(stack.tenantry, acme);
    assert.deepEqual([now.apiCalls - before.apiCalls, now.dbTimeMs - before.dbTimeMs, now.egressBytes - before.egressBytes], [7, 11, 1_000]);
    // Concurrent writes of one batch (a retry racing the first attempt): applied once.
    const again = `test:${randomUUID()}`;
    const results = await Promise.all([store.write(again, deltas), store.write(again, deltas), store.write(again, deltas)]);
    assert.deepEqual(results.filter(Boolean).length, 1);
    assert.equal((await totals(stack.tenantry, acme)).apiCalls - before.apiCalls, 14);
  });

  it('a flush that failed or whose answer was lost is retried with its batch id: counted once', async () => {
    const token = await stack.token('acme', 'agent');
    await stack.tenantry.usage.flush();
    const before = await totals(stack.tenantry, acme);
    // The table is locked: the flush's statement waits, the catalog deadline (1 s) rejects it —
    // whether it is then cancelled or commits once the lock is gone is not known to the flusher.
    const locker = await stack.admin.connect();
    await locker.query('begin');
    await locker.query('lock table tenantry.usage in exclusive mode');
    try {
      for (let i = 0; i < 5; i++) assert.equal((await callAs(stack, 'acme', token, 'GET', '/api/v1/tickets')).statusCode, 200);
      await assert.rejects(stack.tenantry.usage.flush(), (err: Error & { code?: string }) => err.code === 'catalog_unavailable');
      for (let i = 0; i < 3; i++) assert.equal((await callAs(stack, 'acme', token, 'GET', '/api/v1/tickets')).statusCode, 200);
    } finally {
      await locker.query('commit');
      locker.release();
    }
    await stack.tenantry.usage.flush();
    await stack.tenantry.usage.flush();
    assert.equal((await totals(stack.tenantry, acme)).apiCalls - before.apiCalls, 8);
  });

  it('two toolkits on one database add up exactly', async () => {
    const other = await startTestTenantry(stack.databaseUrl, { catalogTimeoutMs: 1_000 });
    let otherApp: FastifyInstance | undefined;
    try {
      otherApp = await buildServer({ tenantry: other, adminToken: ADMIN_TOKEN });
      const token = await stack.token('acme', 'agent');
      await Promise.all([stack.tenantry.usage.flush(), other.usage.flush()]);
      const before = await totals(stack.tenantry, acme);
      const N = 20;
      const call = (app: FastifyInstance) => app.inject({ method: 'GET', url: '/api/v1/tickets', headers: { 'x-tenant': 'acme', authorization: `Bearer ${token}` } });
      const answers = await Promise.all(Array.from({ length: N }, (_, i) => call(i % 2 ? otherApp! : stack.app)).concat(
        Array.from({ length: N }, (_, i) => call(i % 2 ? stack.app : otherApp!))));
      assert.ok(answers.every((r) => r.statusCode === 200));
      await Promise.all([stack.tenantry.usage.flush(), other.usage.flush()]);
      assert.equal((await totals(other, acme)).apiCalls - before.apiCalls, 2 * N);
    } finally {
      await otherApp?.close();
      await other.close();
    }
  });

  it('routes: the tenant\'s own usage for owners and admins, 403 for agents, 400 for bad ranges', async () => {
    await callAs(stack, 'globex', await stack.token('globex', 'owner'), 'GET', '/api/v1/tickets');
    const owner = await stack.token('acme', 'owner');
    const admin = await stack.token('acme', 'admin');
    const agentToken = await stack.token('acme', 'agent');
    await stack.tenantry.usage.flush();
    // Read before the route's own request is counted (it is, once its answer has gone).
    const mine = (await totals(stack.tenantry, acme)).apiCalls;
    const res = await callAs(stack, 'acme', owner, 'GET', '/api/v1/usage');
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as { granularity: string; from: string; to: string; data: Record<string, unknown>[] };
    assert.equal(body.granularity, 'hour');
    assert.equal(Date.parse(body.to) - Date.parse(body.from), 24 * HOUR, 'the default range: the last 24 h');
    assert.ok(body.data.length >= 1);
    for (const row of body.data) {
      assert.deepEqual(Object.keys(row), ['period_start', 'api_calls', 'db_time_ms', 'egress_bytes', 'storage_bytes']);
    }
    assert.equal(body.data.reduce((n, r) => n + (r.api_calls as number), 0), mine, 'acme\'s rows only');
    assert.equal((await callAs(stack, 'acme', admin, 'GET', '/api/v1/usage')).statusCode, 200);
    const agent = await callAs(stack, 'acme', agentToken, 'GET', '/api/v1/usage');
    assert.equal(agent.statusCode, 403);
    assert.equal(agent.json().code, 'insufficient_role');
    for (const q of ['from=yesterday', 'to=2025-13-01T00:00:00Z', 'from=2025-01-01T00:00:00', 'from=2025-02-01&to=2025-01-01',
      'from=2024-01-01&to=2025-06-01', 'granularity=week', 'tenant_id=00000000-0000-0000-0000-000000000000', 'from=2025-01-01T00:00:00Z%00']) {
      const bad = await callAs(stack, 'acme', owner, 'GET', `/api/v1/usage?${q}`);
      assert.equal(bad.statusCode, 400, `${q}: ${bad.body}`);
      assert.equal(bad.json().code, 'validation_failed', q);
      assert.match(bad.headers['content-type'] as string, /application\/problem\+json/);
    }
    await stack.tenantry.usage.flush();
    const hours = (await totals(stack.tenantry, acme)).apiCalls;
    const day = await callAs(stack, 'acme', owner, 'GET', `/api/v1/usage?granularity=day&from=${new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10)}&to=${new Date(Date.now() + 86_400_000).toISOString()}`);
    assert.equal(day.statusCode, 200, day.body);
    const days = day.json().data as { period_start: string; api_calls: number }[];
    assert.ok(days.every((d) => d.period_start.endsWith('T00:00:00.000Z')), JSON.stringify(days));
    assert.equal(days.reduce((n, d) => n + d.api_calls, 0), hours, 'a day sums its hours');
  });

  it('usage is read in a scope only: no tenant context, no usage', async () => {
    await assert.rejects(stack.tenantry.usage.query(wide()), (err: Error & { code?: string }) => err.code === 'tenant_context_missing');
    await assert.rejects(stack.tenantry.usage.queryAll(wide()), /withPlatformScope/);
  });

  it('admin routes: one tenant or every tenant, JSON or CSV', async () => {
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const one = await stack.app.inject({ method: 'GET', url: `/admin/api/tenants/${acme}/usage`, headers: admin });
    assert.equal(one.statusCode, 200, one.body);
    const rows = one.json().data as { tenant_id: string }[];
    assert.ok(rows.length > 0 && rows.every((r) => r.tenant_id === acme));
    assert.equal((await stack.app.inject({ method: 'GET', url: `/admin/api/tenants/${randomUUID()}/usage`, headers: admin })).statusCode, 404);
    assert.equal((await stack.app.inject({ method: 'GET', url: '/admin/api/usage?from=nope', headers: admin })).json().code, 'validation_failed');
    assert.equal((await stack.app.inject({ method: 'GET', url: '/admin/api/usage' })).statusCode, 401);
    const all = await stack.app.inject({ method: 'GET', url: '/admin/api/usage', headers: admin });
    const data = all.json().data as (UsageRecord & { tenant_id: string; period_start: string })[];
    assert.ok(new Set(data.map((r) => r.tenant_id)).size >= 2, 'acme and globex');
    const sorted = [...data].sort((a, b) => a.period_start.localeCompare(b.period_start) || a.tenant_id.localeCompare(b.tenant_id));
    assert.deepEqual(data, sorted, 'ordered by time, then tenant');
    const csv = await stack.app.inject({ method: 'GET', url: '/admin/api/usage', headers: { ...admin, accept: 'text/csv' } });
    assert.equal(csv.statusCode, 200);
    assert.equal(csv.headers['content-type'], 'text/csv; charset=utf-8');
    const lines = csv.body.split('\n');
    assert.equal(lines[0], 'tenant_id,period_start,api_calls,db_time_ms,egress_bytes,storage_bytes');
    assert.equal(lines.at(-1), '', 'every line ends in \\n');
    assert.equal(lines.length, data.length + 2);
    const first = data[0] as unknown as Record<string, unknown>;
    assert.equal(lines[1], [first.tenant_id, first.period_start, first.api_calls, first.db_time_ms, first.egress_bytes, first.storage_bytes ?? ''].join(','));
  });

  it('storage_bytes is sampled in each placement, and grows with the data', async () => {
    const { usage } = stack.tenantry;
    for (const t of stack.tenants) {
      assert.equal(await usage.sampleStorage([t.id]), 1, t.isolation);
      await usage.flush();
      const first = (await totals(stack.tenantry, t.id)).storageBytes;
      assert.ok(first !== null && first > 0, `${t.isolation}: ${first}`);
      const store = await stack.storeOf(t.id);
      await store.sql.query(`insert into ${store.table('tickets')} (tenant_id, id, title, description)
        select $1, gen_random_uuid(), 'storage ' || i, repeat(md5(i::text), 300) from generate_series(1, 300) i`, [t.id]);
      if (t.isolation !== 'pooled') await store.sql.query('checkpoint');
      assert.equal(await usage.sampleStorage([t.id]), 1);
      await usage.flush();
      const second = (await totals(stack.tenantry, t.id)).storageBytes!;
      assert.ok(second > first, `${t.isolation}: ${first} → ${second}`);
    }
  });

  it('the sampler measures tenants active since its last pass; its own queries are not the tenant\'s db time', async () => {
    const { usage } = stack.tenantry;
    usage.meter.takeActive();
    await usage.flush();
    await callAs(stack, 'acme', await stack.token('acme', 'agent'), 'GET', '/api/v1/tickets');
    usage.meter.take(); // the request's own counts: not what this test is about
    assert.equal(await usage.sampleStorage(), 1, 'acme only');
    assert.equal(await usage.sampleStorage(), 0, 'nobody active since');
    const taken = usage.meter.take();
    assert.equal(taken.length, 1);
    assert.equal(taken[0]!.dbTimeMs, 0, 'the measurement is the platform\'s');
    assert.ok((taken[0]!.storageBytes ?? 0) > 0);
  });
});
