/**
 * Where sign-in throttling keeps its counts: one interface, an in-process implementation
 * (login-throttle-memory.ts) and a Redis one shared by every instance (login-throttle-redis.ts).
 * LoginThrottle (login-throttle.ts) decides which one answers.
 */

/** How failures turn into blocks; the same for every key of a throttle. */
export interface ThrottlePolicy {
  /** Failures older than this are forgotten, milliseconds. */
  readonly windowMs: number;
  /** The first block, milliseconds; each further failure doubles it. */
  readonly baseBlockMs: number;
  /** No block is longer, milliseconds. */
  readonly maxBlockMs: number;
}

/**
 * The block after `n` failures within the window when `limit` are free: none below the limit,
 * then base·2^(n−limit), at most the maximum.
 */
export function blockAfter(n: number, limit: number, policy: ThrottlePolicy): number {
  if (n < limit) return 0;
  return Math.min(policy.baseBlockMs * 2 ** Math.min(n - limit, 40), policy.maxBlockMs);
}

/**
 * Failures kept per key beyond the limit: enough for the doubling to reach any maximum (2^40 ×
 * the base), so that memory per key is bounded whatever an attacker sends.
 */
export const FAILURES_KEPT_OVER_LIMIT = 40;

/** The counts of one throttle, by key (an account's or a client address's). */
export interface LoginThrottleStore {
  /** How long `key` is still blocked, milliseconds (0: it is not). */
  blockedFor(key: string): Promise<number>;
  /**
   * Counts a failure of `key` (forgetting those older than the window) and, once `limit` are
   * counted, blocks it (see blockAfter; a longer block in place is kept). Returns how long `key`
   * is now blocked, milliseconds (0: it is not).
   */
  fail(key: string, limit: number): Promise<number>;
  /** Forgets the failures and the block of `key`. */
  clear(key: string): Promise<void>;
}
