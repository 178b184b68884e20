/**
 * Tenant ids and the names derived from them, for TypeScript and SQL alike: the one place that
 * knows what an id looks like and how a schema, role or database is named after it.
 *
 * A tenant id is a UUID in PostgreSQL's text form (lower case, 8-4-4-4-12). Names of schemas,
 * roles and databases derive from the id only — never from the slug or any other user input — so
 * they are always valid, unique and safe to interpolate. The SQL fragments below build the same
 * names and make the same check on the server, so the two sides cannot drift apart.
 */

/** The pattern of a UUID in canonical text form, as a regular expression source (POSIX and JS alike). */
export const UUID_SOURCE = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

/** A UUID in canonical (lower-case) text form, as PostgreSQL prints one. */
export const UUID_PATTERN = new RegExp(UUID_SOURCE);

/** A UUID in either case (input from a request, normalised with `toLowerCase()` before use). */
export const UUID_PATTERN_ANY_CASE = new RegExp(UUID_SOURCE, 'i');

/** Is `value` a UUID in canonical form (lower case)? */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value);
}

/** Prefix of a `schema` tenant's schema and role. */
export const TENANT_SCHEMA_PREFIX = 't_';
/** Prefix of a `database` tenant's database. */
export const TENANT_DATABASE_PREFIX = 'tenant_';

/** The id's 32 hex digits; throws for anything that is not a tenant id (fail closed). */
export function tenantHex(tenantId: string): string {
  if (!UUID_PATTERN.test(tenantId)) throw new TypeError(`not a tenant id: ${JSON.stringify(tenantId)}`);
  return tenantId.replace(/-/g, '');
}

/** Schema of a `schema` tenant: `t_<32 hex>`. */
export const tenantSchema = (tenantId: string): string => `${TENANT_SCHEMA_PREFIX}${tenantHex(tenantId)}`;
/** Role of a `schema` tenant (same name as its schema). */
export const tenantRole = (tenantId: string): string => `${TENANT_SCHEMA_PREFIX}${tenantHex(tenantId)}`;
/** Database of a `database` tenant: `tenant_<32 hex>`. */
export const tenantDatabase = (tenantId: string): string => `${TENANT_DATABASE_PREFIX}${tenantHex(tenantId)}`;

/**
 * The same knowledge as SQL text, for statements and functions written in SQL. Each takes an SQL
 * expression (a column, a parameter, a function call) and returns an SQL expression; the
 * expression is inserted as given, so it must come from code, never from input.
 */
export const tenantIdSql = {
  /** Boolean: is the text expression a tenant id in canonical form? (`~` is case-sensitive.) */
  isTenantId: (textExpr: string): string => `(${textExpr}) ~ '${UUID_SOURCE}'`,
  /** Text: the schema (and role) name of the tenant whose id (uuid or text) is `idExpr`. */
  tenantSchema: (idExpr: string): string => `('${TENANT_SCHEMA_PREFIX}' || replace((${idExpr})::text, '-', ''))`,
  /** Text: the database name of the tenant whose id (uuid or text) is `idExpr`. */
  tenantDatabase: (idExpr: string): string => `('${TENANT_DATABASE_PREFIX}' || replace((${idExpr})::text, '-', ''))`,
} as const;
