import { randomUUID } from 'node:crypto';
import type { RedisLink, RedisScript } from '../redis/redis-link.js';
import { FAILURES_KEPT_OVER_LIMIT, type LoginThrottleStore, type ThrottlePolicy } from './login-throttle-store.js';

/**
 * One failure, atomically, on Redis's clock (TIME): forget failures older than the window, add
 * this one, keep at most limit + 40, and block once `limit` are counted for base·2^(n−limit) ms
 * (at most the maximum; a longer block in place is kept). The block is a key of its own whose
 * PTTL is the time left, so checking it is one PTTL.
 * KEYS[1]: failures (sorted set, score = ms); KEYS[2]: the block.
 * ARGV: limit, window ms, base ms, max ms, kept over the limit, a unique member.
 */
const FAIL = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, base, max, over = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[6])
local n = redis.call('ZCARD', KEYS[1])
if n > limit + over then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - (limit + over) - 1)
  n = limit + over
end
redis.call('PEXPIRE', KEYS[1], window)
local left = redis.call('PTTL', KEYS[2])
if left < 0 then left = 0 end
if n < limit then return left end
local block = math.floor(math.min(base * 2 ^ math.min(n - limit, 40), max))
if block > left then
  redis.call('SET', KEYS[2], '1', 'PX', block)
  left = block
end
return left
`;

/**
 * Sign-in throttle counts in the Redis every instance shares, so an attacker spreading attempts
 * over instances is counted once. Keys come hash-tagged from LoginThrottle (`{t:<tenant>}:login:…`,
 * `{a:<address>}:login`): the two keys of one subject share a slot (Redis Cluster). Every method
 * rejects when Redis does not answer (the link never waits); LoginThrottle then falls back.
 */
export class RedisLoginThrottleStore implements LoginThrottleStore {
  readonly #redis: RedisLink;
  readonly #policy: ThrottlePolicy;
  readonly #fail: RedisScript;

  constructor(redis: RedisLink, policy: ThrottlePolicy) {
    this.#redis = redis;
    this.#policy = policy;
    this.#fail = redis.script('login_fail', 2, FAIL);
  }

  async blockedFor(key: string): Promise<number> {
    return Math.max(0, await this.#redis.client.pttl(`${key}:block`));
  }

  async fail(key: string, limit: number): Promise<number> {
    const p = this.#policy;
    const left = await this.#fail([key, `${key}:block`], [limit, p.windowMs, p.baseBlockMs, p.maxBlockMs, FAILURES_KEPT_OVER_LIMIT, randomUUID()]);
    return Math.max(0, Number(left));
  }

  async clear(key: string): Promise<void> {
    await this.#redis.client.del(key, `${key}:block`);
  }
}
