import type { Isolation } from '../catalog/types.js';
import { roles, schemas } from '../data/bootstrap.js';
import { withDatabase, type Sql } from '../data/driver/index.js';
import { tenantDatabase, tenantIdSql, tenantRole, tenantSchema } from '../core/tenant-ids.js';

/** A place that holds tenant tables and gets every tenant migration. */
export interface MigrationTarget {
  /** `pooled:app`, `schema:t_<hex>`, `database:tenant_<hex>`. */
  readonly id: string;
  readonly isolation: Isolation;
  readonly tenantId: string | null;
  readonly tenantSlug: string | null;
  /** Admin URL of the database that holds the schema. */
  readonly databaseUrl: string;
  readonly schema: string;
  /** The role that reads and writes the target's tables at run time. */
  readonly runtimeRole: string;
}

/**
 * Every target of the platform: the pooled schema of the shard, each schema tenant's schema and
 * each database tenant's database, as they exist now (tenants whose placement was never created
 * are skipped: provisioning creates and migrates them).
 */
export async function listTargets(admin: Sql, adminUrl: string): Promise<MigrationTarget[]> {
  const rows = await admin.query<{ id: string; slug: string; isolation: Isolation; present: boolean }>(`
    select t.id, t.slug, t.isolation,
      case t.isolation
        when 'schema' then exists (select 1 from pg_namespace where nspname = ${tenantIdSql.tenantSchema('t.id')})
        when 'database' then exists (select 1 from pg_database where datname = ${tenantIdSql.tenantDatabase('t.id')})
        else false end as present
    from tenantry.tenants t where t.isolation <> 'pooled' order by t.id`);
  const targets: MigrationTarget[] = [{
    id: `pooled:${schemas.pooled}`, isolation: 'pooled', tenantId: null, tenantSlug: null,
    databaseUrl: adminUrl, schema: schemas.pooled, runtimeRole: roles.app,
  }];
  for (const r of rows) {
    if (!r.present) continue;
    if (r.isolation === 'schema') {
      targets.push({ id: `schema:${tenantSchema(r.id)}`, isolation: 'schema', tenantId: r.id, tenantSlug: r.slug,
        databaseUrl: adminUrl, schema: tenantSchema(r.id), runtimeRole: tenantRole(r.id) });
    } else {
      targets.push({ id: `database:${tenantDatabase(r.id)}`, isolation: 'database', tenantId: r.id, tenantSlug: r.slug,
        databaseUrl: withDatabase(adminUrl, tenantDatabase(r.id)), schema: schemas.pooled, runtimeRole: roles.app });
    }
  }
  return targets;
}
