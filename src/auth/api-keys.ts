import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { v7 as uuidv7 } from 'uuid';
import { requireTenantScope, type TenantScope } from '../context/tenant-context.js';
import type { Sql } from '../data/driver/index.js';
import { TenantryError } from '../errors.js';
import { catalogCall } from '../catalog/catalog-call.js';
import { appendPlatformEntry, type AuditEntryInput } from '../audit-log/audit-log.js';
import { lockSubject, revokedBefore } from './revocations.js';
import { isRole, type Role } from './roles.js';

/**
 * What an API key may do. `read`: requests that change nothing (GET, HEAD, OPTIONS); `write`:
 * every other method. The tenancy plugin enforces them (403 insufficient_scope).
 */
export type ApiKeyScope = 'read' | 'write';
export const apiKeyScopes: readonly ApiKeyScope[] = Object.freeze(['read', 'write']);
/** Scopes of a key created without any: what every key could do before scopes existed. */
export const defaultApiKeyScopes: readonly ApiKeyScope[] = apiKeyScopes;

export interface ApiKeyRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly name: string;
  readonly prefix: string;
  readonly role: Role;
  readonly scopes: readonly ApiKeyScope[];
  /** The user who created the key; null for keys created before this was recorded. */
  readonly createdBy: string | null;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
}

export interface ApiKeyOptions {
  /** Deadline of each catalog call, ms. */
  readonly timeoutMs?: number;
  /** `last_used_at` of a key is written at most this often (per process), ms. Default one minute. */
  readonly lastUsedEveryMs?: number;
  /** Touched keys are written together, this long after the first of them, ms. */
  readonly lastUsedFlushMs?: number;
}

interface ApiKeyRow {
  id: string; tenant_id: string; name: string; prefix: string; role: string; scopes: string[]; created_by: string | null;
  created_at: string; last_used_at: string | null; revoked_at: string | null;
}
const columns = `id, tenant_id, name, prefix, role, scopes, created_by, to_json(created_at) #>> '{}' as created_at,
  to_json(last_used_at) #>> '{}' as last_used_at, to_json(revoked_at) #>> '{}' as revoked_at`;

function toRecord(r: ApiKeyRow): ApiKeyRecord {
  return {
    id: r.id, tenantId: r.tenant_id, name: r.name, prefix: r.prefix, role: r.role as Role, scopes: r.scopes as ApiKeyScope[],
    createdBy: r.created_by, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at,
  };
}

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/**
 * The tenant's API keys (catalog table `tenantry.api_keys`). Only a SHA-256 of the secret is kept;
 * the key is shown once, at creation.
 *
 * A key is created by a user — never by another key — and lives no longer than that user's right
 * to create it: deleting the user, or taking the right away, revokes the keys they created
 * (CredentialRevocations.revoke with `apiKeys`). The two cannot be raced: both take the subject's
 * lock (lockSubject) in their catalog transaction, and creation refuses a creator whose token the
 * catalog already counts as revoked — so either the revocation sees the new key, or the creation
 * sees the revocation.
 *
 * `last_used_at` costs no write per request: a key's use is noted in memory and written at most
 * once a minute per key and process, all noted keys in one statement.
 */
export class ApiKeys {
  readonly #sql: Sql;
  readonly #timeoutMs: number;
  readonly #everyMs: number;
  readonly #flushMs: number;
  /** key id → when this process last wrote (or decided to write) its last_used_at. */
  readonly #written = new LRUCache<string, number>({ max: 50_000 });
  /** key id → time of use waiting to be written. */
  #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  /** How many `last_used_at` statements this process has sent (for tests and metrics). */
  lastUsedWrites = 0;

  constructor(sql: Sql, opts: ApiKeyOptions = {}) {
    this.#sql = sql;
    this.#timeoutMs = opts.timeoutMs ?? 2_000;
    this.#everyMs = opts.lastUsedEveryMs ?? 60_000;
    this.#flushMs = opts.lastUsedFlushMs ?? 1_000;
  }

  #call<T>(fn: () => Promise<T>): Promise<T> {
    return catalogCall(this.#timeoutMs, fn);
  }

  /**
   * Creates a key in the current tenant for the current principal, who must be a user (403
   * insufficient_scope for an API key) with a token the catalog does not count as revoked (401
   * invalid_token). The returned `key` is shown once and never stored. Which roles may create keys
   * is the application's to check.
   */
  async create(input: { name: string; role: Role; scopes?: readonly ApiKeyScope[] }): Promise<{ key: string; record: ApiKeyRecord }> {
    const scope = requireTenantScope('creating an API key');
    const { tenant, principal } = scope;
    if (!principal) throw new TenantryError('authentication_required');
    if (principal.kind !== 'user') throw new TenantryError('insufficient_scope', 'an API key cannot create API keys; use a user\'s token');
    if (!isRole(input.role)) throw new TenantryError('validation_failed', `"${input.role}" is not a role`);
    const scopes = [...new Set(input.scopes?.length ? input.scopes : defaultApiKeyScopes)];
    for (const s of scopes) if (!apiKeyScopes.includes(s)) throw new TenantryError('validation_failed', `"${s}" is not an API key scope`);
    const prefix = randomBytes(6).toString('hex');
    const secret = randomBytes(24).toString('base64url');
    const row = await this.#call(() => this.#sql.transaction(async (tx) => {
      await lockSubject(tx, tenant.id, principal.id);
      if ((principal.credentialVersion ?? 0) < await revokedBefore(tx, tenant.id, principal.id)) {
        throw new TenantryError('invalid_token', 'the token has been revoked');
      }
      const [r] = await tx.query<ApiKeyRow>(
        `insert into tenantry.api_keys (id, tenant_id, name, prefix, secret_hash, role, scopes, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning ${columns}`,
        [uuidv7(), tenant.id, input.name, prefix, hashSecret(secret), input.role, scopes, principal.id]);
      await appendPlatformEntry(tx, auditEntry(scope, 'api_key.created', r!.id, { name: input.name, role: input.role, scopes, prefix }));
      return r!;
    }));
    return { key: `tk_${prefix}_${secret}`, record: toRecord(row) };
  }

  /** The current tenant's keys, revoked ones included, oldest first. */
  async list(): Promise<ApiKeyRecord[]> {
    const { tenant } = requireTenantScope('listing API keys');
    const rows = await this.#call(() => this.#sql.query<ApiKeyRow>(
      `select ${columns} from tenantry.api_keys where tenant_id = $1 order by id`, [tenant.id]));
    return rows.map(toRecord);
  }

  /** Revokes a key of the current tenant; false when the tenant has no such key. */
  async revoke(id: string): Promise<boolean> {
    const scope = requireTenantScope('revoking an API key');
    const rows = await this.#call(() => this.#sql.transaction(async (tx) => {
      const revoked = await tx.query<{ id: string }>(
        'update tenantry.api_keys set revoked_at = now() where tenant_id = $1 and id = $2 and revoked_at is null returning id', [scope.tenant.id, id]);
      if (revoked.length) await appendPlatformEntry(tx, auditEntry(scope, 'api_key.revoked', id));
      else return tx.query('select id from tenantry.api_keys where tenant_id = $1 and id = $2', [scope.tenant.id, id]);
      return revoked;
    }));
    return rows.length > 0;
  }

  /**
   * The key's record if the key is well-formed, known, not revoked, of a registered role and its
   * secret matches; else null. Used by request resolution (no tenant context yet). Notes the use.
   */
  async verify(key: string): Promise<ApiKeyRecord | null> {
    const m = /^tk_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$/.exec(key);
    if (!m) return null;
    const rows = await this.#call(() => this.#sql.query<ApiKeyRow & { secret_hash: Buffer }>(
      `select ${columns}, secret_hash from tenantry.api_keys where prefix = $1`, [m[1]!]));
    const row = rows[0];
    if (!row || row.revoked_at) return null;
    if (!timingSafeEqual(Buffer.from(row.secret_hash), hashSecret(m[2]!))) return null;
    if (!isRole(row.role)) return null;
    this.#noteUse(row.id, row.last_used_at);
    return toRecord(row);
  }

  #noteUse(id: string, lastUsedAt: string | null): void {
    const now = Date.now();
    const known = Math.max(lastUsedAt ? Date.parse(lastUsedAt) : 0, this.#written.get(id) ?? 0);
    if (now - known < this.#everyMs) return;
    this.#written.set(id, now);
    this.#pending.set(id, now);
    this.#timer ??= setTimeout(() => { void this.flushLastUsed(); }, this.#flushMs).unref();
  }

  /** Writes the noted uses now (one statement for all keys). Called on a timer and by close(). */
  async flushLastUsed(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = new Map();
    if (!batch.size) return this.#flushing;
    const ids = [...batch.keys()];
    const at = ids.map((id) => new Date(batch.get(id)!).toISOString());
    this.#flushing = this.#flushing.then(async () => {
      this.lastUsedWrites++;
      await this.#call(() => this.#sql.query(
        `update tenantry.api_keys k set last_used_at = greatest(k.last_used_at, u.at)
           from unnest($1::uuid[], $2::timestamptz[]) as u(id, at) where k.id = u.id`, [ids, at]));
    }).catch(() => {
      // Best effort: a lost batch is written again at the next use after the interval.
      for (const id of ids) this.#written.delete(id);
    });
    return this.#flushing;
  }

  /** Writes what is pending; call on shutdown. */
  async close(): Promise<void> {
    await this.flushLastUsed();
  }
}

/** The platform log's entry of a change to the current tenant's keys (they live in the catalog, so does it). */
function auditEntry(scope: TenantScope, action: string, keyId: string, detail?: Record<string, unknown>): AuditEntryInput {
  const p = scope.principal;
  return {
    tenantId: scope.tenant.id, actorType: p?.kind ?? 'anonymous', actor: p?.id ?? '', action, target: { type: 'api_key', id: keyId },
    requestId: scope.requestId, clientAddress: scope.clientAddress, detail,
  };
}
