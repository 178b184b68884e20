import { prepareDatabase, roles, schemas } from '../data/bootstrap.js';
import { createPool, type Sql } from '../data/driver/index.js';
import type { TenantMigrator } from '../data/placement.js';
import { applyMigrations, type TargetResult } from './apply-migrations.js';
import type { MigrationFile } from './migration-files.js';

/**
 * Tenant targets and their migrations: a schema tenant's schema, a tenant database. The placements
 * call these through the TenantMigrator the wiring gives them (so that data/ does not import
 * migrate/); `tenantry migrate` calls them directly, target by target.
 */

/** Applies pending migrations to a schema tenant's schema; its role gets DML on the tables. */
export function migrateTenantSchema(admin: Sql, schema: string, runtimeRole: string, files: readonly MigrationFile[], label: string, dryRun = false): Promise<TargetResult> {
  return applyMigrations(admin, schema, files, { ownerRole: roles.owner, grantTo: runtimeRole, label, dryRun, audit: true, tenantLog: true });
}

/** Prepares a tenant database (schemas, RLS helper, privileges) and applies pending migrations. */
export async function migrateTenantDatabase(adminUrl: string, files: readonly MigrationFile[], label: string, dryRun = false): Promise<TargetResult> {
  const admin = createPool(adminUrl, { max: 1, applicationName: 'tenantry-admin' });
  try {
    if (!dryRun) await prepareDatabase(admin, { catalog: false });
    return await applyMigrations(admin, schemas.pooled, files, { ownerRole: roles.owner, grantTo: roles.app, label, dryRun, audit: true, tenantLog: true });
  } finally {
    await admin.end();
  }
}

/** The TenantMigrator of a migration source (read when first needed), for the placements. */
export function tenantMigrator(files: () => Promise<readonly MigrationFile[]>): TenantMigrator {
  return {
    schema: async (admin, schema, runtimeRole, label) => migrateTenantSchema(admin, schema, runtimeRole, await files(), label),
    database: async (adminUrl, label) => migrateTenantDatabase(adminUrl, await files(), label),
  };
}
