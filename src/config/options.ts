import type { TokenOptions } from '../auth/token-service.js';
import type { PlanInput } from '../limits/plans.js';
import { Invalid, type DefaultContext, type OptionSpec } from './option-spec.js';
import { optionTable, type OptionKey, type Resolved, type ResolverName } from './option-table.js';

export { optionTable, resolverNames, type OptionKey, type ResolverName } from './option-table.js';

export interface TenantryOptions {
  /** Admin connection URL: creates roles and schemas and runs migrations. */
  readonly databaseUrl: string;
  /** Folder of the tenant migration files (`NNNN_name.sql`), applied to every placement. */
  readonly migrationsDir: string;
  /**
   * Where runtime connections (tenant data, catalog) go: host, port and (optionally) database of a
   * pooler such as PgBouncer; tenantry's runtime roles and passwords are used on it, and without a
   * database in it the one of `databaseUrl` is used. Unset: `databaseUrl`.
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
  /**
   * The platform's cap on statement time (503 query_timeout), milliseconds; 0 = no cap. A tenant's
   * plan has its own `statement_timeout_ms`; the smaller applies.
   */
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
   * HTTP: a request's headers and body must have arrived this many milliseconds after it began,
   * or it is answered 408 request_timeout and its connection closed (a client that opens
   * connections and never finishes a request, or trickles its body, cannot hold them).
   */
  readonly requestTimeoutMs: number;
  /**
   * HTTP: on SIGTERM or SIGINT the server stops taking requests and gives those in flight this
   * many milliseconds to finish; connections still open then are closed and shutdown goes on.
   */
  readonly shutdownTimeoutMs: number;
  /** Plans added or changed over the built-in ones (see src/limits/plans.ts). */
  readonly plans: Readonly<Record<string, PlanInput>>;
  /**
   * Redis shared by every instance: rate buckets, concurrency leases, login throttles, the cache.
   * Unset: all of it in-process, for one instance.
   */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key and channel of this platform. */
  readonly redisPrefix: string;
  /** Which proxies' `X-Forwarded-For` is believed for `request.ip` (Fastify's `trustProxy`): false, true, a hop count, or addresses/CIDRs. */
  readonly trustProxy: boolean | number | string;
  /** Open connections one client address may hold; more are answered 429 and closed. */
  readonly maxConnectionsPerClient: number;
  /** A concurrency lease not renewed for this long is dropped (its instance died), milliseconds. */
  readonly leaseTtlMs: number;
  /** A transaction waits this long for its tenant's share of the pool before 503 database_busy, milliseconds. */
  readonly dbQueueTimeoutMs: number;
  /** The tenant cache's in-process memory, in all and per tenant, bytes. */
  readonly cache: { readonly maxBytes: number; readonly tenantMaxBytes: number };
  /** Sign-in throttling (see src/auth/login-throttle.ts). */
  readonly login: {
    readonly accountFailures: number;
    readonly addressFailures: number;
    readonly windowSeconds: number;
    readonly maxBlockSeconds: number;
  };
  /** Password hashes computed at once (each takes ~32 MiB and a core for tens of ms). */
  readonly passwordHashConcurrency: number;
  /**
   * Metrics: at most this many tenants get a `tenant` label value of their own (the most active
   * lately); every other tenant is counted under `tenant="other"`. See docs/metrics.md.
   */
  readonly metricsTenantLabels: number;
  /** Usage metering (docs/usage.md): how often counters are written, and storage sampled, milliseconds. */
  readonly usage: { readonly flushMs: number; readonly storageSampleMs: number };
  /** Secrets were generated because none was configured (development only). */
  readonly generated: readonly string[];
}

/** What `loadOptions` and `Tenantry.start` accept: any option given explicitly, and the two required ones. */
export type TenantryOptionsInput = Partial<TenantryOptions> & { databaseUrl: string; migrationsDir: string };

export class OptionsError extends Error {
  constructor(option: string, problem: string) {
    super(`invalid option ${option}: ${problem}`);
    this.name = 'OptionsError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** The value of a path (`jwt.secret`) in a nested object, or undefined. */
function at(input: object, key: string): unknown {
  let value: unknown = input;
  for (const part of key.split('.')) value = value == null ? undefined : (value as Record<string, unknown>)[part];
  return value;
}

/**
 * Resolves one option: explicit value → environment (an empty variable is unset) → default, then
 * its check. A bad value is an OptionsError naming the variable (or the option, without one).
 */
function resolveOne<K extends OptionKey>(key: K, explicit: object, env: Env, ctx: DefaultContext<Resolved>): Resolved[K] {
  const spec = optionTable[key] as OptionSpec<Resolved[K], Resolved>;
  try {
    let value = at(explicit, key) as Resolved[K] | undefined | null;
    if (value == null && spec.env) {
      const raw = env[spec.env];
      if (raw !== undefined && raw !== '') value = spec.parse!(raw);
    }
    if (value == null) {
      const d = spec.default;
      const computed = d !== null && typeof d === 'object' && typeof (d as { compute?: unknown }).compute === 'function';
      value = computed ? (d as { compute: (c: DefaultContext<Resolved>) => Resolved[K] }).compute(ctx) : d as Resolved[K];
    }
    return spec.check ? spec.check(value as Resolved[K]) : value as Resolved[K];
  } catch (err) {
    if (err instanceof Invalid) throw new OptionsError(spec.env ?? key, err.message);
    throw err;
  }
}

/**
 * One option on its own, as `loadOptions` would resolve it (e.g. the CLI's role password, without
 * requiring the secrets a server needs).
 */
export function resolveOption<K extends OptionKey>(key: K, explicit: object = {}, env: Env = process.env): Resolved[K] {
  return resolveOne(key, explicit, env, { resolved: {}, production: env.NODE_ENV === 'production', generated: () => {} });
}

/**
 * One options object, validated once and frozen: every row of `optionTable`, in one loop.
 * Resolution order: explicit value → environment → default. In production (NODE_ENV=production)
 * a missing secret is a start-up error; in development it is generated and reported in
 * `generated` so the caller can print it.
 */
export function loadOptions(explicit: TenantryOptionsInput, env: Env = process.env): TenantryOptions {
  const generated: string[] = [];
  const r: Partial<Resolved> = {};
  const ctx: DefaultContext<Resolved> = { resolved: r, production: env.NODE_ENV === 'production', generated: (name) => generated.push(name) };
  for (const key of Object.keys(optionTable) as OptionKey[]) {
    (r as Record<OptionKey, unknown>)[key] = resolveOne(key, explicit, env, ctx);
  }
  const o = r as Resolved;
  return Object.freeze({
    databaseUrl: o.databaseUrl,
    migrationsDir: o.migrationsDir,
    runtimeUrl: o.runtimeUrl,
    pooler: o.pooler,
    statementTimeoutMs: o.statementTimeoutMs,
    baseDomain: o.baseDomain,
    resolvers: o.resolvers,
    jwt: Object.freeze({
      secret: o['jwt.secret'], privateKey: o['jwt.privateKey'], publicKey: o['jwt.publicKey'],
      issuer: o['jwt.issuer'], audience: o['jwt.audience'], ttlSeconds: o['jwt.ttlSeconds'],
    }),
    rolePasswords: o.rolePasswords,
    poolMax: o.poolMax,
    catalogPoolMax: o.catalogPoolMax,
    tenantDatabases: Object.freeze({
      maxConnections: o['tenantDatabases.maxConnections'], poolSize: o['tenantDatabases.poolSize'],
      acquireTimeoutMs: o['tenantDatabases.acquireTimeoutMs'], idleSeconds: o['tenantDatabases.idleSeconds'],
    }),
    catalogCache: Object.freeze({ max: o['catalogCache.max'], ttlMs: o['catalogCache.ttlMs'] }),
    catalogTimeoutMs: o.catalogTimeoutMs,
    catalogListen: o.catalogListen,
    requestTimeoutMs: o.requestTimeoutMs,
    shutdownTimeoutMs: o.shutdownTimeoutMs,
    plans: o.plans,
    redisUrl: o.redisUrl,
    redisPrefix: o.redisPrefix,
    trustProxy: o.trustProxy,
    maxConnectionsPerClient: o.maxConnectionsPerClient,
    leaseTtlMs: o.leaseTtlMs,
    dbQueueTimeoutMs: o.dbQueueTimeoutMs,
    cache: Object.freeze({ maxBytes: o['cache.maxBytes'], tenantMaxBytes: o['cache.tenantMaxBytes'] }),
    login: Object.freeze({
      accountFailures: o['login.accountFailures'], addressFailures: o['login.addressFailures'],
      windowSeconds: o['login.windowSeconds'], maxBlockSeconds: o['login.maxBlockSeconds'],
    }),
    passwordHashConcurrency: o.passwordHashConcurrency,
    metricsTenantLabels: o.metricsTenantLabels,
    usage: Object.freeze({ flushMs: o['usage.flushMs'], storageSampleMs: o['usage.storageSampleMs'] }),
    generated: Object.freeze([...new Set([...(explicit.generated ?? []), ...generated])]),
  });
}
