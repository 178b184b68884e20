import { fileURLToPath } from 'node:url';
import { roles, schemas } from '../data/bootstrap.js';
import type { Sql } from '../data/driver/index.js';
import { applyMigrations, type TargetResult } from './apply-migrations.js';
import { loadMigrations } from './migration-files.js';

/** The control-plane catalog's own migrations (src/catalog/migrations/). */
const catalogMigrations = fileURLToPath(new URL('../catalog/migrations/', import.meta.url));

/**
 * Applies the catalog's migrations (schema `tenantry`). The catalog role gets DML on its tables,
 * but only reads and inserts on the platform audit log.
 */
export async function migrateCatalog(admin: Sql): Promise<TargetResult> {
  return applyMigrations(admin, schemas.catalog, await loadMigrations(catalogMigrations),
    { ownerRole: roles.owner, label: 'catalog', grantTo: roles.platform, appendOnly: ['audit_log'] });
}
