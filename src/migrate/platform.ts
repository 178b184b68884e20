import { bootstrapDatabase, type RolePasswords } from '../data/bootstrap.js';
import { createPool, type Sql } from '../data/driver/index.js';
import { migrateCatalog } from './catalog-migrations.js';
import { auditAll, type AuditOptions, type AuditReport } from './check.js';
import type { MigrationFile } from './migration-files.js';
import { migrateAll, type MigrateOptions, type MigrationRun } from './orchestrator.js';

/**
 * Operations on a whole platform given its admin URL, without starting the toolkit: what
 * `tenantry migrate` and `tenantry check` run. Each opens an admin pool of its own and closes it.
 */

async function withAdmin<T>(url: string, max: number, applicationName: string, fn: (admin: Sql) => Promise<T>): Promise<T> {
  const admin = createPool(url, { max, applicationName });
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

export interface MigratePlatformOptions extends MigrateOptions {
  /**
   * Passwords of the runtime roles. The roles are cluster-wide: give the configured ones (as
   * Tenantry.start does), never let a generated one lock out the servers running on the cluster.
   */
  readonly rolePasswords?: RolePasswords;
}

/**
 * Bootstraps the database (idempotent), applies the catalog's migrations, then the tenant
 * migrations to every target (see migrateAll: concurrency, canary, dry run, audit).
 */
export async function migratePlatform(url: string, files: readonly MigrationFile[], opts: MigratePlatformOptions = {}): Promise<MigrationRun> {
  return withAdmin(url, Math.max(1, opts.concurrency ?? 4) + 1, 'tenantry-migrate', async (admin) => {
    await bootstrapDatabase(admin, opts.rolePasswords, { warn: (obj, msg) => console.warn(msg, obj) });
    const catalog = await migrateCatalog(admin);
    if (catalog.status === 'failed') throw new Error(`catalog migration failed: ${catalog.error}`);
    return migrateAll(admin, url, files, opts);
  });
}

/** The isolation and drift audit of every target (see auditAll; `probe: false`: structural only). Reads only. */
export async function checkPlatform(url: string, opts: Pick<AuditOptions, 'concurrency' | 'probe'> = {}): Promise<AuditReport> {
  return withAdmin(url, 5, 'tenantry-check', (admin) => auditAll(admin, url, opts));
}
