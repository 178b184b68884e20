import { randomBytes } from 'node:crypto';
import { RedisLink, type RedisScript } from '../redis/redis-link.js';
import { EDGE_MS, remainingOf, type AdmitOutcome, type LimitStore, type Rate } from './limit-store.js';

/**
 * One token of the tenant's bucket and one concurrency lease, atomically, on Redis's clock (so
 * instances whose clocks differ still agree). The bucket is GCRA's one number (`tat`, ms); the
 * leases are a sorted set scored by expiry: expired leases (of an instance that died) are dropped
 * before counting, and the set itself expires when nobody renews it.
 * The rate is decided first: a request over it is `rate_limited` whatever its concurrency, and
 * one refused for concurrency spends no token. Leases given back since the instance's last call
 * for the tenant come along and are removed first (ARGV[6…]).
 * Replies: {0, reset} allowed; {1, retry, reset} over the rate; {2, reset} over concurrency.
 */
const ADMIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local ttl = tonumber(ARGV[5])
-- Leases this instance gave back since its last call for the tenant.
for i = 6, #ARGV do
  redis.call('ZREM', KEYS[2], ARGV[i])
end
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local over = tat - now - (burst - 1) * interval
if over > ${EDGE_MS} then
  return {1, string.format('%.3f', over), string.format('%.3f', tat - now)}
end
local nxt = tat + interval
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= limit then
  return {2, string.format('%.3f', tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.ceil(nxt - now) + 1000)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[4])
redis.call('PEXPIRE', KEYS[2], ttl)
return {0, string.format('%.3f', nxt - now)}
`;

/** Pushes the expiry of the given leases (those still there) `ttl` past Redis's now. */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local ttl = tonumber(ARGV[#ARGV])
for i = 1, #ARGV - 1 do
  redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 0
`;

/** How long a lease given back waits for the tenant's next admission to carry it, ms. */
const RELEASE_DELAY_MS = 20;

/**
 * The limits every instance shares through Redis. A lease lives `leaseTtlMs` unless renewed; this
 * process renews its leases every third of that while their requests run, so only the leases of a
 * process that died (or lost Redis) expire. A call that fails (Redis down, slow) throws: the
 * caller falls back to in-process limits.
 */
export class RedisLimitStore implements LimitStore {
  readonly #link: RedisLink;
  readonly #admit: RedisScript;
  readonly #renew: RedisScript;
  readonly #ttlMs: number;
  readonly #instance = randomBytes(6).toString('base64url');
  #seq = 0;
  /** Leases this process holds, by tenant: renewed on a timer. */
  readonly #held = new Map<string, Set<string>>();
  /**
   * Leases given back and not yet removed in Redis, by tenant: they ride along with the tenant's
   * next admission from this process (one call per request instead of two), or go on their own
   * within RELEASE_DELAY_MS. Until then other instances count them: at most that long a slot
   * looks taken that is free — never the other way round.
   */
  #released = new Map<string, string[]>();
  #releaseTimer: NodeJS.Timeout | undefined;
  readonly #timer: NodeJS.Timeout;

  constructor(link: RedisLink, leaseTtlMs: number) {
    this.#link = link;
    this.#ttlMs = leaseTtlMs;
    this.#admit = link.script('admit', 2, ADMIT);
    this.#renew = link.script('renew_leases', 1, RENEW);
    this.#timer = setInterval(() => this.#renewAll(), Math.max(100, Math.floor(leaseTtlMs / 3)));
    this.#timer.unref();
  }

  async admit(tenantId: string, rate: Rate, concurrency: number): Promise<AdmitOutcome> {
    const interval = 1000 / rate.perSecond;
    const lease = `${this.#instance}:${++this.#seq}`;
    const leasesKey = RedisLink.tenantKey(tenantId, 'leases');
    // The bucket is named by its parameters: a change of the tenant's limits starts a full bucket
    // (the old one expires by itself).
    const given = this.#released.get(tenantId);
    if (given) this.#released.delete(tenantId);
    let reply: [number, string, string?];
    try {
      reply = await this.#admit(
        [RedisLink.tenantKey(tenantId, 'rate', rate.perSecond, rate.burst), leasesKey],
        given ? [interval, rate.burst, concurrency, lease, this.#ttlMs, ...given] : [interval, rate.burst, concurrency, lease, this.#ttlMs]) as [number, string, string?];
    } catch (err) {
      // Not removed: they expire by themselves within the TTL if Redis stays away.
      if (given) this.#giveBack(tenantId, given);
      throw err;
    }
    const code = Number(reply[0]);
    if (code === 2) return { allowed: false, reason: 'concurrency', remaining: remainingOf(Number(reply[1]), interval, rate.burst), retryAfterMs: 1000, resetMs: Number(reply[1]) };
    if (code === 1) return { allowed: false, reason: 'rate', remaining: 0, retryAfterMs: Number(reply[1]), resetMs: Number(reply[2]) };
    const resetMs = Number(reply[1]);
    let held = this.#held.get(tenantId);
    if (!held) this.#held.set(tenantId, (held = new Set()));
    held.add(lease);
    let released = false;
    return {
      allowed: true,
      remaining: remainingOf(resetMs, interval, rate.burst),
      resetMs,
      release: () => {
        if (released) return;
        released = true;
        held.delete(lease);
        if (held.size === 0 && this.#held.get(tenantId) === held) this.#held.delete(tenantId);
        this.#giveBack(tenantId, [lease]);
      },
    };
  }

  /** Queues leases for removal (with the tenant's next admission, or on the timer). */
  #giveBack(tenantId: string, leases: readonly string[]): void {
    const queued = this.#released.get(tenantId);
    if (queued) queued.push(...leases);
    else this.#released.set(tenantId, [...leases]);
    this.#releaseTimer ??= setTimeout(() => this.#flushReleases(), RELEASE_DELAY_MS).unref();
  }

  #flushReleases(): void {
    this.#releaseTimer = undefined;
    const all = this.#released;
    this.#released = new Map();
    for (const [tenantId, leases] of all) {
      // Redis down: the leases expire by themselves within the TTL.
      this.#link.client.zrem(RedisLink.tenantKey(tenantId, 'leases'), ...leases).catch(() => {});
    }
  }

  #renewAll(): void {
    if (this.#link.state !== 'up') return;
    for (const [tenantId, leases] of this.#held) {
      if (leases.size === 0) continue;
      this.#renew([RedisLink.tenantKey(tenantId, 'leases')], [...leases, this.#ttlMs]).catch(() => {});
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#releaseTimer);
    this.#flushReleases();
  }
}
