import type { Tenant } from '../../catalog/types.js';
import { roles } from '../bootstrap.js';
import { reserve } from '../pooled/pooled-placement.js';
import type { Lease, Placement, TenantMigrator } from '../placement.js';
import { ident, type Sql } from '../driver/index.js';
import { tenantRole, tenantSchema } from '../../core/tenant-ids.js';

/**
 * A schema `t_<hex>` per tenant on the shard, and a role of the same name that has privileges on
 * that schema only. Each transaction switches to the tenant's role and search_path with
 * transaction-local settings, so:
 * - a fully qualified reference to another tenant's schema is "permission denied";
 * - `public` is never on the search path: a table missing from the tenant's schema is an error,
 *   not a silent fallback to some shared table;
 * - RLS stays on as a second wall (the tables carry tenant_id like everywhere else).
 */
export class SchemaPlacement implements Placement {
  readonly isolation = 'schema' as const;

  constructor(
    private readonly pool: Sql,
    private readonly admin: Sql,
    private readonly migrator: TenantMigrator,
  ) {}

  async acquire(tenant: Tenant): Promise<Lease> {
    // A connection that served this tenant before, when one is free: its statements are prepared
    // under the tenant's own names there (planKey), so nothing is re-planned.
    const conn = await reserve(this.pool, tenant.id);
    return {
      conn,
      scope: { searchPath: tenantSchema(tenant.id), role: tenantRole(tenant.id), planKey: tenant.id },
      release: (discard) => conn.release(discard),
    };
  }

  async provision(tenant: Tenant): Promise<void> {
    const schema = ident(tenantSchema(tenant.id));
    const role = ident(tenantRole(tenant.id));
    await this.admin.transaction(async (tx) => {
      await tx.query(`select pg_advisory_xact_lock(hashtext('tenantry.bootstrap'))`);
      const exists = await tx.query('select 1 from pg_roles where rolname = $1', [tenantRole(tenant.id)]);
      if (!exists.length) await tx.query(`create role ${role} nologin noinherit`);
      await tx.query(`grant ${role} to ${ident(roles.app)}`);
      await tx.query(`create schema if not exists ${schema} authorization ${ident(roles.owner)}`);
      await tx.query(`revoke all on schema ${schema} from public`);
    });
    await this.migrate(tenant);
  }

  /** Applies pending tenant migrations to the tenant's schema (its role gets DML on the tables). */
  async migrate(tenant: Tenant): Promise<void> {
    const schema = tenantSchema(tenant.id);
    const result = await this.migrator.schema(this.admin, schema, tenantRole(tenant.id), `schema:${schema}`);
    if (result.status === 'failed') throw new Error(`migrating ${tenant.slug}: ${result.error}`);
  }

  /** Drops the tenant's schema (and with it every row and object) and its role. */
  async deprovision(tenant: Tenant): Promise<void> {
    await this.admin.transaction(async (tx) => {
      await tx.query(`select pg_advisory_xact_lock(hashtext('tenantry.bootstrap'))`);
      await tx.query(`drop schema if exists ${ident(tenantSchema(tenant.id))} cascade`);
      await tx.query(`drop role if exists ${ident(tenantRole(tenant.id))}`);
    });
  }

  async close(): Promise<void> {
    // The pool is shared with the pooled placement, which closes it.
  }
}
