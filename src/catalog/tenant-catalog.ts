import { LRUCache } from 'lru-cache';
import { v7 as uuidv7 } from 'uuid';
import { CatalogUnavailableError, TenantryError } from '../errors.js';
import { requirePlatformScope } from '../context/tenant-context.js';
import type { Sql } from '../data/driver/index.js';
import { sqlState } from '../data/driver/index.js';
import { UUID_PATTERN_ANY_CASE } from '../core/tenant-ids.js';
import { catalogCall } from './catalog-call.js';
import type { Isolation, Tenant, TenantStatus } from './types.js';
import { events, publishCatalogLookup, startTimer } from '../core/events.js';
import type { LimitOverrides } from '../limits/plans.js';
import { appendPlatformEntry, type AuditEntryInput } from '../audit-log/audit-log.js';

/** The audit entry of a change, made from the changed tenant and written in the change's transaction. */
export type ChangeEntry = (tenant: Tenant) => AuditEntryInput;

export interface CreateTenantInput {
  readonly id?: string;
  readonly slug: string;
  readonly name: string;
  readonly plan?: string;
  readonly isolation: Isolation;
  readonly shard?: string;
  readonly settings?: Record<string, unknown>;
  readonly status?: TenantStatus;
}

export interface CatalogCacheOptions {
  /** How long a tenant read from the catalog is reused, in milliseconds. */
  readonly ttlMs: number;
  /** How many tenants the cache keeps. */
  readonly max: number;
}

function columnsOf(t: string): string {
  return `${t}.id, ${t}.slug, ${t}.name, ${t}.status, ${t}.plan, ${t}.isolation, ${t}.shard, ${t}.settings, ${t}.limits,
    to_json(${t}.created_at) #>> '{}' as created_at, to_json(${t}.updated_at) #>> '{}' as updated_at`;
}
const tenantColumns = columnsOf('tenants');

interface TenantRow {
  id: string; slug: string; name: string; status: TenantStatus; plan: string; isolation: Isolation;
  shard: string; settings: Record<string, unknown>; limits: LimitOverrides; created_at: string; updated_at: string;
}

function toTenant(r: TenantRow): Tenant {
  return Object.freeze({
    id: r.id, slug: r.slug, name: r.name, status: r.status, plan: r.plan, isolation: r.isolation,
    shard: r.shard, settings: r.settings, limits: Object.freeze(r.limits ?? {}), createdAt: isoTime(r.created_at), updatedAt: isoTime(r.updated_at),
  });
}

/** Timestamps in the one format the whole API uses: ISO 8601, UTC, ms. */
function isoTime(pgText: string): string {
  return new Date(pgText).toISOString();
}

/**
 * The tenants of the control-plane catalog (tenants and their domains), read through the platform
 * role and cached per process. Reads that fail throw CatalogUnavailableError: an outage must never
 * look like "unknown tenant". A miss returns null.
 *
 * Lookups by id, slug or domain serve request resolution and need no scope; listing tenants and
 * every write are platform operations and require the platform scope (withPlatformScope).
 *
 * The cache is kept true by the catalog's change events (catalog-channel.ts): whoever follows the
 * channel calls invalidate() for a changed tenant and clear() after a reconnection.
 */
export class TenantCatalog {
  readonly #sql: Sql;
  readonly #cache: LRUCache<string, Tenant>;
  readonly #timeoutMs: number;
  /**
   * Told of each change this process makes to a tenant (after it is written): the wiring passes it
   * on to other processes by a second path when there is one (Redis), besides the catalog's NOTIFY.
   */
  onChange: ((tenantId: string) => void) | undefined;

  constructor(sql: Sql, cache: CatalogCacheOptions = { ttlMs: 5_000, max: 10_000 }, timeoutMs = 2_000) {
    this.#sql = sql;
    this.#timeoutMs = timeoutMs;
    this.#cache = new LRUCache<string, Tenant>({ max: cache.max, ttl: cache.ttlMs });
  }

  /** A prepared statement with the catalog's deadline. */
  #read<T>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    return catalogCall(this.#timeoutMs, () => this.#sql.query<T>(text, params));
  }

  /** A catalog read for a lookup, published on tenantry:catalog:lookup when `t0` says someone listens. */
  #lookup<T>(t0: number, by: 'id' | 'slug' | 'domain', text: string, params: readonly unknown[]): Promise<T[]> {
    if (t0 === 0) return this.#read<T>(text, params);
    return this.#read<T>(text, params).then(
      (rows) => { publishCatalogLookup(t0, by, false, rows.length > 0); return rows; },
      (err: unknown) => { publishCatalogLookup(t0, by, false, false, err); throw err; });
  }

  #remember(tenant: Tenant): Tenant {
    this.#cache.set(`id:${tenant.id}`, tenant);
    this.#cache.set(`slug:${tenant.slug}`, tenant);
    return tenant;
  }

  /** Drops a tenant from this process's cache (after suspend, resume, or any change). */
  invalidate(tenant: { readonly id: string; readonly slug?: string }): void {
    this.#cache.delete(`id:${tenant.id}`);
    if (tenant.slug) this.#cache.delete(`slug:${tenant.slug}`);
    for (const [key, value] of this.#cache.entries()) if (value.id === tenant.id) this.#cache.delete(key);
  }

  /** Drops every cached tenant (changes may have been missed). */
  clear(): void {
    this.#cache.clear();
  }

  async findById(id: string): Promise<Tenant | null> {
    if (!UUID_PATTERN_ANY_CASE.test(id)) return null;
    const t0 = startTimer(events.catalogLookup);
    const hit = this.#cache.get(`id:${id.toLowerCase()}`);
    if (hit) { publishCatalogLookup(t0, 'id', true, true); return hit; }
    const rows = await this.#lookup<TenantRow>(t0, 'id', `select ${tenantColumns} from tenantry.tenants where id = $1`, [id]);
    return rows[0] ? this.#remember(toTenant(rows[0])) : null;
  }

  /** `fresh`: read the catalog even when this process has the tenant cached. */
  async findBySlug(slug: string, opts: { fresh?: boolean } = {}): Promise<Tenant | null> {
    if (slug.length > 63) return null;
    const t0 = startTimer(events.catalogLookup);
    const hit = opts.fresh ? undefined : this.#cache.get(`slug:${slug}`);
    if (hit) { publishCatalogLookup(t0, 'slug', true, true); return hit; }
    const rows = await this.#lookup<TenantRow>(t0, 'slug', `select ${tenantColumns} from tenantry.tenants where slug = $1`, [slug]);
    return rows[0] ? this.#remember(toTenant(rows[0])) : null;
  }

  /** A tenant named by slug or by id (the X-Tenant header accepts both). */
  async findBySlugOrId(value: string): Promise<Tenant | null> {
    return UUID_PATTERN_ANY_CASE.test(value) ? this.findById(value.toLowerCase()) : this.findBySlug(value.toLowerCase());
  }

  async findByDomain(domain: string): Promise<Tenant | null> {
    const key = `domain:${domain}`;
    const t0 = startTimer(events.catalogLookup);
    const hit = this.#cache.get(key);
    if (hit) { publishCatalogLookup(t0, 'domain', true, true); return hit; }
    const rows = await this.#lookup<TenantRow>(t0, 'domain',
      `select ${columnsOf('t')}
         from tenantry.domains d join tenantry.tenants t on t.id = d.tenant_id where d.domain = $1`, [domain]);
    if (!rows[0]) return null;
    const tenant = this.#remember(toTenant(rows[0]));
    this.#cache.set(key, tenant);
    return tenant;
  }

  /** Every tenant, a page at a time (by id). Platform only. */
  async list(opts: { limit: number; after?: string }): Promise<Tenant[]> {
    requirePlatformScope('listing tenants');
    const rows = await this.#read<TenantRow>(
      `select ${tenantColumns} from tenantry.tenants where ($1::uuid is null or id > $1::uuid) order by id limit $2`,
      [opts.after ?? null, opts.limit]);
    return rows.map(toTenant);
  }

  /**
   * How many tenants there are, by status, placement and plan (one row per combination that has
   * any): for metrics. An aggregate that names no tenant, so it needs no platform scope — a scrape
   * every few seconds would otherwise write an audit entry each time.
   */
  async counts(): Promise<{ status: TenantStatus; isolation: Isolation; plan: string; count: number }[]> {
    const rows = await this.#read<{ status: TenantStatus; isolation: Isolation; plan: string; count: string }>(
      'select status, isolation, plan, count(*) as count from tenantry.tenants group by status, isolation, plan order by 1, 2, 3');
    return rows.map((r) => ({ status: r.status, isolation: r.isolation, plan: r.plan, count: Number(r.count) }));
  }

  /** Adds a tenant (status `provisioning` unless given). Platform only. */
  async create(input: CreateTenantInput): Promise<Tenant> {
    requirePlatformScope('creating a tenant');
    try {
      const rows = await this.#sql.query<TenantRow>(
        `insert into tenantry.tenants (id, slug, name, plan, isolation, shard, settings, status)
         values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) returning ${tenantColumns}`,
        [input.id ?? uuidv7(), input.slug, input.name, input.plan ?? 'free', input.isolation,
          input.shard ?? 'default', input.settings ?? {}, input.status ?? 'provisioning'],
      );
      return this.#remember(toTenant(rows[0]!));
    } catch (err) {
      if (sqlState(err) === '23505') throw new TenantryError('tenant_slug_taken', `a tenant with slug "${input.slug}" exists`);
      throw new CatalogUnavailableError(err);
    }
  }

  /**
   * Sets a tenant's status; null when there is no such tenant. With `audit`, its entry is appended
   * in the same transaction. Platform only.
   */
  async setStatus(id: string, status: TenantStatus, audit?: ChangeEntry): Promise<Tenant | null> {
    requirePlatformScope('changing a tenant\'s status');
    const rows = await catalogCall(this.#timeoutMs, () => this.#sql.transaction(async (tx) => {
      const changed = await tx.query<TenantRow>(
        `update tenantry.tenants set status = $2, updated_at = now() where id = $1 returning ${tenantColumns}`,
        [id, status]);
      if (changed[0] && audit) await appendPlatformEntry(tx, audit(toTenant(changed[0])));
      return changed;
    }));
    if (!rows[0]) return null;
    const tenant = toTenant(rows[0]);
    this.invalidate(tenant);
    this.onChange?.(tenant.id);
    return this.#remember(tenant);
  }

  /**
   * Changes a tenant's limit overrides: `change` gets the current ones (read with the row locked,
   * so two changes at once apply one after the other, neither lost) and returns the new ones. Null
   * when there is no such tenant. Every process hears of it through the catalog channel. Platform
   * only.
   */
  async updateLimits(id: string, change: (current: LimitOverrides) => LimitOverrides, audit?: ChangeEntry): Promise<Tenant | null> {
    requirePlatformScope('changing a tenant\'s limits');
    let rows: TenantRow[];
    try {
      rows = await catalogCall(this.#timeoutMs, () => this.#sql.transaction(async (tx) => {
        const [current] = await tx.query<{ limits: LimitOverrides }>('select limits from tenantry.tenants where id = $1 for update', [id]);
        if (!current) return [];
        const changed = await tx.query<TenantRow>(
          `update tenantry.tenants set limits = $2::jsonb, updated_at = now() where id = $1 returning ${tenantColumns}`,
          [id, JSON.stringify(change(current.limits))]);
        if (changed[0] && audit) await appendPlatformEntry(tx, audit(toTenant(changed[0])));
        return changed;
      }));
    } catch (err) {
      if (err instanceof TenantryError) throw err;
      throw new CatalogUnavailableError(err);
    }
    if (!rows[0]) return null;
    const tenant = toTenant(rows[0]);
    this.invalidate(tenant);
    this.onChange?.(tenant.id);
    return this.#remember(tenant);
  }

  /** Assigns a custom domain to a tenant. Platform only. */
  async addDomain(tenantId: string, domain: string): Promise<void> {
    requirePlatformScope('assigning a domain');
    try {
      await this.#sql.query('insert into tenantry.domains (domain, tenant_id) values ($1, $2)', [domain.toLowerCase(), tenantId]);
    } catch (err) {
      if (sqlState(err) === '23505') throw new TenantryError('conflict', `domain ${domain} is already assigned`);
      throw new CatalogUnavailableError(err);
    }
  }

  /** Cheap liveness probe of the catalog connection. */
  async ping(): Promise<void> {
    await this.#read('select 1');
  }
}
