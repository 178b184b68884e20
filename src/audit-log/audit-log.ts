import { requirePlatformScope } from '../context/tenant-context.js';
import type { Sql } from '../data/driver/index.js';
import { catalogCall } from '../catalog/catalog-call.js';

export interface AuditEntryInput {
  /** Who acted (the platform scope's actor, a user id, ...). */
  readonly actor: string;
  /** What happened, e.g. `tenant.created`, `platform_scope`. */
  readonly action: string;
  readonly tenantId?: string;
  readonly detail?: Record<string, unknown>;
}

export interface AuditEntry {
  readonly id: number;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly tenantId: string | null;
  readonly detail: Record<string, unknown>;
}

/**
 * The platform's append-only audit log (catalog table `tenantry.audit_log`): every entry into the
 * platform scope and every tenant lifecycle step. Appending needs no scope (it is how the platform
 * scope itself is recorded); reading it is a platform operation.
 */
export class AuditLog {
  readonly #sql: Sql;
  readonly #timeoutMs: number;

  constructor(sql: Sql, timeoutMs = 2_000) {
    this.#sql = sql;
    this.#timeoutMs = timeoutMs;
  }

  async append(entry: AuditEntryInput): Promise<void> {
    await catalogCall(this.#timeoutMs, () => this.#sql.query(
      'insert into tenantry.audit_log (actor, action, tenant_id, detail) values ($1, $2, $3, $4::jsonb)',
      [entry.actor, entry.action, entry.tenantId ?? null, entry.detail ?? {}]));
  }

  /** The latest entries, newest first, optionally of one tenant. Platform only. */
  async list(opts: { limit: number; tenantId?: string; before?: number }): Promise<AuditEntry[]> {
    requirePlatformScope('reading the audit log');
    const rows = await catalogCall(this.#timeoutMs, () => this.#sql.query<{
      id: string; at: string; actor: string; action: string; tenant_id: string | null; detail: Record<string, unknown>;
    }>(
      `select id::text, to_json(at) #>> '{}' as at, actor, action, tenant_id::text, detail from tenantry.audit_log
        where ($1::uuid is null or tenant_id = $1::uuid) and ($2::bigint is null or id < $2::bigint)
        order by id desc limit $3`,
      [opts.tenantId ?? null, opts.before ?? null, opts.limit]));
    return rows.map((r) => ({
      id: Number(r.id), at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, tenantId: r.tenant_id, detail: r.detail,
    }));
  }
}
