import { createHash } from 'node:crypto';
import { clientAddressKey } from '../core/client-address.js';
import { TenantryError } from '../errors.js';
import { RedisLink } from '../redis/redis-link.js';
import { MemoryLoginThrottleStore } from './login-throttle-memory.js';
import { RedisLoginThrottleStore } from './login-throttle-redis.js';
import type { LoginThrottleStore, ThrottlePolicy } from './login-throttle-store.js';

export interface LoginThrottleOptions {
  /** Failures of one account (tenant and email) before it is blocked. */
  readonly accountFailures: number;
  /** Failures from one client address (any tenant, any account) before it is blocked. */
  readonly addressFailures: number;
  /** Failures older than this are forgotten, seconds. */
  readonly windowSeconds: number;
  /** The longest block, seconds. */
  readonly maxBlockSeconds: number;
  /** The first block, milliseconds (default 1000); each further failure doubles it. */
  readonly baseBlockMs?: number;
}

/** One sign-in: which account of which tenant, from which client address (`request.ip`). */
export interface LoginAttempt {
  readonly tenantId: string;
  readonly email: string;
  readonly address: string | undefined;
}

/**
 * Sign-in throttling (`POST /auth/token`), per account and per client address.
 *
 * - Before the password is checked: if the account or the address is blocked, 429
 *   `too_many_attempts` with `Retry-After` (seconds, at least 1) — and no password hash is
 *   computed, so a blocked attacker costs one lookup, not a scrypt.
 * - After a failure: it is counted for both (failures older than the window are forgotten); once
 *   `accountFailures` are counted for the account it is blocked for 1 s, then each further failure
 *   doubles the block (2 s, 4 s, …) up to `maxBlockSeconds`; the address likewise after
 *   `addressFailures`. Failures are only counted when the password was checked, so requests
 *   refused while blocked do not lengthen the block.
 * - After a success: the account's failures are forgotten. The address's are not (an attacker
 *   with one valid account of their own must not be able to reset their address's count).
 *
 * The trade-off, on purpose: anyone who knows an email can keep that account blocked by failing
 * on it. The block never exceeds `maxBlockSeconds` past the last failure, the owner's correct
 * password works as soon as it ends, and the address limit bounds how fast one address can do it
 * (see docs/login-throttling.md).
 *
 * Counts live in Redis when it is configured and up (one Lua script per failure, atomic, on
 * Redis's clock; keys `{t:<tenant>}:login:<sha256 of the email>` and `{a:<address>}:login`), so
 * every instance shares them. Every failure is also counted in this process: while Redis is down
 * (or a command fails) the process enforces on its own counts, without a 5xx and without waiting,
 * and uses Redis again as soon as it is back; a check takes the longer of the two blocks.
 */
export class LoginThrottle {
  readonly #opts: LoginThrottleOptions;
  readonly #memory: MemoryLoginThrottleStore;
  readonly #redisStore: RedisLoginThrottleStore | undefined;
  readonly #redis: RedisLink | undefined;

  constructor(opts: LoginThrottleOptions, redis?: RedisLink) {
    this.#opts = opts;
    const policy: ThrottlePolicy = {
      windowMs: opts.windowSeconds * 1000,
      baseBlockMs: Math.min(opts.baseBlockMs ?? 1000, opts.maxBlockSeconds * 1000),
      maxBlockMs: opts.maxBlockSeconds * 1000,
    };
    this.#memory = new MemoryLoginThrottleStore(policy);
    this.#redis = redis;
    this.#redisStore = redis ? new RedisLoginThrottleStore(redis, policy) : undefined;
  }

  /** The key of an account: tenant and normalised email (hashed: no address in Redis). */
  static accountKey(tenantId: string, email: string): string {
    const sha = createHash('sha256').update(email.trim().toLowerCase()).digest('hex');
    return RedisLink.tenantKey(tenantId, 'login', sha);
  }

  /** The key of a client address (an IPv6 address counts as its /64). */
  static addressKey(address: string | undefined): string {
    return `{a:${clientAddressKey(address)}}:login`;
  }

  /** Throws 429 `too_many_attempts` (with `retry_after`) when the account or the address is blocked. */
  async check(attempt: LoginAttempt): Promise<void> {
    const keys = this.#keys(attempt);
    let ms = Math.max(...keys.map((k) => this.#memory.blockedForNow(k)));
    const shared = this.#shared();
    if (shared) {
      try {
        const left = await Promise.all(keys.map((k) => shared.blockedFor(k)));
        ms = Math.max(ms, ...left);
      } catch {
        // Redis did not answer: this process's counts decide.
      }
    }
    if (ms > 0) {
      const retryAfter = Math.max(1, Math.ceil(ms / 1000));
      throw new TenantryError('too_many_attempts', `too many failed sign-ins; retry in ${retryAfter} s`, { retry_after: retryAfter });
    }
  }

  /** Counts a failed sign-in for the account and the address. */
  async failed(attempt: LoginAttempt): Promise<void> {
    const [account, address] = this.#keys(attempt);
    await Promise.all([this.#memory.fail(account, this.#opts.accountFailures), this.#memory.fail(address, this.#opts.addressFailures)]);
    const shared = this.#shared();
    if (shared) {
      await Promise.all([shared.fail(account, this.#opts.accountFailures), shared.fail(address, this.#opts.addressFailures)]).catch(() => {});
    }
  }

  /** A successful sign-in: the account's failures are forgotten. */
  async succeeded(attempt: LoginAttempt): Promise<void> {
    const [account] = this.#keys(attempt);
    await this.#memory.clear(account);
    await this.#shared()?.clear(account).catch(() => {});
  }

  /**
   * One sign-in under the throttle: check(), then `authenticate` (null: the credentials were
   * wrong), then failed() or succeeded(). Errors of `authenticate` pass through uncounted.
   */
  async guard<T>(attempt: LoginAttempt, authenticate: () => Promise<T | null>): Promise<T | null> {
    await this.check(attempt);
    const result = await authenticate();
    if (result === null) await this.failed(attempt);
    else await this.succeeded(attempt);
    return result;
  }

  /** Where counts are shared now: Redis when configured and up, else none (this process only). */
  #shared(): LoginThrottleStore | undefined {
    return this.#redis?.state === 'up' ? this.#redisStore : undefined;
  }

  #keys(a: LoginAttempt): [string, string] {
    return [LoginThrottle.accountKey(a.tenantId, a.email), LoginThrottle.addressKey(a.address)];
  }

  close(): void {
    this.#memory.close();
  }
}
