import { appendSql, chainLockSql } from './chain.js';

/**
 * The tenant audit log's table and statements. The table lives beside the tenant's data, in every
 * placement's target schema (the pooled schema, each schema tenant's schema, each tenant
 * database): the migrations create it (applyMigrations, `tenantLog`), the data plane appends to it
 * in the transaction of the change an entry describes, and the runtime roles may only read and
 * insert — never update or delete (the grants), and never for another tenant (RLS, as every
 * tenant table).
 */
export const TENANT_LOG_TABLE = 'tenantry_audit_log';

/** Who acted: a user, an API key, the platform (an operator's actor), or nobody known (a failed login). */
export interface AuditActor {
  readonly type: 'user' | 'api_key' | 'platform' | 'anonymous';
  readonly id: string | null;
}

/** What a write records (`tx.audit(...)`); who, when, the request and the client come from the scope. */
export interface AuditRecord {
  /** What happened, `<noun>.<verb>`: `ticket.created`, `user.role_changed`, `auth.login_failed`. */
  readonly action: string;
  /** What it happened to. */
  readonly target?: { readonly type: string; readonly id: string };
  /** Anything else worth keeping (never secrets: the log is read by the tenant's owners). */
  readonly detail?: Record<string, unknown>;
  /** Who, when not the scope's principal. */
  readonly actor?: AuditActor;
}

/** An entry as appended: the record and what the scope adds. */
export interface AuditAppend {
  readonly record: AuditRecord;
  readonly actor: AuditActor;
  readonly requestId: string | null;
  readonly clientAddress: string | null;
}

/** DDL of the table in `schema` (quoted already); idempotent, run by the migrations as the owner. */
export function tenantLogDdl(schema: string): string[] {
  const t = `${schema}.${TENANT_LOG_TABLE}`;
  return [
    `create table if not exists ${t} (
      tenant_id uuid not null,
      seq bigint not null,
      at timestamptz not null,
      actor_type text not null,
      actor_id text,
      action text not null,
      target_type text,
      target_id text,
      request_id text,
      client_address text,
      detail jsonb not null default '{}'::jsonb,
      hash text not null,
      primary key (tenant_id, seq))`,
    `create index if not exists ${TENANT_LOG_TABLE}_at_idx on ${t} (tenant_id, at)`,
    `alter table ${t} enable row level security`,
    `alter table ${t} force row level security`,
    `do $do$ begin
      if not exists (select 1 from pg_policy where polrelid = '${t}'::regclass and polname = 'tenant_isolation') then
        create policy tenant_isolation on ${t}
          using (tenant_id = tenantry_rls.current_tenant_id())
          with check (tenant_id = tenantry_rls.current_tenant_id());
      end if;
    end $do$`,
  ];
}

/**
 * The insert of one entry: the next seq and the hash from the chain's head (read under the lock,
 * see chain.ts), the tenant from the transaction's context (never a parameter: an entry cannot be
 * written for another tenant, and without a context the NOT NULL refuses it).
 */
const appendText = appendSql({
  table: TENANT_LOG_TABLE,
  tenant: 'tenantry_rls.current_tenant_id()',
  actorIdColumn: 'actor_id',
  first: 1,
  head: { where: 'l.tenant_id = tenantry_rls.current_tenant_id()', orderBy: 'l.seq desc' },
});

/**
 * The statements that append `entries` to the current tenant's chain: its lock, then one insert
 * each; each insert returns the entry's `seq` (as text) and `hash` (the last one is the new head).
 */
export function appendStatements(tenantId: string, entries: readonly AuditAppend[], planKey?: string): { text: string; params: unknown[]; planKey?: string }[] {
  return [
    { text: chainLockSql('tenant'), params: [tenantId], planKey },
    ...entries.map((e) => ({
      text: appendText,
      params: [e.actor.type, e.actor.id, e.record.action, e.record.target?.type ?? null, e.record.target?.id ?? null,
        e.requestId, e.clientAddress, e.record.detail ?? {}],
      planKey,
    })),
  ];
}
