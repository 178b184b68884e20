import { peekTenant } from '../context/tenant-context.js';
import { TenantryError } from '../errors.js';
import { FairSemaphore, type Release } from '../limits/fair-semaphore.js';
import { hashPassword, verifyPassword } from './password.js';

export interface PasswordHasherOptions {
  /** Hashes computed at once (TENANTRY_PASSWORD_HASH_CONCURRENCY). */
  readonly concurrency: number;
  /** Hashes one tenant may have waiting; one more is refused at once (default 32 × concurrency). */
  readonly queuePerTenant?: number;
  /** A hash waits at most this long for its turn, milliseconds (default 10 s). */
  readonly waitMs?: number;
}

/**
 * Password hashing (scrypt: ~32 MiB and a core for tens of ms each) as a bounded resource shared
 * fairly by tenants. At most `concurrency` hashes run at once; waiting ones are served tenant by
 * tenant in turn (FairSemaphore, each tenant allowed the whole capacity), so a login flood at one
 * tenant delays another tenant's login by about one hash, not by the flood's queue. Without it
 * every hash went to libuv's thread pool (4 threads) first come first served: 64 wrong-password
 * loops at one tenant made another's login wait seconds.
 *
 * A tenant with `queuePerTenant` hashes already waiting is refused at once with 429
 * `too_many_attempts` (`Retry-After: 1`) rather than queued without end, and so is a hash still
 * waiting after `waitMs`. The bound is generous on purpose (32 × concurrency): a refusal cheaper
 * than waiting turns 64 looping attackers into a spin of requests that costs the server more CPU
 * than their hashes did (measured: with 4 × concurrency another tenant's login went from 0.3 s to
 * 1.1 s under the same flood); waiting keeps each attacker to one attempt per hash. The tenant is the one of the current context; outside one (platform
 * work: creating a tenant's owner) the key is `platform`.
 *
 * `hashPassword` and `verifyPassword` stay the ungated primitives.
 */
export class PasswordHasher {
  readonly #gate: FairSemaphore;
  readonly #capacity: number;
  readonly #queue: number;
  readonly #waitMs: number;

  constructor(opts: PasswordHasherOptions) {
    this.#capacity = opts.concurrency;
    this.#gate = new FairSemaphore(opts.concurrency);
    this.#queue = opts.queuePerTenant ?? 32 * opts.concurrency;
    this.#waitMs = opts.waitMs ?? 10_000;
  }

  /** Hashes a password (see hashPassword), in the current tenant's turn. */
  hash(password: string): Promise<string> {
    return this.#gated(() => hashPassword(password));
  }

  /** Checks a password against a stored hash (see verifyPassword), in the current tenant's turn. */
  verify(password: string, stored: string | null): Promise<boolean> {
    return this.#gated(() => verifyPassword(password, stored));
  }

  /** Hashes running and waiting, in all or for one tenant (`platform` outside a tenant). */
  load(key?: string): { running: number; waiting: number } {
    return { running: this.#gate.inUse(key), waiting: this.#gate.waiting(key) };
  }

  async #gated<T>(fn: () => Promise<T>): Promise<T> {
    const key = peekTenant()?.id ?? 'platform';
    let release: Release | undefined = this.#gate.tryAcquire(key, this.#capacity);
    if (!release) {
      if (this.#gate.waiting(key) >= this.#queue) throw busy();
      release = await this.#gate.acquire(key, this.#capacity, { timeoutMs: this.#waitMs, timeoutError: busy });
    }
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

function busy(): TenantryError {
  return new TenantryError('too_many_attempts', 'too many sign-ins of this tenant are waiting; retry shortly', { retry_after: 1 });
}
