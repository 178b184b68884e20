import { randomBytes, randomInt } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { RedisLink, type RedisScript } from '../redis/redis-link.js';

/**
 * The shared layer of the tenant cache (L2) in the Redis every instance uses, and the bus that
 * tells the other instances what to drop from their in-process layer.
 *
 * Keys, all of one tenant in one hash slot (`RedisLink.tenantKey`):
 * - `{t:<tenant>}:cache-gen`: the tenant's generation. Clearing the tenant is one INCR: every
 *   entry key carries the generation, so the old ones are unreachable at once and expire by TTL.
 *   A generation that is missing (never set, lost to a restart or to eviction) starts at a random
 *   number, so that the entries of an earlier run of it cannot become reachable again;
 * - `{t:<tenant>}:cache:<generation>:<key>`: an entry, the serialized value with a TTL;
 * - `{t:<tenant>}:cache-ver`: a hash, key → version, raised by every write of the key (set,
 *   delete). A computed value is stored only if the generation and the key's version are those
 *   read before it was computed (one script: compare and set), so a value read from the database
 *   before a write cannot be stored after the write's invalidation.
 *
 * Each instance remembers the generations it saw; every script compares the one it is given with
 * Redis's and answers the right one when they differ (then the call is made again), so Redis is
 * always the judge and no key is built inside a script (Redis Cluster routes by declared keys).
 */

/** The version hash lives this long after its last write: far longer than any computation in flight. */
export const VERSION_TTL_MS = 60 * 60 * 1000;

const PRELUDE = `
local g = redis.call('GET', KEYS[1])
if not g then g = ARGV[1]; redis.call('SET', KEYS[1], g) end
if g ~= ARGV[2] then return {0, g} end
`;

/** KEYS gen, entry, ver; ARGV fresh gen, gen, key → {0, gen} | {1, value, pttl} | {2, version}. */
const READ = `${PRELUDE}
local v = redis.call('GET', KEYS[2])
if v then return {1, v, redis.call('PTTL', KEYS[2])} end
return {2, redis.call('HGET', KEYS[3], ARGV[3]) or '0'}
`;

/** KEYS gen, entry, ver; ARGV fresh gen, gen, key, version, value, ttl → {0, gen} | {1} stored | {2} changed meanwhile. */
const STORE_IF = `${PRELUDE}
if (redis.call('HGET', KEYS[3], ARGV[3]) or '0') ~= ARGV[4] then return {2} end
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
return {1}
`;

/** KEYS gen, entry, ver; ARGV fresh gen, gen, key, version ttl, value, ttl → {0, gen} | {1}. */
const WRITE = `${PRELUDE}
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
return {1}
`;

/** KEYS gen, entry, ver; ARGV fresh gen, gen, key, version ttl → {0, gen} | {1}. */
const REMOVE = `${PRELUDE}
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('DEL', KEYS[2])
return {1}
`;

/** What a read of the shared layer found. */
export type SharedRead =
  | { readonly found: true; readonly json: string; readonly ttlMs: number }
  /** Absent; `version` is what a computed value must be stored against (storeIf). */
  | { readonly found: false; readonly version: Version };

/** A key's generation and version when it was read: a value computed after is stored only if they still hold. */
export interface Version {
  readonly gen: string;
  readonly version: string;
}

/** A message of the bus: drop one key of a tenant, or all of a tenant's. */
export type Invalidation = { readonly tenantId: string; readonly key: string } | { readonly tenantId: string; readonly key?: undefined };

/** The bus's channel (prefixed by the link). */
const CHANNEL = 'cache';

export class RedisLayer {
  readonly link: RedisLink;
  /** This instance, so that it skips its own messages. */
  readonly #instance = randomBytes(8).toString('hex');
  /** The generation last seen of each tenant (Redis corrects a stale one). */
  readonly #gens = new LRUCache<string, string>({ max: 100_000 });
  readonly #read: RedisScript;
  readonly #storeIf: RedisScript;
  readonly #write: RedisScript;
  readonly #remove: RedisScript;

  constructor(link: RedisLink) {
    this.link = link;
    this.#read = link.script('cache_read', 3, READ);
    this.#storeIf = link.script('cache_store_if', 3, STORE_IF);
    this.#write = link.script('cache_write', 3, WRITE);
    this.#remove = link.script('cache_remove', 3, REMOVE);
  }

  /** The value, with what is left of its TTL; or absent, with the version to store against. Rejects when Redis fails. */
  async read(tenantId: string, key: string): Promise<SharedRead> {
    const r = await this.#call(this.#read, tenantId, key, []);
    if (r.reply[0] === 1) return { found: true, json: String(r.reply[1]), ttlMs: Number(r.reply[2]) };
    return { found: false, version: { gen: r.gen, version: String(r.reply[1]) } };
  }

  /** Stores a computed value if the key's generation and version are still `v`; false if they changed. */
  async storeIf(tenantId: string, key: string, v: Version, json: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#storeIf(this.#keys(tenantId, v.gen, key), [freshGen(), v.gen, key, v.version, json, ttlMs]) as unknown[];
    if (reply[0] === 0) this.#gens.set(tenantId, String(reply[1]));
    return reply[0] === 1;
  }

  /** Stores a value (a write: computations in flight for the key will not overwrite it). */
  async write(tenantId: string, key: string, json: string, ttlMs: number): Promise<void> {
    await this.#call(this.#write, tenantId, key, [VERSION_TTL_MS, json, ttlMs]);
  }

  /** Deletes a key (a write: computations in flight for it will not store what they read before). */
  async remove(tenantId: string, key: string): Promise<void> {
    await this.#call(this.#remove, tenantId, key, [VERSION_TTL_MS]);
  }

  /** Clears a tenant: one INCR of its generation, whatever it holds. */
  async clearTenant(tenantId: string): Promise<void> {
    const gen = await this.link.client.incr(RedisLink.tenantKey(tenantId, 'cache-gen'));
    this.#gens.set(tenantId, String(gen));
  }

  /** Forgets the generations seen (Redis may have been replaced meanwhile). */
  forgetGenerations(): void {
    this.#gens.clear();
  }

  /** Tells the other instances to drop a key or a tenant from their in-process layer; false when Redis is down. */
  publish(inv: Invalidation): Promise<boolean> {
    return this.link.publish(CHANNEL, JSON.stringify(inv.key === undefined ? [this.#instance, inv.tenantId] : [this.#instance, inv.tenantId, inv.key]));
  }

  /** Follows the other instances' invalidations. */
  follow(fn: (inv: Invalidation) => void): Promise<() => void> {
    return this.link.subscribe(CHANNEL, (message) => {
      let m: unknown;
      try {
        m = JSON.parse(message);
      } catch {
        return;
      }
      if (!Array.isArray(m) || m[0] === this.#instance || typeof m[1] !== 'string') return;
      fn(typeof m[2] === 'string' ? { tenantId: m[1], key: m[2] } : { tenantId: m[1] });
    });
  }

  #keys(tenantId: string, gen: string, key: string): string[] {
    return [RedisLink.tenantKey(tenantId, 'cache-gen'), RedisLink.tenantKey(tenantId, 'cache', gen, key), RedisLink.tenantKey(tenantId, 'cache-ver')];
  }

  /** Runs a script with the generation known (or none yet); when Redis answers another, once more with that one. */
  async #call(script: RedisScript, tenantId: string, key: string, args: readonly (string | number)[]): Promise<{ reply: unknown[]; gen: string }> {
    let gen = this.#gens.get(tenantId) ?? '';
    for (let attempt = 0; ; attempt++) {
      const reply = await script(this.#keys(tenantId, gen, key), [freshGen(), gen, key, ...args]) as unknown[];
      if (reply[0] !== 0) return { reply, gen };
      gen = String(reply[1]);
      this.#gens.set(tenantId, gen);
      // Only a clear racing this very call changes it again; a third answer would be another race.
      if (attempt === 2) throw new Error('the tenant cache generation kept changing');
    }
  }
}

/** A generation for a tenant that has none: random, so that no earlier one comes back. */
function freshGen(): string {
  return String(randomInt(2 ** 20, 2 ** 47));
}
