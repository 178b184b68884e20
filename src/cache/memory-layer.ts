/**
 * The in-process layer of the tenant cache (L1): an LRU of serialized values with a share of
 * memory per tenant. Every tenant has an LRU of its own (a Map in use order) and a byte count:
 * - a tenant over `tenantMaxBytes` evicts its own least recently used entries, never another's;
 * - when all of them together pass `maxBytes`, entries are evicted from the tenant that holds the
 *   most (so a tenant within its share loses entries only when every tenant is near theirs);
 * - clearing a tenant drops its LRU whole: one Map, whatever it holds.
 * An entry's size is that of its serialized form (see entrySize).
 */

/** Bookkeeping counted per entry (the Map slot, the entry object), bytes. */
const ENTRY_OVERHEAD = 64;

/** An entry's size in bytes: the key and the JSON as V8 holds them at most (two bytes a character), plus bookkeeping. */
export function entrySize(key: string, json: string): number {
  return ENTRY_OVERHEAD + 2 * (key.length + json.length);
}

interface Entry {
  readonly json: string;
  readonly size: number;
  /** Date.now() after which it is gone. */
  readonly expiresAt: number;
}

/** One tenant's share: its entries, least recently used first, and their bytes. */
interface Share {
  bytes: number;
  readonly entries: Map<string, Entry>;
}

export interface MemoryLayerOptions {
  /** All tenants together, bytes (0: the layer holds nothing). */
  readonly maxBytes: number;
  /** One tenant at most, bytes. */
  readonly tenantMaxBytes: number;
}

/** What the layer holds now (tests, metrics). */
export interface MemoryLayerStats {
  readonly bytes: number;
  readonly entries: number;
  readonly tenants: number;
}

export class MemoryLayer {
  readonly #maxBytes: number;
  readonly #tenantMaxBytes: number;
  readonly #shares = new Map<string, Share>();
  #bytes = 0;
  #entries = 0;

  constructor(opts: MemoryLayerOptions) {
    this.#maxBytes = opts.maxBytes;
    this.#tenantMaxBytes = Math.min(opts.tenantMaxBytes, opts.maxBytes);
  }

  /** The serialized value, or undefined (absent or expired); a hit makes the entry the most recently used. */
  get(tenantId: string, key: string): string | undefined {
    const share = this.#shares.get(tenantId);
    const entry = share?.entries.get(key);
    if (!share || !entry) return undefined;
    share.entries.delete(key);
    if (entry.expiresAt <= Date.now()) {
      this.#forget(tenantId, share, entry);
      return undefined;
    }
    share.entries.set(key, entry);
    return entry.json;
  }

  /** Stores a serialized value for `ttlMs`; one larger than a tenant's share is not kept (the next layer still has it). */
  set(tenantId: string, key: string, json: string, ttlMs: number): void {
    const size = entrySize(key, json);
    let share = this.#shares.get(tenantId);
    const old = share?.entries.get(key);
    if (share && old) {
      share.entries.delete(key);
      this.#forget(tenantId, share, old);
      share = this.#shares.get(tenantId);
    }
    if (size > this.#tenantMaxBytes || ttlMs <= 0) return;
    if (!share) this.#shares.set(tenantId, share = { bytes: 0, entries: new Map() });
    share.entries.set(key, { json, size, expiresAt: Date.now() + ttlMs });
    share.bytes += size;
    this.#bytes += size;
    this.#entries++;
    // Its own share first: a tenant over it pays with its own entries.
    while (share.bytes > this.#tenantMaxBytes) this.#evictOldest(tenantId, share);
    // Then the whole: the tenant holding the most gives way.
    while (this.#bytes > this.#maxBytes) {
      const [id, biggest] = this.#biggest();
      this.#evictOldest(id, biggest);
    }
  }

  delete(tenantId: string, key: string): void {
    const share = this.#shares.get(tenantId);
    const entry = share?.entries.get(key);
    if (!share || !entry) return;
    share.entries.delete(key);
    this.#forget(tenantId, share, entry);
  }

  /** Drops everything of one tenant: its share goes whole (O(1)). */
  clearTenant(tenantId: string): void {
    const share = this.#shares.get(tenantId);
    if (!share) return;
    this.#shares.delete(tenantId);
    this.#bytes -= share.bytes;
    this.#entries -= share.entries.size;
  }

  /** Drops everything. */
  clear(): void {
    this.#shares.clear();
    this.#bytes = 0;
    this.#entries = 0;
  }

  /** Bytes one tenant holds now. */
  bytesOf(tenantId: string): number {
    return this.#shares.get(tenantId)?.bytes ?? 0;
  }

  stats(): MemoryLayerStats {
    return { bytes: this.#bytes, entries: this.#entries, tenants: this.#shares.size };
  }

  /** The tenant holding the most bytes (a scan of the tenants present: run only when memory is full). */
  #biggest(): [string, Share] {
    let best: [string, Share] | undefined;
    for (const e of this.#shares) if (!best || e[1].bytes > best[1].bytes) best = e;
    return best!;
  }

  #evictOldest(tenantId: string, share: Share): void {
    const first = share.entries.entries().next();
    if (first.done) return;
    const [key, entry] = first.value;
    share.entries.delete(key);
    this.#forget(tenantId, share, entry);
  }

  /** Accounts for an entry already taken out of its share's Map; an empty share goes. */
  #forget(tenantId: string, share: Share, entry: Entry): void {
    share.bytes -= entry.size;
    this.#bytes -= entry.size;
    this.#entries--;
    if (share.entries.size === 0) this.#shares.delete(tenantId);
  }
}
