import type { Tenant } from '../catalog/types.js';

/** What storage measurement needs of the data plane: a read in the current tenant's scope. */
export interface TenantReader {
  query<T>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

/**
 * The bytes a tenant's data takes, measured the way its placement allows, in the tenant's own
 * scope (so through RLS, as the runtime role):
 * - pooled: the size of its rows (pg_column_size of each row of every table of the shared schema;
 *   indexes and free space are the platform's, not the tenant's);
 * - schema: every relation of its schema, with indexes and TOAST (pg_total_relation_size);
 * - database: its database (pg_database_size).
 * A pooled measurement reads every row of the tenant: callers cache it (Quotas does, for a minute).
 */
export async function measureStorageBytes(db: TenantReader, tenant: Tenant): Promise<number> {
  if (tenant.isolation === 'database') {
    const [r] = await db.query<{ bytes: string }>('select pg_database_size(current_database())::text as bytes');
    return Number(r?.bytes ?? 0);
  }
  if (tenant.isolation === 'schema') {
    const [r] = await db.query<{ bytes: string }>(
      `select coalesce(sum(pg_total_relation_size(c.oid)), 0)::text as bytes
         from pg_catalog.pg_class c where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'm')`);
    return Number(r?.bytes ?? 0);
  }
  const tables = await db.query<{ name: string }>(
    `select quote_ident(c.relname) as name from pg_catalog.pg_class c
      where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
        and exists (select 1 from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
      order by 1`);
  if (tables.length === 0) return 0;
  const sum = tables.map((t) => `(select coalesce(sum(pg_column_size(x.*)), 0) from ${t.name} x)`).join(' + ');
  const [r] = await db.query<{ bytes: string }>(`select (${sum})::text as bytes`);
  return Number(r?.bytes ?? 0);
}
