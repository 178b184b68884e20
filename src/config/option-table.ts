import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { checkPlanInputs, type PlanInput } from '../limits/plans.js';
import { boolean, integer, invalid, postgresUrl, text, type OptionSpec } from './option-spec.js';

export const resolverNames = ['subdomain', 'domain', 'header', 'jwt', 'apikey'] as const;
export type ResolverName = (typeof resolverNames)[number];

/**
 * Every option, flat: nested groups of TenantryOptions (`jwt`, `tenantDatabases`, `catalogCache`)
 * have one entry per field, named by its path. The table below must have an entry for each key.
 */
export interface Resolved {
  databaseUrl: string;
  migrationsDir: string;
  runtimeUrl: string | undefined;
  pooler: 'transaction' | undefined;
  statementTimeoutMs: number;
  baseDomain: string;
  resolvers: readonly ResolverName[];
  'jwt.privateKey': string | undefined;
  'jwt.publicKey': string | undefined;
  'jwt.secret': string | undefined;
  'jwt.issuer': string;
  'jwt.audience': string;
  'jwt.ttlSeconds': number;
  rolePasswords: { readonly app: string; readonly platform: string } | undefined;
  poolMax: number;
  catalogPoolMax: number;
  'tenantDatabases.maxConnections': number;
  'tenantDatabases.poolSize': number;
  'tenantDatabases.acquireTimeoutMs': number;
  'tenantDatabases.idleSeconds': number;
  'catalogCache.max': number;
  'catalogCache.ttlMs': number;
  catalogTimeoutMs: number;
  catalogListen: boolean;
  requestTimeoutMs: number;
  shutdownTimeoutMs: number;
  plans: Readonly<Record<string, PlanInput>>;
  redisUrl: string | undefined;
  redisPrefix: string;
  trustProxy: boolean | number | string;
  maxConnectionsPerClient: number;
  leaseTtlMs: number;
  dbQueueTimeoutMs: number;
  'cache.maxBytes': number;
  'cache.tenantMaxBytes': number;
  'login.accountFailures': number;
  'login.addressFailures': number;
  'login.windowSeconds': number;
  'login.maxBlockSeconds': number;
  passwordHashConcurrency: number;
  metricsTenantLabels: number;
  'usage.flushMs': number;
  'usage.storageSampleMs': number;
}

/** The path of an option in TenantryOptions (`poolMax`, `jwt.secret`, …). */
export type OptionKey = keyof Resolved;

const HOST_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const ROLE_PASSWORD = /^[A-Za-z0-9_\-.~]{12,200}$/;

/**
 * The configuration: every option of TenantryOptions with its environment variable, default,
 * parser and check, and what it means. `loadOptions` resolves them in one loop, in this order (a
 * computed default sees the options above it); the Configuration table of README.md is generated
 * from it (`npm run docs:options`) and test/config.test.ts keeps the two equal.
 */
export const optionTable: { readonly [K in OptionKey]: OptionSpec<Resolved[K], Resolved> } = {
  databaseUrl: {
    env: 'DATABASE_URL', default: { compute: () => invalid('required') }, defaultDoc: 'embedded server', ...postgresUrl,
    doc: 'admin (owner-capable) URL of PostgreSQL 15+; runtime connections use the roles tenantry creates',
  },
  migrationsDir: {
    env: 'TENANTRY_MIGRATIONS_DIR', default: { compute: () => invalid('required') }, defaultDoc: '`app/migrations`', ...text,
    doc: 'folder of the tenant migrations (`NNNN_name.sql`), applied to every placement; the variable is read by the `tenantry` command (the server uses the app\'s folder)',
  },
  runtimeUrl: {
    env: 'TENANTRY_RUNTIME_URL', default: undefined, defaultDoc: '`DATABASE_URL`', ...postgresUrl,
    doc: 'where runtime connections (tenant data, catalog) go: host, port and optionally database of a pooler such as PgBouncer; tenantry\'s runtime roles and passwords are used on it (list them in PgBouncer\'s `auth_file`). Admin work, `LISTEN` and session locks stay on `DATABASE_URL`',
  },
  pooler: {
    env: 'TENANTRY_POOLER', default: undefined, defaultDoc: '—',
    parse: (raw) => (raw === 'transaction' ? raw : invalid(`expected "transaction" (or unset), got ${JSON.stringify(raw)}`)),
    check: (v) => (v === undefined || v === 'transaction' ? v : invalid(`expected "transaction" (or unset), got ${JSON.stringify(v)}`)),
    doc: '`transaction`: the runtime URL is a pooler in transaction mode (PgBouncer 1.18+): no named prepared statements (reads stay one round trip and one Sync with the unnamed statement), no session state on runtime connections (context, role, search_path and statement timeout are all transaction-local anyway)',
  },
  statementTimeoutMs: {
    env: 'TENANTRY_STATEMENT_TIMEOUT_MS', default: 0, defaultDoc: '`0` (the plans decide)', ...integer(0, 3_600_000),
    doc: 'the platform\'s cap on statement time: a statement running longer is cancelled by the server and answered 503 `query_timeout`. Each tenant\'s plan has a `statement_timeout_ms` of its own (free 2000, pro 5000, business 10000, enterprise 30000, or the tenant\'s override); the smaller of the two applies. Set transaction-locally with the tenant context (`0`: no cap)',
  },
  baseDomain: {
    env: 'TENANTRY_BASE_DOMAIN', default: 'localhost', ...text,
    check: (v) => {
      const domain = v.toLowerCase();
      return HOST_NAME.test(domain) ? domain : invalid(`not a host name: ${JSON.stringify(domain)}`);
    },
    doc: 'tenants are `<slug>.<base domain>`',
  },
  resolvers: {
    env: 'TENANTRY_RESOLVERS', default: resolverNames,
    parse: (raw) => raw.split(',').map((s) => s.trim()).filter(Boolean) as ResolverName[],
    check: (list) => {
      for (const r of list) {
        if (!(resolverNames as readonly string[]).includes(r)) invalid(`unknown resolver "${r}" (known: ${resolverNames.join(', ')})`);
      }
      if (new Set(list).size !== list.length) invalid('a resolver is listed twice');
      return Object.freeze([...list]);
    },
    doc: 'enabled identification strategies, in order',
  },
  'jwt.privateKey': {
    env: 'TENANTRY_JWT_PRIVATE_KEY', default: undefined, defaultDoc: '—', ...text,
    doc: 'PEM private key (Ed25519, P-256 or RSA) that signs tokens; with the public key it replaces the secret, and the algorithm is pinned to the key',
  },
  'jwt.publicKey': {
    env: 'TENANTRY_JWT_PUBLIC_KEY', default: undefined, defaultDoc: '—', ...text,
    doc: 'PEM public key that verifies tokens (alone: this process verifies but cannot sign)',
  },
  'jwt.secret': {
    env: 'TENANTRY_JWT_SECRET',
    default: {
      compute: ({ resolved, production, generated }) => {
        if (resolved['jwt.privateKey'] || resolved['jwt.publicKey']) return undefined;
        if (production) invalid('required in production (or TENANTRY_JWT_PRIVATE_KEY)');
        generated('TENANTRY_JWT_SECRET');
        return randomBytes(32).toString('base64url');
      },
    },
    defaultDoc: 'generated in development',
    ...text,
    check: (v) => (v !== undefined && Buffer.byteLength(v) < 32 ? invalid('must be at least 32 bytes') : v),
    doc: 'HS256 secret (≥ 32 bytes); required when `NODE_ENV=production` unless a key pair is set',
  },
  'jwt.issuer': { env: 'TENANTRY_JWT_ISSUER', default: 'tenantry', ...text, doc: 'issuer of tokens, checked on every token' },
  'jwt.audience': { env: 'TENANTRY_JWT_AUDIENCE', default: 'tenantry-api', ...text, doc: 'audience of tokens, checked on every token' },
  'jwt.ttlSeconds': { env: 'TENANTRY_JWT_TTL', default: 3600, ...integer(60, 86_400), doc: 'access token lifetime, seconds' },
  rolePasswords: {
    env: 'TENANTRY_DB_ROLE_PASSWORD', default: undefined, defaultDoc: 'generated once, kept in the database',
    parse: (raw) => ({ app: raw, platform: raw }),
    check: (v) => {
      if (v && !(ROLE_PASSWORD.test(v.app) && ROLE_PASSWORD.test(v.platform))) invalid('must be 12 to 200 URL-safe characters');
      return v && Object.freeze({ app: v.app, platform: v.platform });
    },
    doc: 'password of the runtime login roles',
  },
  poolMax: { env: 'TENANTRY_POOL_MAX', default: 10, ...integer(1, 1000), doc: 'connections of the shared runtime pool' },
  catalogPoolMax: { env: 'TENANTRY_CATALOG_POOL_MAX', default: 4, ...integer(1, 100), doc: 'connections of the catalog pool' },
  'tenantDatabases.maxConnections': {
    env: 'TENANTRY_DATABASE_CONNECTIONS_MAX', default: 40, ...integer(1, 10_000),
    doc: 'server connections all database-tenant pools of a shard may hold together',
  },
  'tenantDatabases.poolSize': { env: 'TENANTRY_DATABASE_POOL_SIZE', default: 2, ...integer(1, 100), doc: 'connections per database-tenant pool' },
  'tenantDatabases.acquireTimeoutMs': {
    env: 'TENANTRY_DATABASE_ACQUIRE_TIMEOUT_MS', default: 250, ...integer(0, 60_000),
    doc: 'wait for a connection before 503 `database_busy`',
  },
  'tenantDatabases.idleSeconds': {
    env: 'TENANTRY_DATABASE_IDLE_SECONDS', default: 60, ...integer(1, 86_400),
    doc: 'close a database-tenant pool after this idle time',
  },
  'catalogCache.max': { default: 10_000, ...integer(1, 10_000_000), doc: 'tenants the catalog cache of a process keeps' },
  'catalogCache.ttlMs': {
    env: 'TENANTRY_CATALOG_CACHE_TTL_MS', default: 30_000, ...integer(0, 3_600_000),
    doc: 'how long a resolved tenant is cached in the process. Changes to a tenant or its domains (suspend, resume, a new domain) reach every process at once through `LISTEN tenantry_catalog`; the TTL only bounds staleness when that channel is down (e.g. behind a pooler in transaction mode)',
  },
  catalogTimeoutMs: {
    env: 'TENANTRY_CATALOG_TIMEOUT_MS', default: 2_000, ...integer(50, 60_000),
    doc: 'a catalog read unanswered after this long is an outage: 503 `catalog_unavailable` instead of a hung request',
  },
  catalogListen: {
    env: 'TENANTRY_CATALOG_LISTEN', default: true, ...boolean,
    doc: '`0`: no catalog notifications are followed, the cache TTL bounds how long a change goes unseen, and token revocations are reloaded every 5 s. `LISTEN` always uses the direct `DATABASE_URL`, never `TENANTRY_RUNTIME_URL`, so it works behind PgBouncer too; turn it off only where no direct session can be held',
  },
  requestTimeoutMs: {
    env: 'TENANTRY_REQUEST_TIMEOUT_MS', default: 30_000, ...integer(100, 3_600_000),
    doc: 'HTTP: a request\'s headers and its body must have arrived this long after it began, or it is answered 408 `request_timeout` and its connection closed (a body trickled a byte at a time is cut off too)',
  },
  shutdownTimeoutMs: {
    env: 'TENANTRY_SHUTDOWN_TIMEOUT_MS', default: 10_000, ...integer(0, 3_600_000),
    doc: 'HTTP: on SIGTERM or SIGINT, how long requests in flight may take to finish before their connections are closed',
  },
  plans: {
    env: 'TENANTRY_PLANS', default: {}, defaultDoc: 'built-in `free`, `pro`, `business`, `enterprise`',
    parse: (raw) => {
      try {
        return JSON.parse(raw) as Record<string, PlanInput>;
      } catch {
        return invalid('not valid JSON');
      }
    },
    check: (v) => {
      try {
        return checkPlanInputs(v);
      } catch (err) {
        return invalid((err as Error).message);
      }
    },
    doc: 'plans added or changed, JSON: `{"<plan>": {"requests_per_second": 50, "burst": 100, "concurrent_requests": 10, "db_connections": 2, "statement_timeout_ms": 3000, "quotas": {"users": 10}}}`; each field is merged over the built-in plan of that name (a new plan starts from `free`). See docs/limits.md',
  },
  redisUrl: {
    env: 'REDIS_URL', default: undefined, defaultDoc: '— (in-process)',
    parse: (raw) => raw,
    check: (v) => {
      if (v === undefined) return v;
      let url: URL;
      try {
        url = new URL(v);
      } catch {
        return invalid('not a valid redis:// URL');
      }
      return url.protocol === 'redis:' || url.protocol === 'rediss:' ? v : invalid('expected a redis:// or rediss:// URL');
    },
    doc: 'Redis shared by every instance: rate buckets, concurrency leases, login throttles and the tenant cache (with invalidation through pub/sub). Unset: all of it in-process, for one instance. Unreachable: limits fall back to in-process enforcement and the cache to the database; `/readyz` and the log say so, no request fails because of it',
  },
  redisPrefix: {
    env: 'TENANTRY_REDIS_PREFIX', default: 'tenantry:', ...text,
    check: (v) => (/^[A-Za-z0-9:_.-]{1,64}$/.test(v) ? v : invalid('1 to 64 characters of A-Z a-z 0-9 : _ . -')),
    doc: 'prefix of every Redis key and channel (keys are hash-tagged per tenant, `<prefix>{t:<tenant id>}:…`, so they work on Redis Cluster)',
  },
  trustProxy: {
    env: 'TENANTRY_TRUST_PROXY', default: false,
    parse: (raw) => {
      if (/^(1|true|on|yes)$/i.test(raw)) return true;
      if (/^(0|false|off|no)$/i.test(raw)) return false;
      if (/^\d+$/.test(raw)) return Number(raw);
      return raw.split(',').map((s) => s.trim()).filter(Boolean).join(',');
    },
    doc: 'whose `X-Forwarded-For` is believed for the client address of sign-in throttling (`request.ip`): `0` nobody (the socket\'s address), `1` any proxy, a number of hops (the first n addresses, from the socket\'s on, are proxies), or a comma-separated list of proxy addresses/CIDRs. The connection cap always counts the socket\'s address',
  },
  maxConnectionsPerClient: {
    env: 'TENANTRY_MAX_CONNECTIONS_PER_CLIENT', default: 256, ...integer(1, 1_000_000),
    doc: 'open connections one client address (the socket\'s; an IPv6 address counts as its /64) may hold; a further one is answered 429 `too_many_connections` (`Retry-After: 1`) and closed before any request on it is served. Behind a proxy the proxy is the client: size it for the proxy\'s connections',
  },
  leaseTtlMs: {
    env: 'TENANTRY_LEASE_TTL_MS', default: 30_000, ...integer(500, 3_600_000),
    doc: 'a concurrency lease in Redis lives this long unless renewed (every third of it while its request runs): what an instance that died holds is freed after this',
  },
  dbQueueTimeoutMs: {
    env: 'TENANTRY_DB_QUEUE_TIMEOUT_MS', default: 5_000, ...integer(0, 600_000),
    doc: 'a transaction waits this long for a connection within its tenant\'s share (`db_connections`) of the shared pool before 503 `database_busy`',
  },
  'cache.maxBytes': {
    env: 'TENANTRY_CACHE_MAX_BYTES', default: 64 * 1024 * 1024, ...integer(0, 2 ** 40),
    doc: 'memory of the in-process tenant cache, bytes (`0`: no in-process layer)',
  },
  'cache.tenantMaxBytes': {
    env: 'TENANTRY_CACHE_TENANT_MAX_BYTES',
    default: { compute: ({ resolved }) => Math.floor((resolved['cache.maxBytes'] ?? 0) / 16) },
    defaultDoc: 'a 16th of `TENANTRY_CACHE_MAX_BYTES`', ...integer(0, 2 ** 40),
    doc: 'the most of the in-process cache one tenant may fill: a tenant that fills its share evicts its own entries, never another\'s',
  },
  'login.accountFailures': {
    env: 'TENANTRY_LOGIN_ACCOUNT_FAILURES', default: 5, ...integer(1, 1_000_000),
    doc: 'failed sign-ins of one account (tenant and email) before `POST /auth/token` answers 429 `too_many_attempts` without checking the password: the block is 1 s, and each further failure after it doubles it (2 s, 4 s, …). Anyone can block an account this way, for at most `TENANTRY_LOGIN_MAX_BLOCK_SECONDS` past their last failure (docs/login-throttling.md)',
  },
  'login.addressFailures': {
    env: 'TENANTRY_LOGIN_ADDRESS_FAILURES', default: 50, ...integer(1, 1_000_000),
    doc: 'failed sign-ins from one client address (any tenant, any account; an IPv6 address counts as its /64) before it is refused the same way; a success does not clear them',
  },
  'login.windowSeconds': {
    env: 'TENANTRY_LOGIN_WINDOW_SECONDS', default: 900, ...integer(1, 86_400),
    doc: 'failures older than this are forgotten; a success forgets the account\'s failures',
  },
  'login.maxBlockSeconds': {
    env: 'TENANTRY_LOGIN_MAX_BLOCK_SECONDS', default: 900, ...integer(1, 86_400),
    doc: 'the longest block of an account or address, and so the longest wait a throttled sign-in is told (`Retry-After`)',
  },
  passwordHashConcurrency: {
    env: 'TENANTRY_PASSWORD_HASH_CONCURRENCY', default: { compute: () => Math.max(1, Math.min(4, availableParallelism())) },
    defaultDoc: 'cores, at most 4', ...integer(1, 256),
    doc: 'password hashes (scrypt) computed at once; waiting sign-ins are served tenant by tenant in turn, so a flood at one tenant does not stall another\'s. A tenant with 32 times this many waiting, or one waiting over 10 s, is answered 429 `too_many_attempts`',
  },
  metricsTenantLabels: {
    env: 'TENANTRY_METRICS_TENANT_LABELS', default: 100, ...integer(1, 100_000),
    doc: 'metrics (`GET /metrics`): at most this many tenants have series of their own, the most active lately (a decaying request count, re-ranked every few seconds); all others are counted under `tenant="other"`, so totals stay exact. See docs/metrics.md',
  },
  'usage.flushMs': {
    env: 'TENANTRY_USAGE_FLUSH_MS', default: 5_000, ...integer(100, 3_600_000),
    doc: 'usage counters (api_calls, db_time_ms, egress_bytes, storage_bytes per tenant and hour) are written to the catalog at least this often, idempotently, and on shutdown; a process killed with SIGKILL loses at most this much of them (docs/usage.md)',
  },
  'usage.storageSampleMs': {
    env: 'TENANTRY_USAGE_STORAGE_SAMPLE_MS', default: 3_600_000, ...integer(1_000, 86_400_000),
    doc: 'how often the storage of each tenant that had requests since the last pass is measured for usage (`storage_bytes`: its rows, schema or database, by placement)',
  },
};
