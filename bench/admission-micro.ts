/**
 * `npx tsx bench/admission-micro.ts`: what one admission costs, without HTTP or PostgreSQL, in
 * this process: CPU per admit+release of the in-process store and of the Redis store (a private
 * redis-server, or BENCH_REDIS_URL), the Redis store's admit alone (lease not released), and two
 * bare PINGs through the same link as the floor of two commands per request. `CONCURRENCY`
 * admissions in flight, as 32 HTTP connections would have. Not part of `npm run bench`.
 */
import { MemoryLimitStore } from '../src/limits/memory-limit-store.js';
import { RedisLimitStore } from '../src/limits/redis-limit-store.js';
import { RedisLink } from '../src/redis/redis-link.js';
import { clockTicks, cleanupOnExit } from './common.js';
import { openBenchRedis } from './redis.js';
import { fmt, table } from './stats.js';

const OPS = Number(process.env.BENCH_MICRO_OPS ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_MICRO_CONCURRENCY ?? 32);
const rate = { perSecond: 1_000_000, burst: 10_000_000 };
const tenants = Array.from({ length: 8 }, (_, i) => `0190${String(i).padStart(4, '0')}-0000-7000-8000-000000000000`);

const { onCleanup, cleanup } = cleanupOnExit();
try {
  const redis = await openBenchRedis(onCleanup, clockTicks());
  const link = new RedisLink({ url: redis.url, prefix: redis.prefix });
  onCleanup(() => link.close());
  await link.waitUntilUp(2_000);
  if (link.state !== 'up') throw new Error(`Redis at ${redis.url} is ${link.state}`);
  const memory = new MemoryLimitStore();
  const store = new RedisLimitStore(link, 30_000);
  onCleanup(async () => { await memory.close(); await store.close(); });

  const modes: Record<string, (i: number) => Promise<void>> = {
    'in-process admit + release': async (i) => {
      const o = memory.admit(tenants[i % tenants.length]!, rate, 100_000);
      await Promise.resolve();
      if (o.allowed) o.release();
    },
    'Redis admit + release (what ships)': async (i) => {
      const o = await store.admit(tenants[i % tenants.length]!, rate, 100_000);
      if (o.allowed) o.release();
    },
    'Redis admit only (lease kept)': async (i) => {
      await store.admit(tenants[i % tenants.length]!, rate, 100_000);
    },
    'two PINGs (the floor of two commands)': async () => {
      await link.client.ping();
      void link.client.ping().catch(() => {});
    },
  };
  const rows: string[][] = [];
  for (const [name, op] of Object.entries(modes)) {
    for (const pass of ['warm-up', 'measure'] as const) {
      const ops = pass === 'warm-up' ? Math.min(2_000, OPS) : OPS;
      const redis0 = await redis.cpuMicros?.();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let next = 0;
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < ops) await op(next++);
      }));
      // Let the un-awaited commands (ZREM, the second PING) reach Redis before reading its CPU.
      await link.client.ping();
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const redis1 = await redis.cpuMicros?.();
      if (pass === 'measure') {
        rows.push([name, fmt(ops / (ms / 1000)), fmt((cpu.user + cpu.system) / ops, 1),
          redis0 === undefined || redis1 === undefined ? 'n/a' : fmt((redis1 - redis0) / ops, 1)]);
      }
    }
  }
  console.log(`${OPS} admissions per mode, ${CONCURRENCY} in flight; Redis: ${redis.server}`);
  console.log(table(['mode', 'ops/s', 'Node CPU µs/op', 'Redis CPU µs/op'], rows));
} finally {
  await cleanup();
}
process.exit(0);
