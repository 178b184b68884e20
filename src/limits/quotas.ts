import { LRUCache } from 'lru-cache';
import { requireTenantScope } from '../context/tenant-context.js';
import { quoteIdent } from '../data/driver/index.js';
import { TenantryError } from '../errors.js';
import type { Plans } from './plans.js';
import type { TenantTransaction } from '../data/data-plane.js';
import { measureStorageBytes, type TenantReader } from './storage.js';

/** Both the data plane and a transaction of it. */
export type Queryable = TenantReader;

/** The data plane as quotas use it. */
export interface QuotaDataPlane extends Queryable {
  transaction<T>(fn: (tx: TenantTransaction) => Promise<T>): Promise<T>;
}

export interface GuardOptions {
  /** The table whose rows the quota counts (the current tenant's rows, through RLS). */
  readonly table: string;
  /** Rows the write adds (default 1). */
  readonly adding?: number;
}

/** How long a storage measurement is reused, ms. */
const STORAGE_TTL_MS = 60_000;

/** The quota that storage is measured against (see measureStorageBytes). */
export const STORAGE_QUOTA = 'storage_bytes';

/**
 * Quotas of the current tenant: counts (rows of a table: users, tickets, …) and `storage_bytes`.
 * `guard` runs a write so that it cannot take the tenant past its quota:
 *
 * - a finite count quota: in ONE transaction that first takes a lock of that tenant and quota
 *   (pg_advisory_xact_lock: concurrent creations take turns, so two cannot both see room for one),
 *   then counts the tenant's rows — at most quota + 1 of them, so the check costs O(quota), not
 *   O(rows) — and refuses with 403 quota_exceeded (naming the quota, its limit and use) before
 *   anything is written;
 * - `storage_bytes` finite: the tenant's measured storage (re-measured at most once a minute) must
 *   be under it, or the write is refused the same way;
 * - unlimited: the write runs in a transaction of its own, without the lock and the count.
 *
 * `write` gets the transaction, so it can record its audit entry (`tx.audit`) in it.
 */
export class Quotas {
  readonly #plans: Plans;
  readonly #db: QuotaDataPlane;
  readonly #storage = new LRUCache<string, { bytes: number }>({ max: 10_000, ttl: STORAGE_TTL_MS });

  constructor(plans: Plans, db: QuotaDataPlane) {
    this.#plans = plans;
    this.#db = db;
  }

  /** The current tenant's limit of a quota; null: unlimited (or a quota no plan names). */
  limit(name: string): number | null {
    const { tenant } = requireTenantScope('a quota');
    return this.#plans.of(tenant).limits.quotas[name] ?? null;
  }

  async guard<T>(name: string, opts: GuardOptions, write: (tx: TenantTransaction) => Promise<T>): Promise<T> {
    const { tenant } = requireTenantScope('a quota');
    const { quotas } = this.#plans.of(tenant).limits;
    const storageLimit = quotas[STORAGE_QUOTA] ?? null;
    if (storageLimit !== null) await this.#checkStorage(storageLimit);
    const limit = quotas[name] ?? null;
    if (limit === null) return this.#db.transaction(write);
    const adding = opts.adding ?? 1;
    return this.#db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`tenantry:quota:${tenant.id}:${name}`]);
      const [row] = await tx.query<{ n: number }>(
        `select count(*)::int as n from (select from ${quoteIdent(opts.table)} limit $1) r`, [limit + 1]);
      const used = row?.n ?? 0;
      if (used + adding > limit) {
        throw new TenantryError('quota_exceeded', `the ${name} quota of this tenant is ${limit}; it has ${used}`, { quota: name, limit, used });
      }
      return write(tx);
    });
  }

  /** The current tenant's storage, measured at most once a minute. */
  async storageBytes(): Promise<number> {
    const { tenant } = requireTenantScope('a quota');
    const hit = this.#storage.get(tenant.id);
    if (hit) return hit.bytes;
    const bytes = await measureStorageBytes(this.#db, tenant);
    this.#storage.set(tenant.id, { bytes });
    return bytes;
  }

  async #checkStorage(limit: number): Promise<void> {
    const used = await this.storageBytes();
    if (used >= limit) {
      throw new TenantryError('quota_exceeded', `the storage of this tenant is ${used} bytes; its quota is ${limit}`,
        { quota: STORAGE_QUOTA, limit, used });
    }
  }
}
