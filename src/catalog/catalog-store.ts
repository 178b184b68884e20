import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { v7 as uuidv7 } from 'uuid';
import { UUID_PATTERN_ANY_CASE } from '../core/tenant-ids.js';
import { CatalogUnavailableError, TenantryError } from '../errors.js';
import type { Sql } from '../data/driver/index.js';
import { sqlState } from '../data/driver/index.js';
import type { ApiKeyRecord, Isolation, Tenant, TenantStatus } from './types.js';

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
  return `${t}.id, ${t}.slug, ${t}.name, ${t}.status, ${t}.plan, ${t}.isolation, ${t}.shard, ${t}.settings,
    to_json(${t}.created_at) #>> '{}' as created_at, to_json(${t}.updated_at) #>> '{}' as updated_at`;
}
const tenantColumns = columnsOf('tenants');

interface TenantRow {
  id: string; slug: string; name: string; status: TenantStatus; plan: string; isolation: Isolation;
  shard: string; settings: Record<string, unknown>; created_at: string; updated_at: string;
}

function toTenant(r: TenantRow): Tenant {
  return Object.freeze({
    id: r.id, slug: r.slug, name: r.name, status: r.status, plan: r.plan, isolation: r.isolation,
    shard: r.shard, settings: r.settings, createdAt: isoTime(r.created_at), updatedAt: isoTime(r.updated_at),
  });
}

/** Timestamps in the one format the whole API uses (as tickets and users have it): ISO 8601, UTC, ms. */
function isoTime(pgText: string): string {
  return new Date(pgText).toISOString();
}

function revocationKey(tenantId: string, subject: string): string {
  return `${tenantId}/${subject}`;
}

/** Channel of the catalog's change notifications (see migrations/0002_catalog_notify.sql). */
const CHANNEL = 'tenantry_catalog';
/** Ids from requests and notifications, in either case (lower-cased before use). */
const UUID = UUID_PATTERN_ANY_CASE;

/**
 * The control-plane catalog, read through the platform role. Reads that fail throw
 * CatalogUnavailableError: an outage must never look like "unknown tenant". A miss returns null.
 */
export class CatalogStore {
  readonly #sql: Sql;
  readonly #cache: LRUCache<string, Tenant>;

  readonly #timeoutMs: number;
  /** revocationKey(tenant, subject) → revoked at (ms since the epoch); see revokeTokens(). */
  #revocations = new Map<string, number>();
  /** How far back revocations matter: a token older than this has expired anyway. */
  readonly #revocationHorizonSeconds: number;

  constructor(sql: Sql, cache: CatalogCacheOptions = { ttlMs: 5_000, max: 10_000 }, timeoutMs = 2_000, revocationHorizonSeconds = 24 * 3600) {
    this.#sql = sql;
    this.#timeoutMs = timeoutMs;
    this.#revocationHorizonSeconds = revocationHorizonSeconds;
    this.#cache = new LRUCache<string, Tenant>({ max: cache.max, ttl: cache.ttlMs });
  }

  /**
   * Follows `tenantry_catalog` notifications (catalog migration 0002): a change to a tenant or its
   * domains, made by any process, drops that tenant from this cache at once. Whenever the
   * listening connection is (re)established, notifications may have been missed, so the whole
   * cache is dropped; the TTL stays as the safety net if the connection cannot come back.
   */
  async follow(listener: Sql = this.#sql): Promise<() => Promise<void>> {
    return listener.listen(CHANNEL, (payload) => {
      if (payload === 'revocations') void this.loadRevocations().catch(() => {});
      else if (UUID.test(payload)) this.invalidate({ id: payload.toLowerCase(), slug: '' });
      else this.#cache.clear();
    }, () => {
      this.#cache.clear();
      void this.loadRevocations().catch(() => {});
    });
  }

  /**
   * Refuses, from now on, every token of `subject` in the tenant issued up to this moment (the
   * user was deleted, or their role or password changed). Takes effect in this process at once and
   * in the others when they hear of it (NOTIFY), or at their next reload without LISTEN.
   */
  async revokeTokens(tenantId: string, subject: string): Promise<void> {
    const at = Date.now();
    await this.#read(() => this.#q(
      `insert into tenantry.token_revocations (tenant_id, subject, revoked_at) values ($1, $2, to_timestamp($3::float8 / 1000))
       on conflict (tenant_id, subject) do update set revoked_at = greatest(token_revocations.revoked_at, excluded.revoked_at)`,
      [tenantId, subject, at]));
    const key = revocationKey(tenantId, subject);
    this.#revocations.set(key, Math.max(at, this.#revocations.get(key) ?? 0));
    // Rows older than a token lifetime revoke nothing any more.
    await this.#q('delete from tenantry.token_revocations where revoked_at < now() - make_interval(secs => $1)',
      [this.#revocationHorizonSeconds]).catch(() => {});
  }

  /** Is a token of `subject` issued at `iat` (seconds, fractional) revoked? In memory, no I/O. */
  isRevoked(tenantId: string, subject: string, iat: number): boolean {
    const at = this.#revocations.get(revocationKey(tenantId, subject));
    return at !== undefined && iat * 1000 <= at;
  }

  /** Reads the revocations that can still matter (within the horizon given to the constructor). */
  async loadRevocations(): Promise<void> {
    const horizonSeconds = this.#revocationHorizonSeconds;
    const rows = await this.#read(() => this.#q<{ tenant_id: string; subject: string; at: number }>(
      `select tenant_id::text, subject, (extract(epoch from revoked_at) * 1000)::float8 as at
         from tenantry.token_revocations where revoked_at > now() - make_interval(secs => $1)`, [horizonSeconds]));
    const next = new Map<string, number>();
    for (const r of rows) next.set(revocationKey(r.tenant_id, r.subject), Number(r.at));
    // A revocation made here while the read was under way is not lost.
    for (const [k, v] of this.#revocations) if (v > (next.get(k) ?? 0) && v > Date.now() - horizonSeconds * 1000) next.set(k, v);
    this.#revocations = next;
  }

  /** A prepared statement (see DataPlane: unprepared ones cost an extra round trip). */
  #q<T = Record<string, unknown>>(text: string, params: readonly unknown[] = []) {
    return this.#sql.query<T>(text, params);
  }

  /**
   * A read with a deadline: past it the request is answered 503 catalog_unavailable (the query is
   * cancelled when the driver can, and its late answer is dropped).
   */
  async #read<T>(fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const pending = fn();
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        (pending as { cancel?: () => unknown }).cancel?.();
        reject(new CatalogUnavailableError(new Error(`the catalog did not answer within ${this.#timeoutMs} ms`)));
      }, this.#timeoutMs);
    });
    pending.catch(() => {});
    try {
      return await Promise.race([pending, deadline]);
    } catch (err) {
      if (err instanceof CatalogUnavailableError) throw err;
      // Bad data (class 22) is the caller's fault; anything else is an outage, never a "not found".
      if (sqlState(err)?.startsWith('22')) throw new TenantryError('validation_failed', 'a value is not valid', undefined, { cause: err });
      throw new CatalogUnavailableError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  #remember(tenant: Tenant): Tenant {
    this.#cache.set(`id:${tenant.id}`, tenant);
    this.#cache.set(`slug:${tenant.slug}`, tenant);
    return tenant;
  }

  /** Drops a tenant from this process's cache (after suspend, resume, or any change). */
  invalidate(tenant: Pick<Tenant, 'id' | 'slug'>): void {
    this.#cache.delete(`id:${tenant.id}`);
    if (tenant.slug) this.#cache.delete(`slug:${tenant.slug}`);
    for (const [key, value] of this.#cache.entries()) if (value.id === tenant.id) this.#cache.delete(key);
  }

  async findById(id: string): Promise<Tenant | null> {
    if (!UUID.test(id)) return null;
    const hit = this.#cache.get(`id:${id.toLowerCase()}`);
    if (hit) return hit;
    const rows = await this.#read(() => this.#q<TenantRow>(
      `select ${tenantColumns} from tenantry.tenants where id = $1`, [id]));
    return rows[0] ? this.#remember(toTenant(rows[0])) : null;
  }

  /** `fresh`: read the catalog even when this process has the tenant cached. */
  async findBySlug(slug: string, opts: { fresh?: boolean } = {}): Promise<Tenant | null> {
    if (slug.length > 63) return null;
    const hit = opts.fresh ? undefined : this.#cache.get(`slug:${slug}`);
    if (hit) return hit;
    const rows = await this.#read(() => this.#q<TenantRow>(
      `select ${tenantColumns} from tenantry.tenants where slug = $1`, [slug]));
    return rows[0] ? this.#remember(toTenant(rows[0])) : null;
  }

  /** A tenant named by slug or by id (the X-Tenant header accepts both). */
  async findBySlugOrId(value: string): Promise<Tenant | null> {
    return UUID.test(value) ? this.findById(value.toLowerCase()) : this.findBySlug(value.toLowerCase());
  }

  async findByDomain(domain: string): Promise<Tenant | null> {
    const key = `domain:${domain}`;
    const hit = this.#cache.get(key);
    if (hit) return hit;
    const rows = await this.#read(() => this.#q<TenantRow>(
      `select ${columnsOf('t')}
         from tenantry.domains d join tenantry.tenants t on t.id = d.tenant_id where d.domain = $1`, [domain]));
    if (!rows[0]) return null;
    const tenant = this.#remember(toTenant(rows[0]));
    this.#cache.set(key, tenant);
    return tenant;
  }

  async list(opts: { limit: number; after?: string }): Promise<Tenant[]> {
    const rows = await this.#read(() => this.#q<TenantRow>(
      `select ${tenantColumns} from tenantry.tenants where ($1::uuid is null or id > $1::uuid) order by id limit $2`,
      [opts.after ?? null, opts.limit]));
    return rows.map(toTenant);
  }

  async create(input: CreateTenantInput): Promise<Tenant> {
    try {
      const rows = await this.#q<TenantRow>(
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

  async setStatus(id: string, status: TenantStatus): Promise<Tenant | null> {
    const rows = await this.#read(() => this.#q<TenantRow>(
      `update tenantry.tenants set status = $2, updated_at = now() where id = $1 returning ${tenantColumns}`,
      [id, status]));
    if (!rows[0]) return null;
    const tenant = toTenant(rows[0]);
    this.invalidate(tenant);
    return this.#remember(tenant);
  }

  async addDomain(tenantId: string, domain: string): Promise<void> {
    try {
      await this.#q('insert into tenantry.domains (domain, tenant_id) values ($1, $2)', [domain.toLowerCase(), tenantId]);
    } catch (err) {
      if (sqlState(err) === '23505') throw new TenantryError('conflict', `domain ${domain} is already assigned`);
      throw new CatalogUnavailableError(err);
    }
  }

  /** Creates an API key; the returned `key` is shown once and never stored. */
  async createApiKey(tenantId: string, input: { name: string; role: 'admin' | 'agent' }): Promise<{ key: string; record: ApiKeyRecord }> {
    const prefix = randomBytes(6).toString('hex');
    const secret = randomBytes(24).toString('base64url');
    const rows = await this.#read(() => this.#q<ApiKeyRow>(
      `insert into tenantry.api_keys (id, tenant_id, name, prefix, secret_hash, role)
       values ($1, $2, $3, $4, $5, $6) returning ${apiKeyColumns}`,
      [uuidv7(), tenantId, input.name, prefix, hashSecret(secret), input.role]));
    return { key: `tk_${prefix}_${secret}`, record: toApiKey(rows[0]!) };
  }

  /** The key's record if the key is well-formed, known, not revoked and its secret matches; else null. */
  async verifyApiKey(key: string): Promise<ApiKeyRecord | null> {
    const m = /^tk_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$/.exec(key);
    if (!m) return null;
    const rows = await this.#read(() => this.#q<ApiKeyRow & { secret_hash: Buffer }>(
      `select ${apiKeyColumns}, secret_hash from tenantry.api_keys where prefix = $1`, [m[1]!]));
    const row = rows[0];
    if (!row || row.revoked_at) return null;
    if (!timingSafeEqual(Buffer.from(row.secret_hash), hashSecret(m[2]!))) return null;
    return toApiKey(row);
  }

  async listApiKeys(tenantId: string): Promise<ApiKeyRecord[]> {
    const rows = await this.#read(() => this.#q<ApiKeyRow>(
      `select ${apiKeyColumns} from tenantry.api_keys where tenant_id = $1 order by id`, [tenantId]));
    return rows.map(toApiKey);
  }

  /** Revokes a key of this tenant; false when the tenant has no such key. */
  async revokeApiKey(tenantId: string, id: string): Promise<boolean> {
    const rows = await this.#read(() => this.#q(
      `update tenantry.api_keys set revoked_at = coalesce(revoked_at, now()) where tenant_id = $1 and id = $2 returning id`,
      [tenantId, id]));
    return rows.length > 0;
  }

  async audit(entry: { actor: string; action: string; tenantId?: string; detail?: Record<string, unknown> }): Promise<void> {
    await this.#read(() => this.#q(
      'insert into tenantry.audit_log (actor, action, tenant_id, detail) values ($1, $2, $3, $4::jsonb)',
      [entry.actor, entry.action, entry.tenantId ?? null, entry.detail ?? {}]));
  }

  /** Cheap liveness probe of the catalog connection. */
  async ping(): Promise<void> {
    await this.#read(() => this.#q('select 1'));
  }
}

interface ApiKeyRow {
  id: string; tenant_id: string; name: string; prefix: string; role: 'admin' | 'agent';
  created_at: string; last_used_at: string | null; revoked_at: string | null;
}
const apiKeyColumns = `id, tenant_id, name, prefix, role, to_json(created_at) #>> '{}' as created_at,
  to_json(last_used_at) #>> '{}' as last_used_at, to_json(revoked_at) #>> '{}' as revoked_at`;

function toApiKey(r: ApiKeyRow): ApiKeyRecord {
  return {
    id: r.id, tenantId: r.tenant_id, name: r.name, prefix: r.prefix, role: r.role,
    createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at,
  };
}

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}
