export { Tenantry, planIsolation, migrateCatalog, type CreateTenantOptions } from './tenantry.js';
export { loadOptions, OptionsError, resolverNames, type ResolverName, type TenantryOptions } from './config/options.js';
export {
  runWithTenant, currentTenant, currentPrincipal, peekTenant, withPlatformScope, onPlatformScope,
  requireTenantScope, requirePlatformScope, type Principal, type TenantScope, type PlatformScope,
} from './context/tenant-context.js';
export {
  errorCatalog, registerErrors, TenantryError, TenantContextMissingError, CatalogUnavailableError, isTenantryError,
  type ErrorCode, type ErrorDefinition, type RegisteredErrorCodes,
} from './errors.js';
export { registerRoles, isRole, type Role, type RegisteredRoles } from './auth/roles.js';
export type { Tenant, TenantStatus, Isolation } from './catalog/types.js';
export { TenantCatalog } from './catalog/tenant-catalog.js';
export { ApiKeys, apiKeyScopes, type ApiKeyRecord, type ApiKeyScope } from './auth/api-keys.js';
export { Credentials, type Authenticated, type IssuedToken } from './auth/credentials.js';
export { CredentialRevocations } from './auth/revocations.js';
export { AuditLog, type AuditEntry, type AuditEntryInput } from './audit-log/audit-log.js';
export { checkSlug, reservedSlugs, SLUG_PATTERN } from './catalog/slug.js';
export { DataPlane, type TenantTransaction } from './data/data-plane.js';
export type { Placement, Lease, SessionScope } from './data/placement.js';
export { contextStatement } from './data/placement.js';
export { PooledPlacement } from './data/pooled/pooled-placement.js';
export { SchemaPlacement } from './data/schema/schema-placement.js';
export { DatabasePlacement, type DatabasePlacementOptions } from './data/database/database-placement.js';
export { tenantSchema, tenantRole, tenantDatabase, isUuid, UUID_PATTERN } from './core/tenant-ids.js';
export { roles, schemas } from './data/bootstrap.js';
export { TokenService, CLOCK_SKEW_SECONDS, type TokenClaims, type TokenOptions } from './auth/token-service.js';
export { hashPassword, verifyPassword } from './auth/password.js';
export { resolveTenant, type Resolution } from './resolve/resolve-tenant.js';
export type { TenantStrategy, TenantClaim, ResolutionRequest } from './resolve/strategy.js';
export { applyMigrations, MigrationChecksumError, type TargetResult } from './migrate/apply-migrations.js';
export { loadMigrations, type MigrationFile } from './migrate/migration-files.js';
export { startEmbeddedPostgres, attachOrStartEmbedded, type EmbeddedServer } from './embedded/embedded-postgres.js';
export { migrateAll, type MigrateOptions, type MigrationRun, type TargetRunResult } from './migrate/orchestrator.js';
export { auditAll, type AuditReport } from './migrate/check.js';
export { auditTables, auditTablesOf, auditRole, auditRolesOf, auditRoutinesAndViews, auditRoutinesAndViewsOf, schemaShape, schemaShapes, diffShapes, type AuditScope, type RoleScope, type Finding } from './migrate/audit.js';
export { listTargets, type MigrationTarget } from './migrate/targets.js';
export { bootstrapDatabase } from './data/bootstrap.js';
export { createPool, type Sql, type SqlConnection, type Statement, type Queryable } from './data/driver/index.js';
