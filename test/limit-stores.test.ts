/**
 * The two rate stores' arithmetic at its edges, run many times: a full bucket always admits its
 * `burst` requests and refuses the next one — also with `burst: 1`, where the first request sits
 * exactly on the edge and a floating-point round trip ((now + interval) - interval > now) once
 * refused it (a tenant's first login after its limits were set to 1/s, burst 1: 429, seen on CI).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { MemoryLimitStore } from '../src/limits/memory-limit-store.js';
import { RedisLimitStore } from '../src/limits/redis-limit-store.js';
import type { LimitStore, Rate } from '../src/limits/limit-store.js';
import { RedisLink } from '../src/redis/redis-link.js';
import { sharedRedisUrl, uniquePrefix } from './redis-server.js';

async function fullBucketAdmitsBurstThenRefuses(store: LimitStore, rounds: number, rate: Rate): Promise<void> {
  const firstRefused: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const tenant = randomBytes(8).toString('hex');
    let full = true;
    for (let n = 0; n < rate.burst && full; n++) {
      const o = await store.admit(tenant, rate, 1_000);
      if (o.allowed) o.release();
      else { firstRefused.push(n); full = false; }
    }
    if (!full) continue;
    const over = await store.admit(tenant, rate, 1_000);
    assert.equal(over.allowed, false, `round ${i}: request ${rate.burst + 1} of a ${rate.burst}-burst bucket`);
  }
  assert.deepEqual(firstRefused, [], `requests refused within a full bucket (their index in the burst), of ${rounds} tenants`);
}

describe('rate stores at the edge of the bucket', () => {
  it('in-process: a full bucket admits burst requests, then refuses (burst 1, 2, 5; 20,000 tenants each)', async () => {
    const store = new MemoryLimitStore();
    try {
      for (const rate of [{ perSecond: 1, burst: 1 }, { perSecond: 3, burst: 2 }, { perSecond: 7, burst: 5 }]) {
        await fullBucketAdmitsBurstThenRefuses(store, 20_000, rate);
      }
    } finally {
      await store.close();
    }
  });

  describe('through Redis', () => {
    const link = new RedisLink({ url: sharedRedisUrl(), prefix: uniquePrefix('limit-stores') });
    const store = new RedisLimitStore(link, 5_000);
    after(async () => {
      await store.close();
      await link.close();
    });

    it('a full bucket admits burst requests, then refuses (1/s burst 1, 3/s burst 1, 7/s burst 3; 2,000 tenants each)', async () => {
      assert.ok(await link.waitUntilUp(5_000), 'the machine\'s Redis');
      for (const rate of [{ perSecond: 1, burst: 1 }, { perSecond: 3, burst: 1 }, { perSecond: 7, burst: 3 }]) {
        await fullBucketAdmitsBurstThenRefuses(store, 2_000, rate);
      }
    });
  });
});
