/**
 * tenantry: the public API. What this module and the subpaths below export is supported; every
 * other module of the package is internal and may change without notice (tests and benchmarks
 * import internals by path). See docs/api.md.
 *
 * Subpaths (package.json `exports`):
 * - `tenantry/fastify`: the tenancy plugin, problem+json handlers, validators, server options;
 * - `tenantry/cli`: the `tenantry` command, for an application's own bin script;
 * - `tenantry/embedded`: an embedded PostgreSQL for development and tests (loaded only when imported);
 * - `tenantry/sql`: the driver seam (`createPool`, `Sql`, `SqlConnection`), for placements and tools.
 */

// The toolkit: start it once per process.
export { Tenantry, type StartOptions, type TenantryPoolStats } from './tenantry.js';
export { planIsolation, type CreateTenantOptions } from './lifecycle/tenant-lifecycle.js';

// Configuration: one table of options (README.md, "Configuration").
export {
  loadOptions, OptionsError, resolverNames,
  type ResolverName, type TenantryOptions, type TenantryOptionsInput,
} from './config/options.js';

// The tenant context.
export {
  runWithTenant, currentTenant, currentPrincipal, peekTenant, withPlatformScope, onPlatformScope,
  requireTenantScope, requirePlatformScope, type Principal, type TenantScope, type PlatformScope, type CancelSignal,
} from './context/tenant-context.js';

// Errors (docs/errors.md) and the application's own codes and roles.
export {
  errorCatalog, registerErrors, TenantryError, TenantContextMissingError, CatalogUnavailableError, isTenantryError,
  type ErrorCode, type ErrorDefinition, type RegisteredErrorCodes,
} from './errors.js';
export { registerRoles, isRole, type Role, type RegisteredRoles } from './auth/roles.js';

// Tenants and credentials (reached through a started Tenantry: tenantry.catalog, .credentials, .apiKeys, .auditLog, .audit).
export type { Tenant, TenantStatus, Isolation } from './catalog/types.js';
export type { TenantCatalog } from './catalog/tenant-catalog.js';
export { checkSlug, reservedSlugs, SLUG_PATTERN } from './catalog/slug.js';
export { isUuid, UUID_PATTERN } from './core/tenant-ids.js';
export { apiKeyScopes, type ApiKeys, type ApiKeyRecord, type ApiKeyScope } from './auth/api-keys.js';
export type { Credentials, Authenticated, IssuedToken } from './auth/credentials.js';
export type { TokenClaims, TokenOptions } from './auth/token-service.js';
export type { AuditLog, AuditEntry, AuditEntryInput } from './audit-log/audit-log.js';
export type { TenantAuditLog, TenantLogEntry, ActivityDay } from './audit-log/tenant-log.js';
export type { AuditRecord, AuditActor } from './audit-log/tenant-log-sql.js';
export { hashPassword, verifyPassword } from './auth/password.js';

// The data plane (tenantry.db) and, for implementers, the placement interface.
export type { DataPlane, TenantTransaction } from './data/data-plane.js';
export { builtInPlans, limitsView, type Plans, type Limits, type LimitOverrides, type LimitsPatch, type LimitSources, type LimitsView, type EffectiveLimits, type PlanInput, type Admission, type AdmissionDecision, type Quotas, type GuardOptions } from './limits/index.js';
export type { Placement, Lease, SessionScope } from './data/placement.js';

// The tenant cache (tenantry.cache).
export type { TenantCache, TenantCacheStats, TenantCacheMode } from './cache/tenant-cache.js';

// Tenant resolution, for strategy implementers.
export type { TenantStrategy, TenantClaim, ResolutionRequest } from './resolve/strategy.js';
export type { Resolution } from './resolve/resolve-tenant.js';

// What tenantry.migrateAll() and tenantry.check() return.
export type { MigrateOptions, MigrationRun, TargetRunResult } from './migrate/orchestrator.js';
export type { AuditReport } from './migrate/check.js';
export type { Finding } from './migrate/audit.js';

// Instrumentation (docs/events.md).
export {
  channels, subscribe,
  type ChannelName, type EventMessages, type RequestResolvedEvent, type RequestAdmittedEvent, type RequestLimitedEvent, type TransactionEvent, type CatalogLookupEvent,
  type RequestCompletedEvent,
} from './core/events.js';

// Usage metering (tenantry.usage; docs/usage.md).
export type { Usage, UsageFlushResult } from './usage/usage.js';
export type { UsageMeter, UsageDelta } from './usage/usage-meter.js';
export { parseUsageRange, type UsageRange, type UsageRecord, type UsageGranularity, type UsageStore } from './usage/usage-store.js';
