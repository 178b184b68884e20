import type { Isolation } from '../catalog/types.js';
import { schemas } from '../data/bootstrap.js';
import { createPool, ident, withDatabase, type Sql } from '../data/driver/index.js';
import { tenantDatabase, tenantSchema } from '../core/tenant-ids.js';
import { AuditLog } from './audit-log.js';
import { chainReport, verifySql, type ChainReport } from './chain.js';
import { TENANT_LOG_TABLE } from './tenant-log-sql.js';

export interface TenantAuditReport {
  readonly tenant: { readonly id: string; readonly slug: string; readonly isolation: Isolation };
  /**
   * The tenant's own log, in its placement; `missing` when the placement has no log table (not
   * migrated since). `anchor`: the newest head the instances wrote to the catalog, and whether the
   * chain still holds that entry with that hash (false: the newest entries were removed, or the
   * chain was re-hashed after an edit).
   */
  readonly tenantLog: ChainReport & {
    readonly missing: boolean;
    readonly anchor: { readonly seq: number; readonly hash: string; readonly holds: boolean } | null;
  };
  /** The platform log's entries about the tenant (catalog); `unchained`: entries older than the chain. */
  readonly platformLog: ChainReport & { readonly unchained: number };
  /** Both chains intact. */
  readonly ok: boolean;
}

/** No tenant has this slug (the CLI's exit status 2). */
export class UnknownTenantError extends Error {}

/**
 * Verifies a tenant's audit chains with the admin URL's rights — the tenant's log in its placement
 * and the platform log's entries about it — recomputing every hash (see chain.ts). Reads only.
 */
export async function verifyTenantAudit(adminUrl: string, slug: string): Promise<TenantAuditReport> {
  const admin = createPool(adminUrl, { max: 1, applicationName: 'tenantry-audit-verify' });
  try {
    const [t] = await admin.query<{ id: string; slug: string; isolation: Isolation }>(
      'select id::text, slug, isolation from tenantry.tenants where slug = $1', [slug]);
    if (!t) throw new UnknownTenantError(`no tenant has the slug "${slug}"`);
    const platformLog = await AuditLog.verify(admin, t.id);
    const [anchor] = await admin.query<{ seq: string; hash: string }>('select seq::text, hash from tenantry.audit_anchors where tenant_id = $1', [t.id]);
    const at = anchor ? { seq: Number(anchor.seq), hash: anchor.hash } : null;
    const tenantLog = t.isolation === 'database'
      ? await withPool(withDatabase(adminUrl, tenantDatabase(t.id)), (db) => verifyTenantLog(db, schemas.pooled, t.id, at))
      : await verifyTenantLog(admin, t.isolation === 'schema' ? tenantSchema(t.id) : schemas.pooled, t.id, at);
    const ok = tenantLog.firstBroken === null && tenantLog.anchor?.holds !== false && platformLog.firstBroken === null;
    return { tenant: t, tenantLog, platformLog, ok };
  } finally {
    await admin.end();
  }
}

async function withPool<T>(url: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = createPool(url, { max: 1, applicationName: 'tenantry-audit-verify' });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/**
 * The chain of `tenantId` in `schema`'s log, read with the tenant's context (the table's RLS is
 * forced), and whether it still holds the catalog's anchor.
 */
async function verifyTenantLog(sql: Sql, schema: string, tenantId: string, anchor: { seq: number; hash: string } | null): Promise<TenantAuditReport['tenantLog']> {
  const table = `${ident(schema)}.${TENANT_LOG_TABLE}`;
  return sql.transaction(async (tx) => {
    const [present] = await tx.query<{ ok: boolean }>('select to_regclass($1) is not null as ok', [table]);
    if (!present?.ok) return { ...chainReport(undefined), missing: true, anchor: anchor && { ...anchor, holds: false } };
    await tx.query("select set_config('app.tenant_id', $1, true)", [tenantId]);
    const [row] = await tx.query<Parameters<typeof chainReport>[0] & object>(verifySql(`${table} where tenant_id = $1::uuid`), [tenantId]);
    const held = anchor
      ? (await tx.query<{ hash: string }>(`select hash from ${table} where tenant_id = $1::uuid and seq = $2`, [tenantId, anchor.seq]))[0]
      : undefined;
    return { ...chainReport(row), missing: false, anchor: anchor && { ...anchor, holds: held?.hash === anchor.hash } };
  });
}
