/**
 * Limits shared by instances: two real server processes (`npm start`'s app/main.ts) on one
 * database and one Redis (a redis-server of the test's own, so that it can be stopped):
 * - a limits change made through one instance is applied by the other within 1 s;
 * - the two together admit no more than one tenant's limit (without Redis each would admit it);
 * - the concurrency leases of an instance that was killed expire (TENANTRY_LEASE_TTL_MS), and
 *   until then they count;
 * - Redis stopped and started under traffic: no 5xx on either instance, /readyz says `down` then
 *   `up`, and the limits are shared again once it is back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { demoTenants } from '../app/fixtures.js';
import { ADMIN_TOKEN, createTestDatabase } from './helpers.js';
import { startTestRedis, uniquePrefix, type TestRedis } from './redis-server.js';
import { dropDemoPlacements, startServer, type ServerProcess } from './server-process.js';

const acme = demoTenants.find((t) => t.slug === 'acme')!;

describe('limits across two instances, through Redis', { timeout: 300_000 }, () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let redis: TestRedis;
  let a: ServerProcess;
  let b: ServerProcess;
  let token: string;
  let env: Record<string, string>;

  const call = (s: ServerProcess, path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${s.port}${path}`, {
    ...init, headers: { 'x-tenant': 'acme', authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> ?? {}) },
  });
  const patchLimits = async (s: ServerProcess, patch: object) => {
    const res = await fetch(`http://127.0.0.1:${s.port}/admin/api/tenants/${acme.id}/limits`, {
      method: 'PATCH', body: JSON.stringify(patch), headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    });
    assert.equal(res.status, 200, await res.text());
  };
  const readyz = async (s: ServerProcess) => (await (await fetch(`http://127.0.0.1:${s.port}/readyz`)).json()) as { redis: string };

  before(async () => {
    db = await createTestDatabase('instances');
    redis = await startTestRedis();
    env = { DATABASE_URL: db.url, REDIS_URL: redis.url, TENANTRY_REDIS_PREFIX: uniquePrefix('limits'), TENANTRY_LEASE_TTL_MS: '2000' };
    // One after the other: the first seeds the demo tenants, the second finds them.
    a = await startServer(env);
    b = await startServer(env);
    const login = await fetch(`http://127.0.0.1:${a.port}/api/v1/auth/token`, {
      method: 'POST', headers: { 'x-tenant': 'acme', 'content-type': 'application/json' },
      body: JSON.stringify({ email: acme.users[2]!.email, password: acme.users[2]!.password }),
    });
    token = ((await login.json()) as { access_token: string }).access_token;
  });
  after(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.stop();
    await db?.drop();
    await dropDemoPlacements();
  });

  it('a change through one instance is applied by the other within 1 s', async () => {
    assert.equal((await readyz(a)).redis, 'up');
    await patchLimits(a, { burst: 77 });
    const t0 = performance.now();
    let policy = '';
    while (performance.now() - t0 < 1_000) {
      policy = (await call(b, '/api/v1/tickets?limit=1')).headers.get('ratelimit-policy') ?? '';
      if (policy.includes('q=77')) break;
      await sleep(20);
    }
    assert.match(policy, /q=77/, `instance B still answers ${policy} 1 s after the change`);
    await patchLimits(a, { burst: null });
  });

  it('the two together admit no more than one limit', async () => {
    // A bucket of 20 that refills by one every 10 s: 60 requests, half to each instance, at once.
    await patchLimits(a, { requests_per_second: 0.1, burst: 20, concurrent_requests: 100 });
    await sleep(300); // the change reaches B (shown above to take well under 1 s)
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => call(i % 2 ? a : b, '/api/v1/tickets?limit=1')));
    const statuses = answers.map((r) => r.status);
    const allowed = statuses.filter((s) => s === 200).length;
    assert.equal(statuses.filter((s) => s !== 200 && s !== 429).length, 0, statuses.join(','));
    assert.ok(allowed >= 20 && allowed <= 21, `${allowed} admitted by the two instances together; the limit is 20`);
    await patchLimits(a, { requests_per_second: null, burst: null, concurrent_requests: null });
  });

  it('the leases of a killed instance count until they expire, then free the tenant', async () => {
    await patchLimits(a, { concurrent_requests: 2 });
    await sleep(300);
    // Two requests in progress on B, waiting on a row lock the test holds.
    const { createPool } = await import('../src/data/driver/index.js');
    const admin = createPool(db.url, { max: 1 });
    const conn = await admin.connect();
    try {
      await conn.query('begin');
      await conn.query('select 1 from app.tickets where id = $1 for update', [acme.tickets[0]!.id]);
      const held = [1, 2].map(() => call(b, `/api/v1/tickets/${acme.tickets[0]!.id}`, {
        method: 'PATCH', body: JSON.stringify({ priority: 'high' }), headers: { 'content-type': 'application/json' },
      }).catch(() => undefined));
      await sleep(500);
      const refused = await call(a, '/api/v1/tickets?limit=1');
      assert.equal(refused.status, 429, 'the two requests on B hold the tenant\'s two leases, seen by A');
      assert.equal(((await refused.json()) as { code: string }).code, 'concurrency_limited');
      await b.kill();
      const killedAt = performance.now();
      await Promise.all(held);
      // Until the TTL (2 s) the dead instance's leases still count; then A admits again.
      let status = 429;
      while (status === 429 && performance.now() - killedAt < 6_000) {
        status = (await call(a, '/api/v1/tickets?limit=1')).status;
        if (status === 429) await sleep(100);
      }
      const freedAfter = performance.now() - killedAt;
      assert.equal(status, 200, 'the leases of the killed instance expired');
      assert.ok(freedAfter >= 1_000, `freed after ${freedAfter.toFixed(0)} ms: not before the leases could expire`);
    } finally {
      await conn.query('rollback').catch(() => {});
      conn.release();
      await admin.end();
    }
    await patchLimits(a, { concurrent_requests: null });
  });

  it('Redis stopped and started under traffic: no 5xx, readiness says so, limits shared again after', async () => {
    b = await startServer(env);
    const statuses: number[] = [];
    let running = true;
    const traffic = (async () => {
      for (let i = 0; running; i++) {
        const res = await call(i % 2 ? a : b, '/api/v1/tickets?limit=1').catch(() => undefined);
        statuses.push(res?.status ?? 0);
        await sleep(5);
      }
    })();
    await sleep(1_000);
    await redis.stop();
    await sleep(1_500);
    const whileDown = [await readyz(a), await readyz(b)];
    await redis.start();
    let up = false;
    for (const until = performance.now() + 10_000; !up && performance.now() < until; await sleep(100)) {
      up = (await readyz(a)).redis === 'up' && (await readyz(b)).redis === 'up';
    }
    await sleep(500);
    running = false;
    await traffic;
    assert.deepEqual(whileDown.map((r) => r.redis), ['down', 'down']);
    assert.ok(up, 'both instances are back on Redis');
    const failed = statuses.filter((s) => s >= 500 || s === 0);
    assert.equal(failed.length, 0, `${failed.length} of ${statuses.length} requests failed: ${[...new Set(failed)].join(',')}`);
    assert.ok(statuses.filter((s) => s === 200).length > 50);
    // Shared again: the (empty) Redis holds one bucket for both.
    await patchLimits(a, { requests_per_second: 0.1, burst: 10 });
    await sleep(300);
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => call(i % 2 ? a : b, '/api/v1/tickets?limit=1')));
    const allowed = answers.filter((r) => r.status === 200).length;
    const seen = answers.map((r, i) => `${i % 2 ? 'a' : 'b'}:${r.status}:${r.headers.get('ratelimit-policy')}`).join(' ');
    assert.ok(allowed >= 10 && allowed <= 11, `${allowed} admitted after Redis came back; the limit is 10: ${seen}`);
    await patchLimits(a, { requests_per_second: null, burst: null });
  });
});

describe('limit changes without LISTEN reach the other instance through Redis', { timeout: 120_000 }, () => {
  it('two toolkits with TENANTRY_CATALOG_LISTEN=0: a change on one is applied by the other within 1 s', async () => {
    const { startTestTenantry } = await import('./helpers.js');
    const { sharedRedisUrl } = await import('./redis-server.js');
    const { withPlatformScope } = await import('../src/index.js');
    const db = await createTestDatabase('nolisten');
    const prefix = uniquePrefix('nolisten');
    const options = { catalogListen: false, redisUrl: sharedRedisUrl(), redisPrefix: prefix, plans: {} };
    const one = await startTestTenantry(db.url, options);
    const two = await startTestTenantry(db.url, options);
    try {
      const tenant = await withPlatformScope({ actor: 'test', reason: 'limits without listen' }, () =>
        one.createTenant({ slug: 'nolisten', name: 'No Listen', isolation: 'pooled' }));
      const before = (await two.catalog.findById(tenant.tenant.id))!;
      assert.equal(two.plans.of(before).limits.burst, 100);
      await withPlatformScope({ actor: 'test', reason: 'limits without listen' }, () => one.tenants.setLimits(tenant.tenant.id, { burst: 5 }));
      const t0 = performance.now();
      let burst = 100;
      while (burst !== 5 && performance.now() - t0 < 1_000) {
        burst = two.plans.of((await two.catalog.findById(tenant.tenant.id))!).limits.burst;
        if (burst !== 5) await sleep(20);
      }
      assert.equal(burst, 5, 'the other toolkit (no LISTEN, catalog cache TTL 30 s) applied the change within 1 s');
    } finally {
      await one.close();
      await two.close();
      await db.drop();
    }
  });
});
