/**
 * The tenant cache (tenantry.cache): tenant-scoped keys, O(1) clear, per-tenant memory shares,
 * stampede protection, and no stale value stored after an invalidation — in process, and shared
 * through a real Redis by two "instances" (two caches on two connections, as two processes have).
 * The race runs against real PostgreSQL (a test stack) many times.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { TenantContextMissingError, runWithTenant, type Tenant } from '../src/index.js';
import { TenantCache } from '../src/cache/tenant-cache.js';
import { RedisLink } from '../src/redis/redis-link.js';
import { startTestStack, type TestStack } from './helpers.js';
import { sharedRedisUrl, startTestRedis, uniquePrefix, type TestRedis } from './redis-server.js';

const fake = (n: number): Tenant => Object.freeze({
  id: `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`, slug: `t${n}`, name: `t${n}`, status: 'active', plan: 'free',
  isolation: 'pooled', shard: 'default', settings: {}, createdAt: '', updatedAt: '',
});
const A = fake(1);
const B = fake(2);
const as = <T>(tenant: Tenant, fn: () => Promise<T>) => runWithTenant(tenant, fn);

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(5);
  }
  return Date.now() - t0;
}

/** One "instance": a Redis link of its own and a cache on it. */
interface Instance { readonly link: RedisLink; readonly cache: TenantCache; close(): Promise<void> }
async function instance(url: string, prefix: string, memory = { maxBytes: 1 << 20, tenantMaxBytes: 1 << 16 }): Promise<Instance> {
  const link = new RedisLink({ url, prefix });
  const cache = new TenantCache({ ...memory, redis: link });
  assert.ok(await link.waitUntilUp(5_000), 'Redis is up');
  await until(() => link.subscribed, 5_000, 'the cache follows its channel');
  return { link, cache, close: async () => { cache.close(); await link.close(); } };
}

describe('tenant cache', () => {
  it('needs a tenant context: every call outside one throws TenantContextMissingError', async () => {
    const cache = new TenantCache({ maxBytes: 1 << 20, tenantMaxBytes: 1 << 16 });
    await assert.rejects(cache.get('k'), TenantContextMissingError);
    await assert.rejects(cache.set('k', 1), TenantContextMissingError);
    await assert.rejects(cache.wrap('k', 1000, () => 1), TenantContextMissingError);
    await assert.rejects(cache.delete('k'), TenantContextMissingError);
    await assert.rejects(cache.clearTenant(), TenantContextMissingError);
  });

  it('in process: two tenants\' same key never meet; clearTenant clears one tenant only', async () => {
    const cache = new TenantCache({ maxBytes: 1 << 20, tenantMaxBytes: 1 << 16 });
    await as(A, () => cache.set('k', { who: 'A' }));
    assert.equal(await as(B, () => cache.get('k')), undefined);
    await as(B, () => cache.set('k', { who: 'B' }));
    assert.deepEqual(await as(A, () => cache.get('k')), { who: 'A' });
    assert.deepEqual(await as(B, () => cache.get('k')), { who: 'B' });
    await as(A, () => cache.clearTenant());
    assert.equal(await as(A, () => cache.get('k')), undefined);
    assert.deepEqual(await as(B, () => cache.get('k')), { who: 'B' });
    assert.equal(cache.stats().mode, 'memory');
  });

  it('TTL: an entry is gone after its time', async () => {
    const cache = new TenantCache({ maxBytes: 1 << 20, tenantMaxBytes: 1 << 16 });
    await as(A, () => cache.set('short', 1, 50));
    assert.equal(await as(A, () => cache.get('short')), 1);
    await sleep(80);
    assert.equal(await as(A, () => cache.get('short')), undefined);
  });

  it('per-tenant share: a tenant filling far over its share evicts its own entries, never another\'s', async () => {
    const cache = new TenantCache({ maxBytes: 32 * 1024, tenantMaxBytes: 8 * 1024 });
    const small = 'x'.repeat(100);
    for (let i = 0; i < 10; i++) await as(B, () => cache.set(`b${i}`, small));
    // A writes 100 times its share; then ten more tenants fill theirs: 11 × 8 KiB > 32 KiB in all.
    const big = 'y'.repeat(400);
    for (let i = 0; i < 2000; i++) await as(A, () => cache.set(`a${i}`, big));
    for (let n = 10; n < 20; n++) for (let i = 0; i < 40; i++) await as(fake(n), () => cache.set(`c${i}`, big));
    for (let i = 0; i < 10; i++) assert.equal(await as(B, () => cache.get(`b${i}`)), small, `B's entry b${i} survives`);
    const s = cache.stats();
    assert.ok(s.bytes <= 32 * 1024, `the whole stays within maxBytes (${s.bytes})`);
    // A's most recent entries are those it kept.
    assert.equal(await as(A, () => cache.get('a1999')), big);
    assert.equal(await as(A, () => cache.get('a0')), undefined);
  });

  it('stampede: 100 concurrent misses of one key run fn once (per tenant), all get its value', async () => {
    const cache = new TenantCache({ maxBytes: 1 << 20, tenantMaxBytes: 1 << 16 });
    const calls = new Map<string, number>();
    const fn = (t: Tenant) => async () => {
      calls.set(t.id, (calls.get(t.id) ?? 0) + 1);
      await sleep(30);
      return { tenant: t.slug, at: Date.now() };
    };
    const results = await Promise.all([A, B].flatMap((t) => Array.from({ length: 100 }, () => as(t, () => cache.wrap('stats', 10_000, fn(t))))));
    assert.deepEqual([...calls.values()], [1, 1]);
    assert.equal(new Set(results.slice(0, 100).map((r) => JSON.stringify(r))).size, 1);
    assert.ok(results.slice(0, 100).every((r) => r.tenant === 't1') && results.slice(100).every((r) => r.tenant === 't2'));
    // A failure reaches every waiter and stores nothing.
    const boom = await Promise.allSettled(Array.from({ length: 10 }, () => as(A, () => cache.wrap('bad', 10_000, async () => { await sleep(10); throw new Error('boom'); }))));
    assert.ok(boom.every((r) => r.status === 'rejected'));
    assert.equal(await as(A, () => cache.get('bad')), undefined);
  });

  it('in process: an invalidation while fn runs keeps its (stale) value out of the cache', async () => {
    const cache = new TenantCache({ maxBytes: 1 << 20, tenantMaxBytes: 1 << 16 });
    for (const invalidate of [() => cache.delete('k'), () => cache.clearTenant(), () => cache.set('k', 'fresh')]) {
      let source = 'old';
      let release!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      let didRead!: () => void;
      const read = new Promise<void>((r) => { didRead = r; });
      const reader = as(A, () => cache.wrap('k', 10_000, async () => { const v = source; didRead(); await gate; return v; }));
      await read;
      source = 'new';
      await as(A, invalidate);
      release();
      assert.equal(await reader, 'old');
      const now = await as(A, () => cache.wrap('k', 10_000, async () => source));
      assert.notEqual(now, 'old', 'the value read before the invalidation was not stored');
      await as(A, () => cache.delete('k'));
    }
  });

  describe('shared through Redis', () => {
    const prefix = uniquePrefix('cache');
    let one: Instance;
    let two: Instance;
    let watcher: Redis;

    before(async () => {
      one = await instance(sharedRedisUrl(), prefix);
      two = await instance(sharedRedisUrl(), prefix);
      watcher = new Redis(sharedRedisUrl());
    });
    after(async () => {
      const keys = await watcher.keys(`${prefix}*`);
      if (keys.length) await watcher.del(...keys);
      watcher.disconnect();
      await one?.close();
      await two?.close();
    });

    it('two tenants\' same key never meet, on either instance; in Redis each key is under its tenant\'s hash tag', async () => {
      await as(A, () => one.cache.set('same', 'A'));
      await as(B, () => two.cache.set('same', 'B'));
      assert.equal(await as(A, () => two.cache.get('same')), 'A');
      assert.equal(await as(B, () => one.cache.get('same')), 'B');
      const keys = (await watcher.keys(`${prefix}*same`)).sort();
      assert.equal(keys.length, 2);
      for (const [t, k] of [[A, keys.find((k) => k.includes(A.id))], [B, keys.find((k) => k.includes(B.id))]] as const) {
        assert.ok(k?.startsWith(`${prefix}{t:${t.id}}:cache:`), `${k} is under ${t.slug}'s tag`);
        assert.equal(await watcher.get(k!), JSON.stringify(t === A ? 'A' : 'B'));
      }
    });

    it('a value set on one instance is read on the other; a delete there reaches the first\'s in-process copy within 1 s', async () => {
      await as(A, () => one.cache.set('k', 1));
      assert.equal(await as(A, () => two.cache.get('k')), 1); // now in two's in-process layer too
      await as(A, () => one.cache.delete('k'));
      const ms = await until(async () => (await as(A, () => two.cache.get('k'))) === undefined, 1_000, 'two drops k');
      assert.ok(ms < 1_000);
      await as(A, () => one.cache.set('k', 2));
      await until(async () => (await as(A, () => two.cache.get('k'))) === 2, 1_000, 'two sees the new value');
    });

    it('clearTenant is one INCR (no SCAN, KEYS or DEL), whatever the tenant holds, and takes effect on every instance', async () => {
      for (let i = 0; i < 300; i++) await as(A, () => one.cache.set(`many${i}`, i));
      await as(B, () => one.cache.set('many0', 'B'));
      assert.equal(await as(A, () => two.cache.get('many7')), 7);
      const base = new Redis(sharedRedisUrl());
      const monitor = await base.monitor();
      const seen: string[][] = [];
      monitor.on('monitor', (_time: string, args: string[]) => { if (args.some((a) => a.startsWith(prefix))) seen.push(args); });
      await sleep(50);
      await as(A, () => one.cache.clearTenant());
      await sleep(100);
      monitor.disconnect();
      base.disconnect();
      const commands = seen.map((a) => a[0]!.toLowerCase());
      assert.deepEqual(commands.filter((c) => c !== 'publish'), ['incr'], `commands of the clear: ${JSON.stringify(seen)}`);
      assert.equal(seen.find((a) => a[0]!.toLowerCase() === 'incr')![1], `${prefix}{t:${A.id}}:cache-gen`);
      for (const c of [one.cache, two.cache]) {
        await until(async () => (await as(A, () => c.get('many7'))) === undefined, 1_000, 'A\'s entries are gone');
        assert.equal(await as(A, () => c.get('many299')), undefined);
        assert.equal(await as(B, () => c.get('many0')), 'B', 'B\'s are not');
      }
    });

    it('stampede: 100 concurrent misses on one instance run fn once', async () => {
      let calls = 0;
      const values = await Promise.all(Array.from({ length: 100 }, () => as(A, () => one.cache.wrap('hot', 10_000, async () => { calls++; await sleep(30); return calls; }))));
      assert.equal(calls, 1);
      assert.ok(values.every((v) => v === 1));
      assert.equal(await as(A, () => two.cache.wrap('hot', 10_000, async () => 99)), 1, 'the other instance reads it from Redis');
    });

    it('a delete on another instance while fn runs keeps fn\'s stale value out of Redis and of both instances', async () => {
      for (let i = 0; i < 20; i++) {
        let source = `old${i}`;
        let release!: () => void;
        const gate = new Promise<void>((r) => { release = r; });
        let didRead!: () => void;
        const read = new Promise<void>((r) => { didRead = r; });
        const reader = as(A, () => one.cache.wrap('race', 10_000, async () => { const v = source; didRead(); await gate; return v; }));
        await read;
        source = `new${i}`;
        await as(A, () => two.cache.delete('race'));
        release();
        assert.equal(await reader, `old${i}`);
        await sleep(20);
        for (const c of [one.cache, two.cache]) assert.equal(await as(A, () => c.get('race')), undefined, `round ${i}: nothing stale stored`);
      }
    });
  });

  it('the bus\'s connection lost while commands still work: messages sent meanwhile are lost, so the in-process layer is dropped', async () => {
    const redis: TestRedis = await startTestRedis();
    const prefix = uniquePrefix('bus');
    const one = await instance(redis.url, prefix);
    const two = await instance(redis.url, prefix);
    const admin = new Redis(redis.url);
    try {
      for (let round = 0; round < 3; round++) {
        await as(A, () => one.cache.set('k', `v${round}`));
        assert.equal(await as(A, () => one.cache.get('k')), `v${round}`);
        await admin.client('KILL', 'TYPE', 'pubsub');
        // Published while nobody of `one` listens: lost.
        await as(A, () => two.cache.delete('k'));
        await until(() => one.link.subscribed, 5_000, 'one subscribes again');
        assert.equal(await as(A, () => one.cache.get('k')), undefined, `round ${round}: the value deleted meanwhile is not served`);
      }
    } finally {
      admin.disconnect();
      await one.close();
      await two.close();
      await redis.stop();
    }
  });

  it('Redis down: get misses, wrap runs fn, nothing fails; back: the in-process layer was dropped and caching resumes', async () => {
    const redis: TestRedis = await startTestRedis();
    const one = await instance(redis.url, uniquePrefix('down'));
    try {
      await as(A, () => one.cache.set('k', 'v1'));
      assert.equal(await as(A, () => one.cache.get('k')), 'v1');
      await redis.stop();
      await until(() => one.link.state === 'down', 5_000, 'one sees Redis down');
      assert.equal(one.cache.stats().mode, 'bypassed');
      assert.equal(await as(A, () => one.cache.get('k')), undefined, 'no in-process entry is served while Redis is down');
      let calls = 0;
      for (let i = 0; i < 5; i++) assert.equal(await as(A, () => one.cache.wrap('w', 10_000, async () => ++calls)), i + 1);
      await as(A, () => one.cache.set('k', 'v2'));
      await as(A, () => one.cache.delete('k'));
      await as(A, () => one.cache.clearTenant());
      await redis.start();
      await until(() => one.link.state === 'up' && one.link.subscribed, 10_000, 'one is back');
      assert.equal(one.cache.stats().entries, 0, 'the in-process layer was dropped');
      assert.equal(await as(A, () => one.cache.wrap('w', 10_000, async () => ++calls)), 6);
      assert.equal(await as(A, () => one.cache.wrap('w', 10_000, async () => ++calls)), 6, 'cached again');
    } finally {
      await one.close();
      await redis.stop();
    }
  });

  describe('the stale-after-invalidation race against PostgreSQL, many times', () => {
    let stack: TestStack;
    let other: Instance;
    const prefix = uniquePrefix('race');
    before(async () => {
      stack = await startTestStack({ redisUrl: sharedRedisUrl(), redisPrefix: prefix });
      await until(() => stack.tenantry.redis!.subscribed, 5_000, 'the stack\'s cache follows its channel');
      other = await instance(sharedRedisUrl(), prefix);
    });
    after(async () => {
      await other?.close();
      await stack?.close();
    });

    const count = async () => Number((await stack.tenantry.db.query<{ n: string }>('select count(*) as n from tickets'))[0]!.n);

    for (const mode of ['in process', 'across instances through Redis'] as const) {
      it(`${mode}: after a write and its invalidation, the cached count is the database's (200 rounds)`, async () => {
        const tenant = (await stack.tenantry.catalog.findBySlug('acme'))!;
        const reader = mode === 'in process' ? new TenantCache({ maxBytes: 1 << 20, tenantMaxBytes: 1 << 16 }) : stack.tenantry.cache;
        const writer = mode === 'in process' ? reader : other.cache;
        let stale = 0;
        for (let round = 0; round < 200; round++) {
          await runWithTenant(tenant, async () => {
            await reader.delete('count');
            const read = reader.wrap('count', 60_000, async () => {
              const n = await count();
              await sleep(Math.random() * 3); // the window between the read and the store
              return n;
            });
            const write = (async () => {
              await sleep(Math.random() * 3);
              await stack.tenantry.db.query(`insert into tickets (id, title) values (gen_random_uuid(), 'race')`);
              await writer.delete('count');
            })();
            await Promise.all([read, write]);
            // The other instance's message takes a moment to arrive (the contract: within 1 s); a
            // stale value stored after the invalidation would stay for the whole TTL.
            const truth = await count();
            const t0 = Date.now();
            while (await reader.wrap('count', 60_000, count) !== truth) {
              if (Date.now() - t0 > 1_000) { stale++; break; }
              await sleep(5);
            }
          });
        }
        assert.equal(stale, 0, `${stale} of 200 rounds left a stale count in the cache`);
      });
    }
  });
});
