/**
 * The error catalog: every error tenantry can answer with, plus the codes an application
 * registers for itself (registerErrors). One place lists code, HTTP status and title;
 * problem+json responses carry the code. docs/errors.md documents each code (the toolkit's and the
 * reference app's) and test/errors.test.ts checks that the docs and the catalog agree.
 */

/** What a code answers: its HTTP status and a fixed, human-readable title. */
export interface ErrorDefinition {
  readonly status: number;
  readonly title: string;
}

const toolkitErrors = {
  validation_failed: { status: 400, title: 'The request is not valid' },
  malformed_json: { status: 400, title: 'The request body is not valid JSON' },
  bad_request: { status: 400, title: 'The request is not valid HTTP' },
  host_required: { status: 400, title: 'The request has no Host header' },
  invalid_cursor: { status: 400, title: 'The pagination cursor is not valid' },
  tenant_required: { status: 400, title: 'No tenant was identified in the request' },
  tenant_ambiguous: { status: 400, title: 'Two sources in the request name different tenants' },
  authentication_required: { status: 401, title: 'Authentication is required' },
  invalid_token: { status: 401, title: 'The bearer token is not valid' },
  invalid_api_key: { status: 401, title: 'The API key is not valid' },
  admin_token_invalid: { status: 401, title: 'The platform admin token is missing or wrong' },
  metrics_token_invalid: { status: 401, title: 'The metrics token is missing or wrong' },
  tenant_mismatch: { status: 403, title: 'The credential belongs to another tenant' },
  tenant_suspended: { status: 403, title: 'The tenant is suspended' },
  insufficient_role: { status: 403, title: 'Your role does not allow this action' },
  insufficient_scope: { status: 403, title: 'The scopes of this credential do not allow this action' },
  quota_exceeded: { status: 403, title: 'A quota of the tenant\'s plan would be exceeded' },
  not_found: { status: 404, title: 'The resource does not exist' },
  tenant_not_found: { status: 404, title: 'The tenant does not exist' },
  route_not_found: { status: 404, title: 'No such route' },
  method_not_allowed: { status: 405, title: 'The method is not allowed on this route' },
  request_timeout: { status: 408, title: 'The request did not arrive in time' },
  conflict: { status: 409, title: 'The request conflicts with the current state' },
  tenant_slug_taken: { status: 409, title: 'A tenant with this slug already exists' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  uri_too_long: { status: 414, title: 'The request URI is too long' },
  unsupported_media_type: { status: 415, title: 'The request body must be application/json' },
  invalid_reference: { status: 422, title: 'A referenced resource does not exist' },
  unknown_plan: { status: 422, title: 'No such plan' },
  isolation_unavailable: { status: 422, title: 'This isolation model is not available on this platform' },
  rate_limited: { status: 429, title: 'The tenant is over its request rate; retry later' },
  concurrency_limited: { status: 429, title: 'The tenant has too many requests in progress; retry shortly' },
  too_many_attempts: { status: 429, title: 'Too many failed sign-in attempts; retry later' },
  too_many_connections: { status: 429, title: 'Too many open connections from this client address' },
  headers_too_large: { status: 431, title: 'The request headers are too large' },
  tenant_context_missing: { status: 500, title: 'Data access outside a tenant context' },
  internal_error: { status: 500, title: 'Internal error' },
  shutting_down: { status: 503, title: 'The server is shutting down; retry on another instance' },
  catalog_unavailable: { status: 503, title: 'The tenant catalog is unavailable' },
  database_unavailable: { status: 503, title: 'The tenant database is unavailable' },
  database_busy: { status: 503, title: 'Every database connection of this shard is in use; retry shortly' },
  query_timeout: { status: 503, title: 'A database statement ran past its time limit and was cancelled' },
} as const satisfies Record<string, ErrorDefinition>;

/** A code of the toolkit itself. */
export type ToolkitErrorCode = keyof typeof toolkitErrors;

/**
 * The codes an application registers with registerErrors(). To have them type-checked wherever
 * an ErrorCode is expected, the application declares them here too (module augmentation):
 *
 *     declare module 'tenantry' { interface RegisteredErrorCodes { quota_exceeded: true } }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface RegisteredErrorCodes {}

/** Any code the catalog answers with: the toolkit's and the application's. */
export type ErrorCode = ToolkitErrorCode | (keyof RegisteredErrorCodes & string);

const entries: Record<string, ErrorDefinition> = Object.create(null) as Record<string, ErrorDefinition>;
for (const [code, def] of Object.entries(toolkitErrors)) entries[code] = Object.freeze({ ...def });

/** Every code, the toolkit's and those registered since, with its status and title (read-only). */
export const errorCatalog: Readonly<Record<ErrorCode, ErrorDefinition>> = entries as Record<ErrorCode, ErrorDefinition>;

/** The toolkit's own codes (what an application cannot redefine). */
export const toolkitErrorCodes: readonly ToolkitErrorCode[] = Object.freeze(Object.keys(toolkitErrors) as ToolkitErrorCode[]);

const CODE = /^[a-z][a-z0-9_]{1,63}$/;

/**
 * Adds an application's codes to the catalog, so that `new TenantryError(code)` and the HTTP layer
 * answer them like the toolkit's own. Registering the same code again with the same status and
 * title does nothing; a different definition, a toolkit code, a malformed code or a status outside
 * 400–599 throws (a programming error, found at start-up).
 */
export function registerErrors(defs: Readonly<Record<string, ErrorDefinition>>): void {
  for (const [code, def] of Object.entries(defs)) {
    if (!CODE.test(code)) throw new TypeError(`error code "${code}" must be snake_case (a-z, 0-9, _), 2 to 64 characters`);
    if (!Number.isInteger(def.status) || def.status < 400 || def.status > 599) throw new TypeError(`error code ${code}: status ${def.status} is not a 4xx or 5xx`);
    if (!def.title) throw new TypeError(`error code ${code} needs a title`);
    const known = entries[code];
    if (known) {
      if (known.status === def.status && known.title === def.title) continue;
      throw new TypeError(`error code ${code} is already defined (${known.status} "${known.title}")`);
    }
    entries[code] = Object.freeze({ status: def.status, title: def.title });
  }
}

/** A failure with a stable code from the catalog; the HTTP layer maps it to problem+json. */
export class TenantryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, detail?: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    const def = entries[code];
    // An unregistered code is a programming error: fail loudly rather than answer an unknown code.
    if (!def) throw new TypeError(`error code "${code}" is not registered (see registerErrors)`);
    super(detail ?? def.title, options);
    this.name = 'TenantryError';
    this.code = code;
    this.status = def.status;
    this.details = details;
  }
}

/** Thrown when tenant data is touched with no tenant context: a programming error, never "all rows". */
export class TenantContextMissingError extends TenantryError {
  constructor(what = 'data access') {
    super('tenant_context_missing', `${what} requires a tenant context; none is active`);
    this.name = 'TenantContextMissingError';
  }
}

/** The catalog (control plane) could not be reached: an outage, never "unknown tenant". */
export class CatalogUnavailableError extends TenantryError {
  constructor(cause: unknown) {
    super('catalog_unavailable', undefined, undefined, { cause });
    this.name = 'CatalogUnavailableError';
  }
}

export function isTenantryError(err: unknown): err is TenantryError {
  return err instanceof TenantryError;
}
