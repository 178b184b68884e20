import type { Tenant } from '../catalog/types.js';
import type { RedisLink } from '../redis/redis-link.js';
import type { AdmitOutcome } from './limit-store.js';
import { MemoryLimitStore } from './memory-limit-store.js';
import type { Limits, Plans } from './plans.js';
import { RedisLimitStore } from './redis-limit-store.js';

/** What admitting a request came to, with the IETF RateLimit fields to send either way. */
export interface AdmissionDecision {
  readonly allowed: boolean;
  /** Why it was refused: 429 rate_limited or concurrency_limited. */
  readonly code?: 'rate_limited' | 'concurrency_limited';
  /** Seconds (≥ 1) before a retry can succeed, for `Retry-After`. */
  readonly retryAfterSeconds?: number;
  /** `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): `"tenant";q=<burst>;w=<seconds to refill it>`. */
  readonly policy: string;
  /** `RateLimit`: `"tenant";r=<remaining>;t=<seconds until the bucket is full>`. */
  readonly rateLimit: string;
  /** Gives the concurrency lease back; call it when the answer has gone (a no-op for a refusal). */
  readonly release: () => void;
}

const noop = () => {};

/**
 * Admission before work: a tenant's request takes a token of its rate bucket (its plan's
 * `requests_per_second` and `burst`) and a lease of its `concurrent_requests`, or is refused at
 * once — before its body is read, before any database work.
 *
 * With Redis (REDIS_URL) every instance shares the buckets and leases; while Redis is down (or a
 * call to it fails) each instance enforces the limits on its own, in-process, and goes back to
 * Redis when it is up again. Without Redis, in-process is the whole story (one instance).
 */
export class Admission {
  readonly #plans: Plans;
  readonly #memory = new MemoryLimitStore();
  readonly #redis: RedisLimitStore | undefined;
  readonly #link: RedisLink | undefined;
  readonly #policies = new WeakMap<Limits, string>();

  constructor(plans: Plans, link: RedisLink | undefined, leaseTtlMs: number) {
    this.#plans = plans;
    this.#link = link;
    this.#redis = link ? new RedisLimitStore(link, leaseTtlMs) : undefined;
  }

  /** Admits one request of `tenant` (never throws: a refusal is a decision). */
  admit(tenant: Tenant): AdmissionDecision | Promise<AdmissionDecision> {
    const { limits } = this.#plans.of(tenant);
    const rate = { perSecond: limits.requests_per_second, burst: limits.burst };
    if (this.#redis && this.#link!.state === 'up') {
      return this.#redis.admit(tenant.id, rate, limits.concurrent_requests).then(
        (outcome) => this.#decide(limits, outcome),
        // A failed call (Redis went away, or was too slow): this instance decides alone.
        () => this.#decide(limits, this.#memory.admit(tenant.id, rate, limits.concurrent_requests)));
    }
    return this.#decide(limits, this.#memory.admit(tenant.id, rate, limits.concurrent_requests));
  }

  #decide(limits: Limits, o: AdmitOutcome): AdmissionDecision {
    const policy = this.#policy(limits);
    if (o.allowed) {
      return { allowed: true, policy, rateLimit: `"tenant";r=${o.remaining};t=${Math.ceil(o.resetMs / 1000)}`, release: o.release };
    }
    const retryAfterSeconds = Math.max(1, Math.ceil(o.retryAfterMs / 1000));
    return {
      allowed: false,
      code: o.reason === 'rate' ? 'rate_limited' : 'concurrency_limited',
      retryAfterSeconds,
      policy,
      rateLimit: `"tenant";r=${o.remaining};t=${o.reason === 'rate' ? retryAfterSeconds : Math.ceil(o.resetMs / 1000)}`,
      release: noop,
    };
  }

  /** The policy field of a plan's limits: the bucket (`q`) and how long it takes to refill (`w`). */
  #policy(limits: Limits): string {
    let p = this.#policies.get(limits);
    if (!p) {
      p = `"tenant";q=${limits.burst};w=${Math.max(1, Math.ceil(limits.burst / limits.requests_per_second))}`;
      this.#policies.set(limits, p);
    }
    return p;
  }

  async close(): Promise<void> {
    await Promise.all([this.#memory.close(), this.#redis?.close()]);
  }
}
