import type { Tenant } from '../../catalog/types.js';
import { applyMigrations } from '../../migrate/apply-migrations.js';
import type { MigrationFile } from '../../migrate/migration-files.js';
import { roles } from '../bootstrap.js';
import { reserve } from '../pooled/pooled-placement.js';
import { contextPrelude, type Lease, type Placement } from '../placement.js';
import { ident, type Sql } from '../postgres-driver.js';
import { tenantRole, tenantSchema } from '../tenant-names.js';

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
    private readonly migrations: () => Promise<readonly MigrationFile[]>,
  ) {}

  async acquire(tenant: Tenant): Promise<Lease> {
    const conn = await reserve(this.pool);
    return {
      conn,
      prelude: contextPrelude(tenant.id, tenantSchema(tenant.id), tenantRole(tenant.id)),
      release: () => conn.release(),
    };
  }

  async provision(tenant: Tenant): Promise<void> {
    const schema = ident(tenantSchema(tenant.id));
    const role = ident(tenantRole(tenant.id));
    await this.admin.begin(async (tx) => {
      await tx.unsafe(`select pg_advisory_xact_lock(hashtext('tenantry.bootstrap'))`);
      const exists = await tx.unsafe('select 1 from pg_roles where rolname = $1', [tenantRole(tenant.id)]);
      if (!exists.length) await tx.unsafe(`create role ${role} nologin noinherit`);
      await tx.unsafe(`grant ${role} to ${ident(roles.app)}`);
      await tx.unsafe(`create schema if not exists ${schema} authorization ${ident(roles.owner)}`);
      await tx.unsafe(`revoke all on schema ${schema} from public`);
    });
    const result = await applyMigrations(this.admin, tenantSchema(tenant.id), await this.migrations(), {
      ownerRole: roles.owner, grantTo: tenantRole(tenant.id), label: `schema:${tenantSchema(tenant.id)}`, audit: true,
    });
    if (result.status === 'failed') throw new Error(`provisioning ${tenant.slug}: ${result.error}`);
  }

  async close(): Promise<void> {
    // The pool is shared with the pooled placement, which closes it.
  }
}
