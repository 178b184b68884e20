import { isUnmetered } from '../context/tenant-context.js';
import { channels, subscribe } from '../core/events.js';

/** One hour, the period usage is counted by. */
export const HOUR_MS = 3_600_000;

/** What is counted of one tenant in one hour (in memory, until the next flush). */
interface Counters {
  apiCalls: number;
  /** Fractional in memory; whole milliseconds are flushed and the rest carried (see take()). */
  dbTimeMs: number;
  egressBytes: number;
  /** The largest sample of the hour; null: not sampled. */
  storageBytes: number | null;
}

/** A tenant-hour's counts, as a flush writes them (added to what is stored; storage: the max). */
export interface UsageDelta {
  readonly tenantId: string;
  /** The hour: Math.floor(epoch ms / HOUR_MS). */
  readonly hour: number;
  readonly apiCalls: number;
  /** Whole milliseconds. */
  readonly dbTimeMs: number;
  readonly egressBytes: number;
  readonly storageBytes: number | null;
}

/**
 * In-memory usage counters per tenant and hour, fed by the diagnostics channels:
 * - `tenantry:request:completed`: api_calls + 1 and egress_bytes + the body's bytes, per admitted
 *   tenant request (whatever its status);
 * - `tenantry:data:transaction`: db_time_ms + the call's duration (connection wait included), for
 *   every `db.query()`/`db.transaction()` in the tenant's scope except the platform's own
 *   (scopes entered with `unmetered: true`);
 * - storage_bytes: set by the storage sampler (the largest sample of the hour).
 *
 * The hot path is a clock read, a Map lookup and additions: the current hour's map is kept at
 * hand, so a counter is created once per tenant, hour and flush interval. Memory is one small
 * object per tenant-hour counted since the last flush. `take()` hands everything counted so far
 * to a flush and starts afresh.
 */
export class UsageMeter {
  /** hour → tenant → counters. */
  #hours = new Map<number, Map<string, Counters>>();
  #hour = -1;
  #current: Map<string, Counters> | undefined;
  /** Tenants with a request since the last takeActive(). */
  #active = new Set<string>();
  readonly #now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  #counters(tenantId: string): Counters {
    const hour = Math.floor(this.#now() / HOUR_MS);
    let current = this.#current;
    if (hour !== this.#hour || current === undefined) {
      current = this.#hours.get(hour);
      if (!current) this.#hours.set(hour, current = new Map());
      this.#hour = hour;
      this.#current = current;
    }
    let c = current.get(tenantId);
    if (!c) current.set(tenantId, c = { apiCalls: 0, dbTimeMs: 0, egressBytes: 0, storageBytes: null });
    return c;
  }

  /** One admitted request of the tenant, whose answer's body had `bodyBytes` bytes. */
  recordRequest(tenantId: string, bodyBytes: number): void {
    const c = this.#counters(tenantId);
    c.apiCalls += 1;
    c.egressBytes += bodyBytes;
    this.#active.add(tenantId);
  }

  /** Database time of the tenant, milliseconds (fractions are kept). */
  recordDbTime(tenantId: string, ms: number): void {
    if (ms > 0) this.#counters(tenantId).dbTimeMs += ms;
  }

  /** A storage sample of the tenant, bytes: the hour keeps its largest. */
  recordStorage(tenantId: string, bytes: number): void {
    const c = this.#counters(tenantId);
    c.storageBytes = c.storageBytes === null ? bytes : Math.max(c.storageBytes, bytes);
  }

  /** Subscribes to the channels; returns the unsubscribe function. */
  subscribe(): () => void {
    const offRequests = subscribe(channels.requestCompleted, (e) => this.recordRequest(e.tenantId, e.bodyBytes));
    const offTransactions = subscribe(channels.transaction, (e) => {
      if (!isUnmetered()) this.recordDbTime(e.tenantId, e.durationMs);
    });
    return () => { offRequests(); offTransactions(); };
  }

  /** The tenants that had a request since the last call (for the storage sampler). */
  takeActive(): string[] {
    const ids = [...this.#active];
    this.#active.clear();
    return ids;
  }

  /**
   * Everything counted so far, as deltas, and the counters reset. Whole milliseconds of db time
   * are taken; the current hour's fraction stays for the next flush (a past hour's is rounded), so
   * db time is not lost a fraction at a time. Tenant-hours with nothing to add are left out.
   */
  take(): UsageDelta[] {
    const hours = this.#hours;
    this.#hours = new Map();
    this.#current = undefined;
    this.#hour = -1;
    const currentHour = Math.floor(this.#now() / HOUR_MS);
    const out: UsageDelta[] = [];
    for (const [hour, tenants] of hours) {
      for (const [tenantId, c] of tenants) {
        let ms = Math.round(c.dbTimeMs);
        if (hour === currentHour) {
          ms = Math.floor(c.dbTimeMs);
          const rest = c.dbTimeMs - ms;
          if (rest > 0) this.#carry(hour, tenantId, rest);
        }
        if (c.apiCalls === 0 && ms === 0 && c.egressBytes === 0 && c.storageBytes === null) continue;
        out.push({ tenantId, hour, apiCalls: c.apiCalls, dbTimeMs: ms, egressBytes: c.egressBytes, storageBytes: c.storageBytes });
      }
    }
    return out;
  }

  #carry(hour: number, tenantId: string, ms: number): void {
    let tenants = this.#hours.get(hour);
    if (!tenants) this.#hours.set(hour, tenants = new Map());
    tenants.set(tenantId, { apiCalls: 0, dbTimeMs: ms, egressBytes: 0, storageBytes: null });
  }

  /** Tenant-hours counted in memory (not yet taken). */
  get size(): number {
    let n = 0;
    for (const t of this.#hours.values()) n += t.size;
    return n;
  }
}
