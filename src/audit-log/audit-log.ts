import { requirePlatformScope } from '../context/tenant-context.js';
import type { Queryable, Sql } from '../data/driver/index.js';
import { catalogCall } from '../catalog/catalog-call.js';
import { appendSql, chainLockSql, chainReport, microsSql, verifySql, type ChainReport, type PayloadColumns } from './chain.js';
import type { AuditActor } from './tenant-log-sql.js';

export interface AuditEntryInput {
  /** Who acted (the platform scope's actor, a user id, ...). */
  readonly actor: string;
  /** What kind of actor: `platform` (default), `user`, `api_key`. */
  readonly actorType?: AuditActor['type'];
  /** What happened, e.g. `tenant.created`, `platform_scope`. */
  readonly action: string;
  readonly tenantId?: string;
  readonly target?: { readonly type: string; readonly id: string };
  readonly detail?: Record<string, unknown>;
  readonly requestId?: string;
  readonly clientAddress?: string;
}

export interface AuditEntry {
  readonly id: number;
  /** Position in its chain (the tenant's, or the platform's); null for entries older than the chain. */
  readonly seq: number | null;
  readonly at: string;
  readonly actor: string;
  readonly actorType: string;
  readonly action: string;
  readonly tenantId: string | null;
  readonly target: { type: string; id: string } | null;
  readonly requestId: string | null;
  readonly clientAddress: string | null;
  readonly detail: Record<string, unknown>;
}

/** (The output columns are text: ORDER BY must name the table's, `l.`, or it sorts the text.) */
/** The catalog table's columns in the chain's payload (`actor` is the actor's id). */
const catalogColumns: PayloadColumns = {
  seq: 'seq', at: 'at', actorType: 'actor_type', actorId: 'actor', action: 'action', targetType: 'target_type',
  targetId: 'target_id', requestId: 'request_id', clientAddress: 'client_address', detail: 'detail',
};

/** The chain key of a tenant's entries, or of the platform's own (no tenant). */
const chainKey = (column: string) => `coalesce(${column}, '00000000-0000-0000-0000-000000000000'::uuid)`;

const appendText = appendSql({
  table: 'tenantry.audit_log',
  tenant: '$1::uuid',
  actorIdColumn: 'actor',
  first: 2,
  head: { where: `${chainKey('l.tenant_id')} = ${chainKey('$1::uuid')} and l.seq is not null`, orderBy: `${chainKey('l.tenant_id')}, l.seq desc` },
});

/**
 * Appends an entry to the platform log inside the caller's catalog transaction `tx` — the one that
 * makes the change the entry describes, so that the change and its entry commit together. Takes
 * the chain's lock first (see chain.ts).
 */
export async function appendPlatformEntry(tx: Queryable, entry: AuditEntryInput): Promise<void> {
  await tx.query(chainLockSql('platform'), [entry.tenantId ?? '']);
  await tx.query(appendText, [
    entry.tenantId ?? null, entry.actorType ?? 'platform', entry.actor, entry.action, entry.target?.type ?? null,
    entry.target?.id ?? null, entry.requestId ?? null, entry.clientAddress ?? null, entry.detail ?? {},
  ]);
}

type EntryRow = {
  id: string; seq: string | null; at: string; actor: string; actor_type: string; action: string; tenant_id: string | null;
  target_type: string | null; target_id: string | null; request_id: string | null; client_address: string | null;
  detail: Record<string, unknown>; at_us: string;
};

export const entryColumns = `id::text, seq::text, to_json(at) #>> '{}' as at, actor, actor_type, action, tenant_id::text,
  target_type, target_id, request_id, client_address, detail, ${microsSql('at')}::text as at_us`;

export function toEntry(r: EntryRow): AuditEntry & { atMicros: string } {
  return {
    id: Number(r.id), seq: r.seq === null ? null : Number(r.seq), at: new Date(r.at).toISOString(), actor: r.actor,
    actorType: r.actor_type, action: r.action, tenantId: r.tenant_id,
    target: r.target_type && r.target_id ? { type: r.target_type, id: r.target_id } : null,
    requestId: r.request_id, clientAddress: r.client_address, detail: r.detail, atMicros: r.at_us,
  };
}

/**
 * The platform's append-only audit log (catalog table `tenantry.audit_log`): every entry into the
 * platform scope, every tenant lifecycle step and every change the catalog holds for a tenant
 * (API keys). Hash-chained per tenant, and one chain for the platform's own entries; the catalog's
 * runtime role may insert and read, never update or delete.
 */
export class AuditLog {
  readonly #sql: Sql;
  readonly #timeoutMs: number;

  constructor(sql: Sql, timeoutMs = 2_000) {
    this.#sql = sql;
    this.#timeoutMs = timeoutMs;
  }

  /** Appends an entry in a catalog transaction of its own (for an event that changes nothing else). */
  async append(entry: AuditEntryInput): Promise<void> {
    await catalogCall(this.#timeoutMs, () => this.#sql.transaction((tx) => appendPlatformEntry(tx, entry)));
  }

  /** The latest entries, newest first, optionally of one tenant. Platform only. */
  async list(opts: { limit: number; tenantId?: string; before?: number }): Promise<AuditEntry[]> {
    requirePlatformScope('reading the audit log');
    const rows = await catalogCall(this.#timeoutMs, () => this.#sql.query<EntryRow>(
      `select ${entryColumns} from tenantry.audit_log l
        where ($1::uuid is null or l.tenant_id = $1::uuid) and ($2::bigint is null or l.id < $2::bigint)
        order by l.id desc limit $3`,
      [opts.tenantId ?? null, opts.before ?? null, opts.limit]));
    return rows.map((r) => { const { atMicros: _, ...e } = toEntry(r); return e; });
  }

  /**
   * A tenant's catalog entries ordered as the tenant log pages them (newest first by time, then
   * id), before the key `(atMicros, id)` when given. Used by TenantAuditLog to merge both logs.
   */
  async tenantPage(tenantId: string, limit: number, before?: { atMicros: string; id: number }): Promise<(AuditEntry & { atMicros: string })[]> {
    const rows = await catalogCall(this.#timeoutMs, () => this.#sql.query<EntryRow>(
      `select ${entryColumns} from tenantry.audit_log l
        where l.tenant_id = $1::uuid
          and ($2::bigint is null or (${microsSql('l.at')}, l.id) < ($2::bigint, $3::bigint))
        order by l.at desc, l.id desc limit $4`,
      [tenantId, before?.atMicros ?? null, before?.id ?? null, limit]));
    return rows.map(toEntry);
  }

  /** Counts of a tenant's catalog entries per day (UTC, YYYY-MM-DD) and action, since `since` (for analytics). */
  async tenantActions(tenantId: string, since: Date): Promise<{ day: string; action: string; n: number }[]> {
    return catalogCall(this.#timeoutMs, () => this.#sql.query<{ day: string; action: string; n: number }>(
      `select to_char(date_trunc('day', at at time zone 'UTC'), 'YYYY-MM-DD') as day, action, count(*)::int as n
         from tenantry.audit_log where tenant_id = $1::uuid and at >= $2 group by 1, 2`, [tenantId, since]));
  }

  /** Verifies the chain of a tenant's entries (or the platform's own, `null`) with `sql` (any reader of the table). */
  static async verify(sql: Queryable, tenantId: string | null): Promise<ChainReport & { unchained: number }> {
    const [row] = await sql.query<Parameters<typeof chainReport>[0] & object>(
      verifySql(`tenantry.audit_log where ${chainKey('tenant_id')} = ${chainKey('$1::uuid')} and seq is not null`, catalogColumns),
      [tenantId]);
    const [legacy] = await sql.query<{ n: number }>(
      `select count(*)::int as n from tenantry.audit_log where ${chainKey('tenant_id')} = ${chainKey('$1::uuid')} and seq is null`, [tenantId]);
    return { ...chainReport(row), unchained: legacy?.n ?? 0 };
  }
}
