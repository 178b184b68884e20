/**
 * The tenant cache across two real server processes (`app/main.ts`, as `npm start` runs it) on one
 * database and one Redis (a private redis-server, stopped and started under traffic):
 * - a ticket created on instance A shows in `GET /tickets/stats` on instance B within 1 s, after
 *   B had cached the old counts;
 * - Redis stopped mid-traffic: no 5xx on either instance, and the counts stay right (read from the
 *   database); started again (empty): caching resumes and invalidation crosses instances again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createTestDatabase } from './helpers.js';
import { startTestRedis, type TestRedis } from './redis-server.js';
import { dropDemoPlacements, startServer, type ServerProcess } from './server-process.js';

interface Stats { open: number; pending: number; resolved: number; closed: number; total: number }

describe('tenant cache across two server processes', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let redis: TestRedis;
  let a: ServerProcess;
  let b: ServerProcess;
  let token: string;
  let watcher: Redis;

  const call = async (server: ServerProcess, method: string, path: string, body?: object) => {
    const res = await fetch(`http://127.0.0.1:${server.port}/api/v1${path}`, {
      method,
      headers: { 'x-tenant': 'acme', authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: await res.json().catch(() => undefined) as Record<string, unknown> };
  };
  const stats = async (server: ServerProcess): Promise<Stats> => {
    const r = await call(server, 'GET', '/tickets/stats');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as unknown as Stats;
  };
  const create = async (server: ServerProcess): Promise<string> => {
    const r = await call(server, 'POST', '/tickets', { title: 'cache test' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as string;
  };
  /** Milliseconds until `server`'s total is `total` (fails after 1 s). */
  const seen = async (server: ServerProcess, total: number): Promise<number> => {
    const t0 = Date.now();
    for (;;) {
      const s = await stats(server);
      if (s.total === total) return Date.now() - t0;
      if (Date.now() - t0 > 1_000) assert.fail(`instance on ${server.port} still shows ${s.total} tickets after 1 s, not ${total}`);
      await sleep(10);
    }
  };
  const statsKeys = async () => (await watcher.keys('*tickets:stats')).length;

  before(async () => {
    db = await createTestDatabase('cache');
    redis = await startTestRedis();
    watcher = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    watcher.on('error', () => {});
    const env = { DATABASE_URL: db.url, REDIS_URL: redis.url };
    // One after the other: each start migrates and seeds the demo tenants.
    a = await startServer(env);
    b = await startServer(env);
    const login = await fetch(`http://127.0.0.1:${a.port}/api/v1/auth/token`, {
      method: 'POST', headers: { 'x-tenant': 'acme', 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'agent@acme.test', password: 'acme-agent-password' }),
    });
    assert.equal(login.status, 200, await login.clone().text());
    token = ((await login.json()) as { access_token: string }).access_token;
  });

  after(async () => {
    watcher?.disconnect();
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.stop();
    await db?.drop();
    // Best effort: the demo tenants' placements are cluster-wide, and another suite's database on
    // the same server may still hold objects of the schema tenant's role.
    await dropDemoPlacements().catch((err: Error) => console.error(`clean-up of the demo placements: ${err.message}`));
  });

  it('a ticket created on A shows in B\'s stats within 1 s after B cached the old counts', async () => {
    const before = await stats(b);
    assert.deepEqual(Object.keys(before).sort(), ['closed', 'open', 'pending', 'resolved', 'total']);
    assert.equal(before.total, before.open + before.pending + before.resolved + before.closed);
    assert.deepEqual(await stats(b), before);
    assert.equal(await statsKeys(), 1, 'B stored the counts in Redis');
    assert.deepEqual(await stats(a), before, 'A reads the same');
    for (let i = 1; i <= 5; i++) {
      await create(a);
      const ms = await seen(b, before.total + i);
      assert.ok(ms < 1_000, `B saw ticket ${i} after ${ms} ms`);
      await stats(b); // cached again before the next write
    }
    // Update and delete invalidate too (a status change moves a count).
    const id = await create(b);
    await seen(a, before.total + 6);
    assert.equal((await call(a, 'PATCH', `/tickets/${id}`, { status: 'resolved' })).status, 200);
    const t0 = Date.now();
    while ((await stats(b)).resolved !== before.resolved + 1) {
      assert.ok(Date.now() - t0 < 1_000, 'B sees the status change within 1 s');
      await sleep(10);
    }
  });

  it('Redis stopped under traffic: no 5xx on either instance, counts right; started again: caching and invalidation resume', async () => {
    let expected = (await stats(a)).total;
    const statuses: number[] = [];
    let stop = false;
    // Readers on both instances all along.
    const readers = [a, b].map(async (server) => {
      while (!stop) {
        const r = await call(server, 'GET', '/tickets/stats');
        statuses.push(r.status);
      }
    });
    await sleep(200);
    await redis.stop();
    await sleep(300);
    for (let i = 0; i < 6; i++) {
      const [writer, reader] = i % 2 ? [b, a] : [a, b];
      await create(writer);
      expected++;
      // Without Redis nothing is cached: the other instance reads the database at once.
      assert.equal((await stats(reader)).total, expected, 'right at once while Redis is down');
      assert.equal((await stats(writer)).total, expected);
    }
    assert.equal(await statsKeys().catch(() => 0), 0);
    await redis.start();
    // Both instances are back (readyz) and the counts get cached again.
    for (const server of [a, b]) {
      const t0 = Date.now();
      for (;;) {
        const r = await fetch(`http://127.0.0.1:${server.port}/readyz`);
        if (((await r.json()) as { redis?: string }).redis === 'up') break;
        assert.ok(Date.now() - t0 < 10_000, 'the instance sees Redis again');
        await sleep(50);
      }
    }
    stop = true;
    await Promise.all(readers);
    const bad = statuses.filter((s) => s >= 500);
    assert.deepEqual(bad, [], `${bad.length} of ${statuses.length} stats requests answered 5xx`);
    assert.ok(statuses.length > 20, `traffic ran (${statuses.length} requests)`);

    assert.equal((await stats(b)).total, expected);
    const t0 = Date.now();
    while (await statsKeys() === 0) {
      assert.ok(Date.now() - t0 < 2_000, 'the counts are cached in Redis again');
      await stats(b);
      await sleep(20);
    }
    for (let i = 0; i < 3; i++) {
      await stats(b);
      await create(a);
      expected++;
      const ms = await seen(b, expected);
      assert.ok(ms < 1_000, `after the restart B saw A's ticket after ${ms} ms`);
    }
  });
});
