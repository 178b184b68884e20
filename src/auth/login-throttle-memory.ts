import { blockAfter, FAILURES_KEPT_OVER_LIMIT, type LoginThrottleStore, type ThrottlePolicy } from './login-throttle-store.js';

interface Entry {
  /** Times of the failures within the window, oldest first (ms since the epoch). */
  failures: number[];
  blockedUntil: number;
}

/** Keys kept at most; beyond it the oldest are forgotten (memory is bounded whatever is sent). */
const MAX_KEYS = 100_000;
const SWEEP_MS = 60_000;

/**
 * Sign-in throttle counts in this process: for one instance (no REDIS_URL), and what every
 * instance falls back on while Redis is unreachable. Entries whose failures and block have all
 * expired are swept once a minute.
 */
export class MemoryLoginThrottleStore implements LoginThrottleStore {
  readonly #policy: ThrottlePolicy;
  readonly #entries = new Map<string, Entry>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(policy: ThrottlePolicy) {
    this.#policy = policy;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#sweeper.unref();
  }

  async blockedFor(key: string): Promise<number> {
    return this.blockedForNow(key);
  }

  /** blockedFor() without a promise (LoginThrottle reads it on every check). */
  blockedForNow(key: string): number {
    const e = this.#entries.get(key);
    return e ? Math.max(0, e.blockedUntil - Date.now()) : 0;
  }

  async fail(key: string, limit: number): Promise<number> {
    const now = Date.now();
    let e = this.#entries.get(key);
    if (!e) {
      if (this.#entries.size >= MAX_KEYS) this.#entries.delete(this.#entries.keys().next().value!);
      e = { failures: [], blockedUntil: 0 };
      this.#entries.set(key, e);
    }
    const from = now - this.#policy.windowMs;
    let drop = 0;
    while (drop < e.failures.length && e.failures[drop]! <= from) drop++;
    if (drop > 0) e.failures.splice(0, drop);
    e.failures.push(now);
    const keep = limit + FAILURES_KEPT_OVER_LIMIT;
    if (e.failures.length > keep) e.failures.splice(0, e.failures.length - keep);
    const block = blockAfter(e.failures.length, limit, this.#policy);
    if (now + block > e.blockedUntil) e.blockedUntil = now + block;
    return Math.max(0, e.blockedUntil - now);
  }

  async clear(key: string): Promise<void> {
    this.#entries.delete(key);
  }

  #sweep(): void {
    const now = Date.now();
    const from = now - this.#policy.windowMs;
    for (const [key, e] of this.#entries) {
      if (e.blockedUntil <= now && (e.failures.length === 0 || e.failures[e.failures.length - 1]! <= from)) this.#entries.delete(key);
    }
  }

  close(): void {
    clearInterval(this.#sweeper);
  }
}
