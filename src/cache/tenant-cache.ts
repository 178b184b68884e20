import { requireTenantScope, runWithTenant } from '../context/tenant-context.js';
import type { RedisLink } from '../redis/redis-link.js';
import { MemoryLayer, type MemoryLayerStats } from './memory-layer.js';
import { RedisLayer, VERSION_TTL_MS, type Invalidation, type Version } from './redis-layer.js';

/** The longest an entry lives, milliseconds: the TTL of `set()` without one, and the cap of any other. */
export const CACHE_MAX_TTL_MS = 24 * 60 * 60 * 1000;

/** The longest key, characters. */
const MAX_KEY_LENGTH = 1024;

export interface TenantCacheOptions {
  /** The in-process layer's memory, all tenants together, bytes (0: no in-process layer). */
  readonly maxBytes: number;
  /** The most of it one tenant may fill, bytes. */
  readonly tenantMaxBytes: number;
  /** The Redis every instance shares: the shared layer and the invalidation bus. Absent: in-process only. */
  readonly redis?: RedisLink | undefined;
}

/**
 * Where the cache stands: `memory` (no Redis: in-process, one instance), `shared` (in-process
 * in front of Redis, invalidations reach every instance), `bypassed` (Redis configured but
 * unreachable: nothing is read from or stored in the cache, every `wrap` runs its function).
 */
export type TenantCacheMode = 'memory' | 'shared' | 'bypassed';

export interface TenantCacheStats extends MemoryLayerStats {
  readonly mode: TenantCacheMode;
}

/** A read or a computation in flight for one key of one tenant; an invalidation of the key marks it, and then it stores nothing. */
interface Pending {
  stale: boolean;
}

/** A computation in flight (`wrap`): callers that miss the same key meanwhile wait for it. */
interface Flight extends Pending {
  promise: Promise<string | undefined>;
}

/** What looking a key up found: the serialized value, or a miss (with the shared layer's version to store against). */
type Lookup = { readonly json: string } | { readonly json?: undefined; readonly version?: Version };

/**
 * The tenant cache (`tenantry.cache`): JSON values under string keys, always of the tenant of the
 * current context — every call takes the tenant from the async context and throws
 * TenantContextMissingError outside one, so two tenants' keys can never meet.
 *
 * Two layers: an in-process LRU with a share of memory per tenant (see MemoryLayer), and, when
 * Redis is configured, Redis behind it, shared by every instance (see RedisLayer), with
 * invalidations published so that every instance drops its in-process copy (within
 * milliseconds; the contract is a second).
 *
 * What it guarantees:
 * - a value computed by `wrap` from data read before an invalidation of its key (`delete`, `set`,
 *   `clearTenant`, on any instance) is never stored after it: computations in flight are marked
 *   locally, and Redis stores a computed value only if the key's version is the one read before
 *   the computation started (one script);
 * - stampede protection on one instance: concurrent `wrap` misses of one key run `fn` once (not
 *   across instances: each instance may run it once);
 * - Redis unreachable: nothing is read or stored (not even in-process: another instance's
 *   invalidations could not arrive), `get` misses and `wrap` runs `fn`; when Redis is back the
 *   in-process layer is dropped (messages sent meanwhile were lost), and tenants whose
 *   invalidations could not be sent are cleared then. No call fails because of Redis.
 */
export class TenantCache {
  readonly #memory: MemoryLayer | undefined;
  readonly #shared: RedisLayer | undefined;
  /** tenant → key → reads and computations in flight. */
  readonly #pending = new Map<string, Map<string, Set<Pending>>>();
  /** `tenant\nkey` → the computation in flight. */
  readonly #flights = new Map<string, Flight>();
  /** Tenants whose invalidation did not reach Redis: cleared once it is back. */
  readonly #undelivered = new Set<string>();
  readonly #stop: (() => void)[] = [];
  #closed = false;

  constructor(opts: TenantCacheOptions) {
    this.#memory = opts.maxBytes > 0 && opts.tenantMaxBytes > 0
      ? new MemoryLayer({ maxBytes: opts.maxBytes, tenantMaxBytes: opts.tenantMaxBytes })
      : undefined;
    const link = opts.redis;
    if (!link) return;
    this.#shared = new RedisLayer(link);
    this.#stop.push(link.onStateChange(() => this.#reset()), link.onSubscriptionChange(() => this.#reset()));
    void this.#shared.follow((inv) => this.#onRemote(inv)).then((stop) => {
      if (this.#closed) stop();
      else this.#stop.push(stop);
    });
  }

  /** The value of `key`, or undefined (absent, expired, or Redis unreachable). */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    const tenantId = requireTenantScope('tenantry.cache.get()').tenant.id;
    checkKey(key);
    if (this.#memoryUsable()) {
      const json = this.#memory?.get(tenantId, key);
      if (json !== undefined) return JSON.parse(json) as T;
    }
    const pending = this.#register(tenantId, key, { stale: false });
    try {
      const found = await this.#lookup(tenantId, key, pending);
      return found.json === undefined ? undefined : JSON.parse(found.json) as T;
    } finally {
      this.#unregister(tenantId, key, pending);
    }
  }

  /**
   * Stores `value` (JSON) for `ttlMs` (default and cap: CACHE_MAX_TTL_MS). A write: every instance
   * drops its copy, and computations in flight for the key do not overwrite it.
   */
  async set(key: string, value: unknown, ttlMs: number = CACHE_MAX_TTL_MS): Promise<void> {
    const tenantId = requireTenantScope('tenantry.cache.set()').tenant.id;
    checkKey(key);
    const ttl = checkTtl(ttlMs);
    const json = serialize(value);
    if (json === undefined) throw new TypeError('tenantry.cache.set(): the value has no JSON form (undefined, a function)');
    this.#invalidateKey(tenantId, key);
    if (!this.#shared) {
      this.#memory?.set(tenantId, key, json, ttl);
      return;
    }
    const written = await this.#shared.write(tenantId, key, json, ttl).then(() => true, () => false);
    await this.#announce({ tenantId, key }, written);
    // Reads that were answered before the write landed do not fill the in-process layer.
    this.#invalidateKey(tenantId, key);
    if (written && this.#memoryUsable()) this.#memory?.set(tenantId, key, json, ttl);
  }

  /**
   * The value of `key`; on a miss, `fn()`'s, stored for `ttlMs` (unless an invalidation of the key
   * came while `fn` ran). Concurrent misses of one key on this instance run `fn` once and all get
   * its result; `fn` runs in the tenant's context without the first caller's cancel signal (its
   * result serves every waiting caller). What comes back is always the JSON form of the value
   * (as from a hit); `undefined` is returned and not stored. If `fn` throws, every waiting caller
   * gets the error and nothing is stored.
   */
  async wrap<T>(key: string, ttlMs: number, fn: () => T | Promise<T>): Promise<T> {
    const scope = requireTenantScope('tenantry.cache.wrap()');
    const tenantId = scope.tenant.id;
    checkKey(key);
    const ttl = checkTtl(ttlMs);
    if (this.#memoryUsable()) {
      const json = this.#memory?.get(tenantId, key);
      if (json !== undefined) return JSON.parse(json) as T;
    }
    const id = `${tenantId}\n${key}`;
    let flight = this.#flights.get(id);
    if (!flight || flight.stale) {
      const compute = () => runWithTenant(scope.tenant, fn, { principal: scope.principal, requestId: scope.requestId, clientAddress: scope.clientAddress });
      flight = this.#fly(tenantId, key, ttl, compute);
      this.#flights.set(id, flight);
    }
    const json = await flight.promise;
    return (json === undefined ? undefined : JSON.parse(json)) as T;
  }

  /** Deletes `key` on every instance (and in Redis); computations in flight for it store nothing. */
  async delete(key: string): Promise<void> {
    const tenantId = requireTenantScope('tenantry.cache.delete()').tenant.id;
    checkKey(key);
    this.#invalidateKey(tenantId, key);
    if (!this.#shared) return;
    const removed = await this.#shared.remove(tenantId, key).then(() => true, () => false);
    await this.#announce({ tenantId, key }, removed);
    this.#invalidateKey(tenantId, key);
  }

  /**
   * Clears every entry of the current tenant, on every instance, in O(1): one INCR of the tenant's
   * generation in Redis (the old entries become unreachable and expire), one Map dropped in process.
   */
  async clearTenant(): Promise<void> {
    const tenantId = requireTenantScope('tenantry.cache.clearTenant()').tenant.id;
    this.#invalidateTenant(tenantId);
    if (!this.#shared) return;
    const cleared = await this.#shared.clearTenant(tenantId).then(() => true, () => false);
    await this.#announce({ tenantId }, cleared);
    this.#invalidateTenant(tenantId);
  }

  /** What the in-process layer holds, and where the cache stands. */
  stats(): TenantCacheStats {
    const memory = this.#memory?.stats() ?? { bytes: 0, entries: 0, tenants: 0 };
    const mode: TenantCacheMode = !this.#shared ? 'memory' : this.#shared.link.state === 'up' ? 'shared' : 'bypassed';
    return { ...memory, mode };
  }

  /** Stops following Redis and drops everything (Tenantry.close(); the link is closed by its owner). */
  close(): void {
    this.#closed = true;
    for (const stop of this.#stop.splice(0)) stop();
    this.#memory?.clear();
    this.#invalidateAll();
  }

  /** The in-process layer may be read and filled: it exists, and every invalidation reaches it (no Redis, or Redis up and subscribed). */
  #memoryUsable(): boolean {
    if (!this.#memory) return false;
    const link = this.#shared?.link;
    return !link || (link.state === 'up' && link.subscribed);
  }

  /** In process, then in Redis (a hit there fills the in-process layer unless the key was invalidated meanwhile). */
  async #lookup(tenantId: string, key: string, pending: Pending): Promise<Lookup> {
    const memoryUsable = this.#memoryUsable();
    if (memoryUsable) {
      const json = this.#memory?.get(tenantId, key);
      if (json !== undefined) return { json };
    }
    if (!this.#shared) return {};
    try {
      const r = await this.#shared.read(tenantId, key);
      if (!r.found) return { version: r.version };
      if (!pending.stale && memoryUsable && this.#memoryUsable()) this.#memory?.set(tenantId, key, r.json, r.ttlMs);
      return { json: r.json };
    } catch {
      return {}; // Redis down or failing: a miss, and nothing will be stored
    }
  }

  #fly(tenantId: string, key: string, ttlMs: number, compute: () => unknown): Flight {
    const flight: Flight = { stale: false, promise: Promise.resolve(undefined) };
    this.#register(tenantId, key, flight);
    const id = `${tenantId}\n${key}`;
    flight.promise = (async () => {
      try {
        const found = await this.#lookup(tenantId, key, flight);
        if (found.json !== undefined) return found.json;
        const started = Date.now();
        const json = serialize(await compute());
        if (json === undefined || flight.stale) return json;
        if (!this.#shared) {
          this.#memory?.set(tenantId, key, json, ttlMs);
        } else if (found.version && Date.now() - started < VERSION_TTL_MS / 2) {
          // Stored in Redis only against the version read before computing, in process only if
          // that worked and no invalidation came meanwhile.
          const stored = await this.#shared.storeIf(tenantId, key, found.version, json, ttlMs).catch(() => false);
          if (stored && !flight.stale && this.#memoryUsable()) this.#memory?.set(tenantId, key, json, ttlMs);
        }
        return json;
      } finally {
        this.#unregister(tenantId, key, flight);
        if (this.#flights.get(id) === flight) this.#flights.delete(id);
      }
    })();
    return flight;
  }

  /** Tells the other instances; what could not reach Redis is made good when it is back. */
  async #announce(inv: Invalidation, applied: boolean): Promise<void> {
    const published = applied && await this.#shared!.publish(inv);
    if (!published) this.#undelivered.add(inv.tenantId);
  }

  #onRemote(inv: Invalidation): void {
    if (inv.key === undefined) this.#invalidateTenant(inv.tenantId);
    else this.#invalidateKey(inv.tenantId, inv.key);
  }

  /**
   * Redis went down, came back, or the bus lost its subscription: drop what is held in process
   * (invalidations may have been missed), mark what is in flight, forget the generations seen; once
   * Redis is up, clear the tenants whose invalidations could not be sent.
   */
  #reset(): void {
    this.#memory?.clear();
    this.#invalidateAll();
    const shared = this.#shared!;
    shared.forgetGenerations();
    if (shared.link.state !== 'up' || this.#closed) return;
    for (const tenantId of [...this.#undelivered]) {
      this.#undelivered.delete(tenantId);
      void shared.clearTenant(tenantId)
        .then(() => shared.publish({ tenantId }))
        .then((ok) => { if (!ok) this.#undelivered.add(tenantId); }, () => this.#undelivered.add(tenantId));
    }
  }

  #register<P extends Pending>(tenantId: string, key: string, pending: P): P {
    let keys = this.#pending.get(tenantId);
    if (!keys) this.#pending.set(tenantId, keys = new Map());
    let set = keys.get(key);
    if (!set) keys.set(key, set = new Set());
    set.add(pending);
    return pending;
  }

  #unregister(tenantId: string, key: string, pending: Pending): void {
    const keys = this.#pending.get(tenantId);
    const set = keys?.get(key);
    if (!keys || !set) return;
    set.delete(pending);
    if (set.size === 0) keys.delete(key);
    if (keys.size === 0) this.#pending.delete(tenantId);
  }

  #invalidateKey(tenantId: string, key: string): void {
    this.#memory?.delete(tenantId, key);
    const keys = this.#pending.get(tenantId);
    const set = keys?.get(key);
    if (!keys || !set) return;
    for (const p of set) p.stale = true;
    keys.delete(key);
    if (keys.size === 0) this.#pending.delete(tenantId);
  }

  #invalidateTenant(tenantId: string): void {
    this.#memory?.clearTenant(tenantId);
    const keys = this.#pending.get(tenantId);
    if (!keys) return;
    for (const set of keys.values()) for (const p of set) p.stale = true;
    this.#pending.delete(tenantId);
  }

  #invalidateAll(): void {
    for (const keys of this.#pending.values()) for (const set of keys.values()) for (const p of set) p.stale = true;
    this.#pending.clear();
  }
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new TypeError(`a cache key is a string of 1 to ${MAX_KEY_LENGTH} characters`);
  }
}

function checkTtl(ttlMs: number): number {
  if (typeof ttlMs !== 'number' || !(ttlMs > 0)) throw new TypeError('a cache TTL is a positive number of milliseconds');
  return Math.min(Math.ceil(ttlMs), CACHE_MAX_TTL_MS);
}

function serialize(value: unknown): string | undefined {
  return JSON.stringify(value) as string | undefined;
}
