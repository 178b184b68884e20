import { randomUUID } from 'node:crypto';
import type { Tenant } from '../catalog/types.js';
import { requirePlatformScope, requireTenantScope } from '../context/tenant-context.js';
import type { Sql } from '../data/driver/index.js';
import type { TenantReader } from '../limits/storage.js';
import { StorageSampler } from './storage-sampler.js';
import { UsageMeter, type UsageDelta } from './usage-meter.js';
import { UsageStore, type UsageRange, type UsageRecord } from './usage-store.js';

/** Batch ids are kept this long, then pruned. */
const FLUSH_ID_RETENTION_MS = 24 * 3_600_000;
/** How often a process prunes old batch ids. */
const PRUNE_EVERY_MS = 3_600_000;

export interface UsageOptions {
  /** Counters are written to the catalog at least this often, milliseconds. */
  readonly flushMs: number;
  /** Active tenants' storage is sampled this often, milliseconds. */
  readonly storageSampleMs: number;
  readonly timeoutMs?: number;
  readonly log?: { warn(obj: object, msg: string): void };
}

/** What a flush did. */
export interface UsageFlushResult {
  /** The batch written (`<instance id>:<sequence>`), or null: nothing to write. */
  readonly batchId: string | null;
  /** Tenant-hour rows in the batch. */
  readonly rows: number;
}

/**
 * The started instances of this process, oldest first: the first one meters. The channels are
 * process-wide and their events do not say which toolkit published them, so two toolkits in one
 * process that both counted would count every request twice; the oldest counts all of them, and
 * when it closes the next one takes over.
 */
const started: Usage[] = [];

/**
 * Durable usage metering (docs/usage.md): per tenant and hour, `api_calls`, `db_time_ms`,
 * `egress_bytes` and `storage_bytes`, counted in memory (UsageMeter) and written to the catalog
 * at least every `flushMs` and on close() (UsageStore), idempotently: each batch has an id of
 * this instance (a random id per start, and a sequence), and a failed batch is retried unchanged,
 * with its id, before anything newer is written. Instances add up; a killed process loses what it
 * counted since its last flush (at most one interval), a closed one nothing.
 *
 * One instance per process counts (see `started`). Reading is scoped: `query()` is the current tenant's own usage (tenant scope; no scope, no
 * usage), `queryAll()` any tenant's or every tenant's (platform scope).
 */
export class Usage {
  readonly meter: UsageMeter;
  readonly store: UsageStore;
  readonly sampler: StorageSampler;
  /** This instance's id, the prefix of its batch ids. */
  readonly instanceId = randomUUID();
  readonly #options: UsageOptions;
  #sequence = 0;
  /** A batch whose write failed: written again, unchanged, before any other. */
  #pending: { id: string; deltas: UsageDelta[] } | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #lastPrune = 0;
  #unsubscribe: (() => void) | undefined;
  #timers: NodeJS.Timeout[] = [];
  #closed = false;

  constructor(sql: Sql, deps: { findTenant(id: string): Promise<Tenant | null>; db: TenantReader }, options: UsageOptions) {
    this.#options = options;
    this.meter = new UsageMeter();
    this.store = new UsageStore(sql, options.timeoutMs);
    this.sampler = new StorageSampler({ meter: this.meter, findTenant: deps.findTenant, db: deps.db });
  }

  /** Starts counting (subscribes to the channels) and the flush and sampling timers. */
  start(): void {
    if (started.includes(this) || this.#closed) return;
    started.push(this);
    if (started[0] === this) this.#unsubscribe = this.meter.subscribe();
    const flush = setInterval(() => {
      this.flush().catch((err: unknown) => this.#options.log?.warn({ err: (err as Error).message, pending: this.#pending?.id }, 'usage flush failed: it is retried at the next one'));
    }, this.#options.flushMs);
    const sample = setInterval(() => { void this.sampler.sample(); }, this.#options.storageSampleMs);
    flush.unref();
    sample.unref();
    this.#timers.push(flush, sample);
  }

  /**
   * Writes what was counted: first a batch that failed before (same id), then everything counted
   * since. Flushes run one at a time. Rejects when a write fails (its counts are kept for the next).
   */
  flush(): Promise<UsageFlushResult> {
    const run = this.#chain.then(() => this.#flushOnce());
    this.#chain = run.catch(() => {});
    return run;
  }

  async #flushOnce(): Promise<UsageFlushResult> {
    if (this.#pending) {
      await this.store.write(this.#pending.id, this.#pending.deltas);
      this.#pending = undefined;
    }
    const deltas = this.meter.take();
    let result: UsageFlushResult = { batchId: null, rows: 0 };
    if (deltas.length > 0) {
      const batch = { id: `${this.instanceId}:${++this.#sequence}`, deltas };
      this.#pending = batch;
      await this.store.write(batch.id, batch.deltas);
      this.#pending = undefined;
      result = { batchId: batch.id, rows: deltas.length };
    }
    if (Date.now() - this.#lastPrune > PRUNE_EVERY_MS) {
      this.#lastPrune = Date.now();
      await this.store.prune(FLUSH_ID_RETENTION_MS).catch(() => {});
    }
    return result;
  }

  /** The current tenant's usage (tenant scope: the tenant comes from the context, never from a parameter). */
  async query(range: UsageRange): Promise<UsageRecord[]> {
    const { tenant } = requireTenantScope('reading usage');
    return this.store.read(tenant.id, range);
  }

  /** One tenant's usage (`tenantId`) or every tenant's. Platform scope only. */
  async queryAll(range: UsageRange, opts: { tenantId?: string } = {}): Promise<UsageRecord[]> {
    requirePlatformScope('reading usage of tenants');
    return this.store.read(opts.tenantId ?? null, range);
  }

  /** Samples storage of `tenantIds` now (default: the tenants active since the last pass). */
  sampleStorage(tenantIds?: readonly string[]): Promise<number> {
    return this.sampler.sample(tenantIds);
  }

  /**
   * Stops counting and the timers, then writes what is left (a failed batch first), trying twice.
   * What still cannot be written is reported in the log, with its counts.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#unsubscribe?.();
    const i = started.indexOf(this);
    if (i >= 0) started.splice(i, 1);
    const next = started[0];
    if (i === 0 && next) next.#unsubscribe = next.meter.subscribe();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.flush();
        return;
      } catch (err) {
        if (attempt >= 2) {
          const lost = [...(this.#pending?.deltas ?? []), ...this.meter.take()];
          this.#options.log?.warn({ err: (err as Error).message, rows: lost.length, apiCalls: lost.reduce((n, d) => n + d.apiCalls, 0) },
            'usage could not be written on close: these counts are lost');
          return;
        }
      }
    }
  }
}
