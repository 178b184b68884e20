import { ApiKeys } from './auth/api-keys.js';
import { Credentials } from './auth/credentials.js';
import { CredentialRevocations } from './auth/revocations.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { PasswordHasher } from './auth/password-hasher.js';
import { TokenService } from './auth/token-service.js';
import { AuditLog } from './audit-log/audit-log.js';
import { TenantAuditLog } from './audit-log/tenant-log.js';
import { AuditAnchors } from './audit-log/anchors.js';
import { followCatalogChannel } from './catalog/catalog-channel.js';
import { TenantCatalog } from './catalog/tenant-catalog.js';
import type { Tenant } from './catalog/types.js';
import { loadOptions, type ResolverName, type TenantryOptions, type TenantryOptionsInput } from './config/options.js';
import { onPlatformScope } from './context/tenant-context.js';
import { bootstrapDatabase, preparedDatabase, roles, schemas, type RolePasswords } from './data/bootstrap.js';
import { DataPlane } from './data/data-plane.js';
import { PooledPlacement } from './data/pooled/pooled-placement.js';
import { TenantLifecycle, type CreateTenantOptions } from './lifecycle/tenant-lifecycle.js';
import { createPool, withCredentials, withEndpoint, type PoolStats, type Sql } from './data/driver/index.js';
import { applyMigrations, type TargetResult } from './migrate/apply-migrations.js';
import { loadMigrations, type MigrationFile } from './migrate/migration-files.js';
import { migrateCatalog } from './migrate/catalog-migrations.js';
import { migrateAll, type MigrateOptions, type MigrationRun } from './migrate/orchestrator.js';
import { auditAll, type AuditReport } from './migrate/check.js';
import { tenantMigrator } from './migrate/tenant-migrator.js';
import { SchemaPlacement } from './data/schema/schema-placement.js';
import { DatabasePlacement } from './data/database/database-placement.js';
import { ApiKeyStrategy } from './resolve/api-key-strategy.js';
import { CustomDomainStrategy } from './resolve/custom-domain-strategy.js';
import { HeaderStrategy } from './resolve/header-strategy.js';
import { JwtStrategy } from './resolve/jwt-strategy.js';
import type { TenantStrategy } from './resolve/strategy.js';
import { SubdomainStrategy } from './resolve/subdomain-strategy.js';
import { Plans, type PlanInput } from './limits/plans.js';
import { Admission } from './limits/admission.js';
import { Quotas } from './limits/quotas.js';
import { RedisLink, type RedisState } from './redis/redis-link.js';
import { TenantCache } from './cache/tenant-cache.js';
import { Usage } from './usage/usage.js';

/** Without LISTEN, how often each process reloads token revocations. */
const REVOCATION_POLL_MS = 5_000;


/** The runtime URL (a pooler's, or the direct one) with a runtime role's credentials. */
function runtimeUrl(options: TenantryOptions, role: string, password: string): string {
  const url = options.runtimeUrl ? withEndpoint(options.databaseUrl, options.runtimeUrl) : options.databaseUrl;
  return withCredentials(url, role, password);
}

/** What `Tenantry.start()` takes: the options, and which preparation steps to run. */
export interface StartOptions extends TenantryOptionsInput {
  /**
   * Create or re-assert roles, schemas and privileges (default true). false: the database must
   * have been prepared already (by a server start or `tenantry migrate`); the runtime roles'
   * passwords are the configured ones or those the first bootstrap kept. Nothing is created.
   */
  readonly bootstrap?: boolean;
  /**
   * Apply the catalog's and the pooled schema's pending migrations (default true). With
   * `bootstrap: false` too, start() runs no DDL at all: a role that cannot create anything can
   * start the toolkit on a prepared database (read-only tools such as `tenantry tenants list`).
   */
  readonly migrate?: boolean;
  /**
   * Plans of the application (e.g. the quotas it enforces), merged over the built-in plans;
   * `TENANTRY_PLANS` (the operator's) is merged over these.
   */
  readonly appPlans?: Readonly<Record<string, PlanInput>>;
  /** Where the toolkit reports what it does on its own (Redis lost and back, …); default: the console. */
  readonly log?: TenantryLog;
  /**
   * Append `tx.audit` entries to the tenant audit logs (default true). false drops them: for
   * measuring what they cost (npm run bench), not for production — the platform log is kept.
   */
  readonly audit?: boolean;
  /** Count usage (default true). false: nothing is counted or flushed (for measuring its cost). */
  readonly metering?: boolean;
}

/** The connections of a started toolkit right now (`Tenantry.poolStats()`), for metrics. */
export interface TenantryPoolStats {
  /** The shared runtime pool (pooled and schema tenants): open, idle, callers waiting. */
  readonly app: PoolStats;
  /** The catalog pool. */
  readonly catalog: PoolStats;
  /** Database-per-tenant pools: the connection budget they draw from. */
  readonly tenantDatabases: {
    /** Connections the open pools hold a claim on (open pools × their size). */
    readonly reserved: number;
    /** The budget (TENANTRY_DATABASE_CONNECTIONS_MAX). */
    readonly max: number;
    readonly openPools: number;
  };
}

/** What the toolkit logs through: pino's and console's shape. */
export interface TenantryLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const consoleLog: TenantryLog = {
  info: (obj, msg) => console.log(msg, obj),
  warn: (obj, msg) => console.warn(msg, obj),
};

export { planIsolation, type CreateTenantOptions } from './lifecycle/tenant-lifecycle.js';

/**
 * The toolkit, wired: catalog, identification chain, token service and data plane on one set of
 * pools. Create it once per process with `Tenantry.start()`; close it on shutdown.
 */
export class Tenantry {
  readonly options: TenantryOptions;
  /** Tenants and their domains (cached; kept true by the catalog's change events). */
  readonly catalog: TenantCatalog;
  readonly db: DataPlane;
  readonly tokens: TokenService;
  /** Logins and revocations of tenant users' credentials, race-free (see src/auth/revocations.ts). */
  readonly credentials: Credentials;
  readonly revocations: CredentialRevocations;
  /** The current tenant's API keys. */
  readonly apiKeys: ApiKeys;
  /** The platform audit log (catalog): platform scope entries, tenant lifecycle, API keys. */
  readonly auditLog: AuditLog;
  /** The newest head of each tenant's audit chain, written to the catalog every few seconds (see AuditAnchors). */
  readonly auditAnchors: AuditAnchors;
  /** The current tenant's audit trail (its own log merged with the platform's entries about it) and activity. */
  readonly audit: TenantAuditLog;
  readonly strategies: readonly TenantStrategy[];
  /** Plans and each tenant's effective limits. */
  readonly plans: Plans;
  /** Rate and concurrency admission of tenant requests (hand it to the tenancy plugin). */
  readonly admission: Admission;
  /** Quotas of the current tenant (users, rows, storage), checked in the transaction that writes. */
  readonly quotas: Quotas;
  /** The Redis every instance shares (REDIS_URL), or undefined: in-process state. */
  readonly redis: RedisLink | undefined;
  /** The current tenant's cache: in-process, and shared by every instance through Redis when it is configured. */
  readonly cache: TenantCache;
  readonly log: TenantryLog;
  /** Sign-in throttling per account and client address (see src/auth/login-throttle.ts). */
  readonly loginThrottle: LoginThrottle;
  /** Password hashing, bounded and shared fairly by tenants (see src/auth/password-hasher.ts). */
  readonly passwords: PasswordHasher;
  /** Usage metering per tenant and hour, written to the catalog (docs/usage.md). */
  readonly usage: Usage;
  readonly #admin: Sql;
  readonly #platformPool: Sql;
  readonly #appPool: Sql;
  readonly #databases: DatabasePlacement;
  readonly #unsubscribe: () => void;
  /** Tenant lifecycle: create, suspend, resume. */
  readonly tenants: TenantLifecycle;
  /** Stops following catalog change notifications (see followCatalogChannel). */
  #unfollow: () => Promise<void> = async () => {};

  private constructor(options: TenantryOptions, passwords: RolePasswords, admin: Sql, platformPool: Sql, appPool: Sql, input: StartOptions) {
    this.options = options;
    this.log = input.log ?? consoleLog;
    this.plans = new Plans(input.appPlans, options.plans);
    this.redis = options.redisUrl ? new RedisLink({
      url: options.redisUrl,
      prefix: options.redisPrefix,
      onStateChange: (state, error) => {
        if (state === 'up') this.log.info({ redis: 'up' }, 'Redis is up: limits, sign-in throttles and the cache are shared by every instance');
        else this.log.warn({ redis: 'down', err: error?.message }, 'Redis is unavailable: limits are enforced in-process and the cache reads the database until it is back');
      },
    }) : undefined;
    this.cache = new TenantCache({ ...options.cache, redis: this.redis });
    this.loginThrottle = new LoginThrottle(options.login, this.redis);
    this.passwords = new PasswordHasher({ concurrency: options.passwordHashConcurrency });
    this.#admin = admin;
    this.#platformPool = platformPool;
    this.#appPool = appPool;
    this.catalog = new TenantCatalog(platformPool, options.catalogCache, options.catalogTimeoutMs);
    // Revocations matter while a token they revoke could still be valid.
    this.revocations = new CredentialRevocations(platformPool, options.catalogTimeoutMs, options.jwt.ttlSeconds + 60);
    this.apiKeys = new ApiKeys(platformPool, { timeoutMs: options.catalogTimeoutMs });
    this.auditLog = new AuditLog(platformPool, options.catalogTimeoutMs);
    this.auditAnchors = new AuditAnchors(platformPool, options.catalogTimeoutMs);
    let files: Promise<readonly MigrationFile[]> | undefined;
    const migrator = tenantMigrator(() => (files ??= loadMigrations(options.migrationsDir)));
    const db = options.tenantDatabases;
    this.db = new DataPlane([
      new PooledPlacement(appPool, admin),
      new SchemaPlacement(appPool, admin, migrator),
      this.#databases = new DatabasePlacement({
        adminUrl: options.databaseUrl,
        runtimeUrl: runtimeUrl(options, roles.app, passwords.app),
        prepare: options.pooler !== 'transaction',
        migrator,
        maxConnections: db.maxConnections,
        perTenantConnections: db.poolSize,
        acquireTimeoutMs: db.acquireTimeoutMs,
        idleSeconds: db.idleSeconds,
      }),
    ], {
      statementTimeoutMs: options.statementTimeoutMs,
      limitsOf: (tenant) => this.plans.of(tenant).limits,
      sharedPoolSize: options.poolMax,
      queueTimeoutMs: options.dbQueueTimeoutMs,
      audit: input.audit !== false,
      onAuditAppended: (tenantId, seq, hash) => this.auditAnchors.note(tenantId, seq, hash),
    });
    this.audit = new TenantAuditLog(this.db, this.auditLog);
    this.admission = new Admission(this.plans, this.redis, options.leaseTtlMs);
    this.quotas = new Quotas(this.plans, this.db);
    this.tenants = new TenantLifecycle(this.catalog, this.db, options.databaseUrl, this.plans);
    this.tokens = new TokenService(options.jwt);
    this.usage = new Usage(platformPool, { findTenant: (id) => this.catalog.findById(id), db: this.db },
      { ...options.usage, timeoutMs: options.catalogTimeoutMs, log: this.log });
    this.credentials = new Credentials(this.tokens, this.revocations);
    const make: Record<ResolverName, () => TenantStrategy> = {
      subdomain: () => new SubdomainStrategy(this.catalog, options.baseDomain),
      domain: () => new CustomDomainStrategy(this.catalog, options.baseDomain),
      header: () => new HeaderStrategy(this.catalog),
      jwt: () => new JwtStrategy(this.catalog, this.tokens, this.revocations),
      apikey: () => new ApiKeyStrategy(this.catalog, this.apiKeys),
    };
    this.strategies = Object.freeze(options.resolvers.map((r) => make[r]()));
    // Every entry into the platform scope lands in the audit log before its work starts.
    this.#unsubscribe = onPlatformScope((e) => {
      return this.auditLog.append({ actor: e.actor, action: 'platform_scope', detail: { reason: e.reason }, requestId: e.requestId, clientAddress: e.clientAddress });
    });
  }

  /**
   * Connects, bootstraps roles and schemas (idempotent), applies catalog and tenant migrations,
   * and opens the runtime pools as the non-owner roles. `bootstrap: false` and `migrate: false`
   * skip the preparation steps (see StartOptions).
   */
  static async start(input: StartOptions): Promise<Tenantry> {
    const options = loadOptions(input);
    const admin = createPool(options.databaseUrl, { max: 4, applicationName: 'tenantry-admin' });
    let passwords: RolePasswords;
    // Instances starting at once on one database (replicas, a rolling deploy) prepare it in turn:
    // the re-asserted GRANTs and ALTERs of two at once fail with "tuple concurrently updated".
    // A session lock on a connection of its own, gone with it (also if this process dies).
    const preparing = input.bootstrap !== false || input.migrate !== false;
    const turn = preparing ? createPool(options.databaseUrl, { max: 1, applicationName: 'tenantry-start' }) : undefined;
    try {
      await turn?.query("select pg_advisory_lock(hashtext('tenantry.start'))");
      passwords = input.bootstrap === false
        ? await preparedDatabase(admin, options.rolePasswords, { catalog: input.migrate === false })
        : await bootstrapDatabase(admin, options.rolePasswords, input.log ?? consoleLog);
      if (input.migrate !== false) {
        const results = await Tenantry.migrate(admin, options.migrationsDir);
        const failed = results.find((r) => r.status === 'failed');
        if (failed) throw new Error(`migration of ${failed.target} failed: ${failed.error}`);
      }
    } catch (err) {
      await admin.end();
      throw err;
    } finally {
      await turn?.end();
    }
    const prepare = options.pooler !== 'transaction';
    const platformPool = createPool(runtimeUrl(options, roles.platform, passwords.platform),
      { max: options.catalogPoolMax, applicationName: 'tenantry-catalog', prepare });
    // One lane per connection: a schema tenant goes back to the connection that has its plans
    // when that one is free (see SchemaPlacement.acquire and PoolOptions.lanes).
    const appPool = createPool(runtimeUrl(options, roles.app, passwords.app),
      { max: options.poolMax, applicationName: 'tenantry-app', prepare, lanes: options.poolMax });
    const tenantry = new Tenantry(options, passwords, admin, platformPool, appPool, input);
    if (input.metering !== false) tenantry.usage.start();
    tenantry.auditAnchors.start();
    // Start-up does not depend on Redis: give it a moment, then go on (in-process until it is up).
    await tenantry.redis?.waitUntilUp(2_000);
    await tenantry.revocations.load();
    // LISTEN needs a session of its own: always on the direct connection, never through a pooler.
    const direct = createPool(withCredentials(options.databaseUrl, roles.platform, passwords.platform), { max: 1, applicationName: 'tenantry-catalog' });
    const { catalog, revocations } = tenantry;
    const reload = () => { void revocations.load().catch(() => {}); };
    const unfollow = options.catalogListen
      ? await followCatalogChannel(direct, {
        tenantChanged: (id) => catalog.invalidate({ id }),
        somethingChanged: () => catalog.clear(),
        revocationsChanged: reload,
        resync: () => { catalog.clear(); reload(); },
      }).catch(() => undefined)
      : undefined;
    // With Redis, changes made by any instance also reach the others through it: at once even
    // where LISTEN cannot be held (TENANTRY_CATALOG_LISTEN=0 behind a transaction pooler).
    const redis = tenantry.redis;
    const unsubscribeRedis = redis ? await redis.subscribe('catalog', (id) => catalog.invalidate({ id })) : undefined;
    if (redis) catalog.onChange = (id) => { void redis.publish('catalog', id); };
    if (unfollow) {
      tenantry.#unfollow = async () => { unsubscribeRedis?.(); await unfollow(); };
    } else {
      // No LISTEN (turned off, or it failed): the cache TTL bounds how long another process's
      // change goes unseen, and revocations are reloaded every few seconds.
      const timer = setInterval(reload, REVOCATION_POLL_MS);
      timer.unref();
      tenantry.#unfollow = async () => { unsubscribeRedis?.(); clearInterval(timer); };
    }
    return tenantry;
  }

  /** Applies catalog migrations and the tenant migrations of the pooled schema. */
  static async migrate(admin: Sql, migrationsDir: string): Promise<TargetResult[]> {
    const catalog = await migrateCatalog(admin);
    const pooled = await applyMigrations(admin, schemas.pooled, await loadMigrations(migrationsDir),
      { ownerRole: roles.owner, label: `pooled:${schemas.pooled}`, grantTo: roles.app, audit: true, tenantLog: true });
    return [catalog, pooled];
  }

  /** Creates a tenant (see TenantLifecycle.create). Requires the platform scope. */
  createTenant<T>(input: CreateTenantOptions, init?: (tenant: Tenant) => Promise<T>): Promise<{ tenant: Tenant; init: T | undefined }> {
    return this.tenants.create(input, init);
  }

  /**
   * Revokes every token of `subject` in the current tenant minted from a reading of their row made
   * before now — and, with `apiKeys`, the API keys they created: call it when a user is deleted, or
   * their role or password changes, after locking their row and before writing it (see
   * Credentials.revoke). Each process refuses them from the moment it hears of it (at once with
   * LISTEN/NOTIFY). Needs the tenant scope.
   */
  revokeTokens(subject: string, opts: { apiKeys?: boolean } = {}): Promise<void> {
    return this.credentials.revoke(subject, opts);
  }

  /** Suspends or resumes a tenant (see TenantLifecycle.setStatus). Requires the platform scope. */
  setTenantStatus(id: string, status: 'active' | 'suspended'): Promise<Tenant | null> {
    return this.tenants.setStatus(id, status);
  }

  /** Readiness: the catalog and the data plane answer. */
  async ready(): Promise<boolean> {
    try {
      await this.catalog.ping();
      await this.#admin.query('select 1');
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The state of the shared Redis: `off` (not configured: in-process state), `up`, or `down`
   * (limits enforced in-process, the cache reading the database, until it is back).
   */
  redisState(): RedisState | 'off' {
    return this.redis?.state ?? 'off';
  }

  /** The runtime pools and the database-tenant connection budget, right now (for metrics). */
  poolStats(): TenantryPoolStats {
    return {
      app: this.#appPool.stats,
      catalog: this.#platformPool.stats,
      tenantDatabases: {
        reserved: this.#databases.connectionsReserved,
        max: this.options.tenantDatabases.maxConnections,
        openPools: this.#databases.openPools,
      },
    };
  }

  /** Applies pending tenant migrations to every target (see migrateAll). */
  async migrateAll(opts: MigrateOptions = {}): Promise<MigrationRun> {
    const files = await loadMigrations(this.options.migrationsDir);
    // A pool of its own, one connection per target in flight plus one for the run itself: the
    // shared admin pool is small and serves provisioning meanwhile.
    const pool = createPool(this.options.databaseUrl, { max: Math.min(Math.max(1, opts.concurrency ?? 4), 100) + 1, applicationName: 'tenantry-migrate' });
    try {
      return await migrateAll(pool, this.options.databaseUrl, files, opts);
    } finally {
      await pool.end();
    }
  }

  /** The isolation and drift audit of every target (`tenantry check`). */
  async check(): Promise<AuditReport> {
    return auditAll(this.#admin, this.options.databaseUrl);
  }

  /** The admin connection, for tools (migrations, audits, tests). */
  get adminSql(): Sql {
    return this.#admin;
  }

  /** Writes the usage counted last (before any pool closes), then closes everything. */
  async close(): Promise<void> {
    await this.usage.close();
    // The audit chain heads noted so far go to the catalog (a later one waits for the next append).
    await this.auditAnchors.close();
    this.#unsubscribe();
    this.cache.close();
    this.loginThrottle.close();
    await this.#unfollow().catch(() => {});
    await this.apiKeys.close().catch(() => {});
    await Promise.all([this.db.close(), this.#platformPool.end(), this.#admin.end(), this.tenants.close(), this.admission.close()]);
    await this.redis?.close();
  }
}
