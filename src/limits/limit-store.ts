/** A tenant's rate: a token bucket of `burst` tokens refilled at `perSecond`. */
export interface Rate {
  readonly perSecond: number;
  readonly burst: number;
}

/** What admitting one request came to. Times are milliseconds. */
export type AdmitOutcome =
  | {
    readonly allowed: true;
    /** Requests the bucket still holds now. */
    readonly remaining: number;
    /** Until the bucket is full again. */
    readonly resetMs: number;
    /** Gives the concurrency lease back (once; later calls do nothing). */
    readonly release: () => void;
  }
  | {
    readonly allowed: false;
    readonly reason: 'rate' | 'concurrency';
    readonly remaining: number;
    /** When a retry can succeed (rate), or a guess (concurrency: 1 s). */
    readonly retryAfterMs: number;
    readonly resetMs: number;
  };

/**
 * Where the rate buckets and concurrency leases of tenants live: in this process
 * (MemoryLimitStore) or in the Redis every instance shares (RedisLimitStore). One call takes a
 * token AND a lease, or neither: a request refused for concurrency spends no rate, and one refused
 * for rate holds no lease.
 */
export interface LimitStore {
  admit(tenantId: string, rate: Rate, concurrency: number): Promise<AdmitOutcome> | AdmitOutcome;
  close(): Promise<void>;
}

/**
 * Below a microsecond, a difference of bucket times is rounding (performance.now()'s fractions,
 * Redis's times printed to the microsecond), not a request too early or a token short.
 */
export const EDGE_MS = 1e-3;

/** Requests a bucket still holds when its theoretical arrival time is `aheadMs` after now. */
export function remainingOf(aheadMs: number, interval: number, burst: number): number {
  // (now + 2500) - (now + 500) can come out as 1999.9999999998, which would floor to one request
  // less (seen on CI): EDGE_MS absorbs that.
  return Math.max(0, Math.floor((burst * interval - aheadMs + EDGE_MS) / interval));
}
