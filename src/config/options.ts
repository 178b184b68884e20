import { randomBytes } from 'node:crypto';
import type { TokenOptions } from '../auth/token-service.js';

export const resolverNames = ['subdomain', 'domain', 'header', 'jwt', 'apikey'] as const;
export type ResolverName = (typeof resolverNames)[number];

export interface TenantryOptions {
  /** Admin connection URL: creates roles and schemas and runs migrations. */
  readonly databaseUrl: string;
  /** Folder of the tenant migration files (`NNNN_name.sql`), applied to every placement. */
  readonly migrationsDir: string;
  /**
   * Where runtime connections (tenant data, catalog) go: host, port and database of a pooler such
   * as PgBouncer; tenantry's runtime roles and passwords are used on it. Unset: `databaseUrl`.
   * Admin work (bootstrap, migrations, provisioning), LISTEN and session locks always use
   * `databaseUrl`, the direct connection.
   */
  readonly runtimeUrl: string | undefined;
  /**
   * `transaction`: the runtime URL is a pooler in transaction mode (PgBouncer): no named prepared
   * statements (PgBouncer 1.18 cannot route them; reads stay one round trip with unnamed ones), no
   * session state on runtime connections.
   */
  readonly pooler: 'transaction' | undefined;
  /** Statements running longer are cancelled (503 query_timeout), milliseconds; 0 = no limit. */
  readonly statementTimeoutMs: number;
  /** Tenants are `<slug>.<baseDomain>`. */
  readonly baseDomain: string;
  /** Enabled identification strategies, in order. */
  readonly resolvers: readonly ResolverName[];
  /** Access tokens: HS256 secret or a key pair, issuer, audience, lifetime (see TokenService). */
  readonly jwt: TokenOptions;
  /**
   * Passwords of the runtime login roles. Unset: generated once and kept in the database
   * (schema tenantry_admin, readable by the admin user only).
   */
  readonly rolePasswords: { readonly app: string; readonly platform: string } | undefined;
  /** Server connections of the tenant data pool, per shard. */
  readonly poolMax: number;
  /** Server connections of the catalog pool. */
  readonly catalogPoolMax: number;
  /** Database-per-tenant pools of one shard (see DatabasePlacement). */
  readonly tenantDatabases: {
    /** Server connections all tenant pools of a shard may hold together. */
    readonly maxConnections: number;
    /** Connections per tenant pool. */
    readonly poolSize: number;
    /** Wait for a connection before answering 503 database_busy, milliseconds. */
    readonly acquireTimeoutMs: number;
    /** Close a tenant pool after this many idle seconds. */
    readonly idleSeconds: number;
  };
  /**
   * Catalog cache: entries kept and their lifetime in milliseconds. Changes are also pushed to
   * every process (LISTEN/NOTIFY), so the lifetime only bounds staleness when that channel is down.
   */
  readonly catalogCache: { readonly max: number; readonly ttlMs: number };
  /**
   * A catalog read that has not answered after this many milliseconds is an outage (503
   * catalog_unavailable): a locked table or a server that stopped answering must not hang requests.
   */
  readonly catalogTimeoutMs: number;
  /**
   * Follow catalog changes (suspensions, new domains, token revocations) with LISTEN/NOTIFY. Turn
   * it off behind a pooler in transaction mode (PgBouncer), where LISTEN cannot work: then the
   * cache TTL bounds how long a change goes unseen, and revocations are reloaded every 5 s.
   */
  readonly catalogListen: boolean;
  /**
   * HTTP: a request's headers must have arrived this many milliseconds after it began, or it is
   * answered 408 request_timeout and its connection closed (a client that opens connections and
   * never finishes a request cannot hold them). Node's `requestTimeout`; the body is not covered.
   */
  readonly requestTimeoutMs: number;
  /**
   * HTTP: on SIGTERM or SIGINT the server stops taking requests and gives those in flight this
   * many milliseconds to finish; connections still open then are closed and shutdown goes on.
   */
  readonly shutdownTimeoutMs: number;
  /** Secrets were generated because none was configured (development only). */
  readonly generated: readonly string[];
}

export class OptionsError extends Error {
  constructor(option: string, problem: string) {
    super(`invalid option ${option}: ${problem}`);
    this.name = 'OptionsError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|on|yes)$/i.test(raw)) return true;
  if (/^(0|false|off|no)$/i.test(raw)) return false;
  throw new OptionsError(name, `expected 1 or 0 (true or false), got ${JSON.stringify(raw)}`);
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new OptionsError(name, `expected an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * One options object, validated once and frozen. Resolution order: explicit value → environment
 * → default. In production (NODE_ENV=production) a missing secret is a start-up error; in
 * development it is generated and reported in `generated` so the caller can print it.
 */
export function loadOptions(explicit: Partial<TenantryOptions> & { databaseUrl: string; migrationsDir: string }, env: Env = process.env): TenantryOptions {
  const production = env.NODE_ENV === 'production';
  const generated: string[] = [];

  const resolvers = explicit.resolvers ?? (env.TENANTRY_RESOLVERS
    ? env.TENANTRY_RESOLVERS.split(',').map((s) => s.trim()).filter(Boolean)
    : [...resolverNames]);
  for (const r of resolvers) {
    if (!(resolverNames as readonly string[]).includes(r)) {
      throw new OptionsError('TENANTRY_RESOLVERS', `unknown resolver "${r}" (known: ${resolverNames.join(', ')})`);
    }
  }
  if (new Set(resolvers).size !== resolvers.length) throw new OptionsError('TENANTRY_RESOLVERS', 'a resolver is listed twice');

  const baseDomain = (explicit.baseDomain ?? env.TENANTRY_BASE_DOMAIN ?? 'localhost').toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(baseDomain)) {
    throw new OptionsError('TENANTRY_BASE_DOMAIN', `not a host name: ${JSON.stringify(baseDomain)}`);
  }

  const jwtIn = explicit.jwt;
  const privateKey = jwtIn?.privateKey ?? env.TENANTRY_JWT_PRIVATE_KEY;
  const publicKey = jwtIn?.publicKey ?? env.TENANTRY_JWT_PUBLIC_KEY;
  let secret = jwtIn?.secret ?? env.TENANTRY_JWT_SECRET;
  if (!privateKey && !publicKey && !secret) {
    if (production) throw new OptionsError('TENANTRY_JWT_SECRET', 'required in production (or TENANTRY_JWT_PRIVATE_KEY)');
    secret = randomBytes(32).toString('base64url');
    generated.push('TENANTRY_JWT_SECRET');
  }
  if (secret && Buffer.byteLength(secret) < 32) throw new OptionsError('TENANTRY_JWT_SECRET', 'must be at least 32 bytes');

  const rolePassword = env.TENANTRY_DB_ROLE_PASSWORD;
  if (rolePassword !== undefined && !/^[A-Za-z0-9_\-.~]{12,200}$/.test(rolePassword)) {
    throw new OptionsError('TENANTRY_DB_ROLE_PASSWORD', 'must be 12 to 200 URL-safe characters');
  }
  const rolePasswords = explicit.rolePasswords ?? (rolePassword ? { app: rolePassword, platform: rolePassword } : undefined);

  try {
    new URL(explicit.databaseUrl);
  } catch {
    throw new OptionsError('DATABASE_URL', 'not a valid postgres:// URL');
  }
  const runtimeUrl = explicit.runtimeUrl ?? (env.TENANTRY_RUNTIME_URL || undefined);
  if (runtimeUrl !== undefined) {
    try {
      new URL(runtimeUrl);
    } catch {
      throw new OptionsError('TENANTRY_RUNTIME_URL', 'not a valid postgres:// URL');
    }
  }
  const pooler = explicit.pooler ?? (env.TENANTRY_POOLER || undefined);
  if (pooler !== undefined && pooler !== 'transaction') {
    throw new OptionsError('TENANTRY_POOLER', `expected "transaction" (or unset), got ${JSON.stringify(pooler)}`);
  }

  return Object.freeze({
    databaseUrl: explicit.databaseUrl,
    migrationsDir: explicit.migrationsDir,
    runtimeUrl,
    pooler,
    statementTimeoutMs: explicit.statementTimeoutMs ?? int(env, 'TENANTRY_STATEMENT_TIMEOUT_MS', 5_000, 0, 3_600_000),
    baseDomain,
    resolvers: Object.freeze([...resolvers]) as readonly ResolverName[],
    jwt: Object.freeze({
      secret,
      privateKey,
      publicKey,
      issuer: jwtIn?.issuer ?? env.TENANTRY_JWT_ISSUER ?? 'tenantry',
      audience: jwtIn?.audience ?? env.TENANTRY_JWT_AUDIENCE ?? 'tenantry-api',
      ttlSeconds: jwtIn?.ttlSeconds ?? int(env, 'TENANTRY_JWT_TTL', 3600, 60, 86_400),
    }),
    rolePasswords: rolePasswords && Object.freeze(rolePasswords),
    poolMax: explicit.poolMax ?? int(env, 'TENANTRY_POOL_MAX', 10, 1, 1000),
    catalogPoolMax: explicit.catalogPoolMax ?? int(env, 'TENANTRY_CATALOG_POOL_MAX', 4, 1, 100),
    tenantDatabases: Object.freeze(explicit.tenantDatabases ?? {
      maxConnections: int(env, 'TENANTRY_DATABASE_CONNECTIONS_MAX', 40, 1, 10_000),
      poolSize: int(env, 'TENANTRY_DATABASE_POOL_SIZE', 2, 1, 100),
      acquireTimeoutMs: int(env, 'TENANTRY_DATABASE_ACQUIRE_TIMEOUT_MS', 250, 0, 60_000),
      idleSeconds: int(env, 'TENANTRY_DATABASE_IDLE_SECONDS', 60, 1, 86_400),
    }),
    catalogCache: Object.freeze(explicit.catalogCache ?? {
      max: 10_000,
      ttlMs: int(env, 'TENANTRY_CATALOG_CACHE_TTL_MS', 30_000, 0, 3_600_000),
    }),
    catalogTimeoutMs: explicit.catalogTimeoutMs ?? int(env, 'TENANTRY_CATALOG_TIMEOUT_MS', 2_000, 50, 60_000),
    catalogListen: explicit.catalogListen ?? bool(env, 'TENANTRY_CATALOG_LISTEN', true),
    requestTimeoutMs: explicit.requestTimeoutMs ?? int(env, 'TENANTRY_REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000),
    shutdownTimeoutMs: explicit.shutdownTimeoutMs ?? int(env, 'TENANTRY_SHUTDOWN_TIMEOUT_MS', 10_000, 0, 3_600_000),
    generated: Object.freeze([...new Set([...(explicit.generated ?? []), ...generated])]),
  });
}
