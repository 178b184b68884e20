import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Tenantry, type StartOptions, type TenantryOptions } from '../src/index.js';
import { helpdeskPlans } from '../app/plans.js';
import { createPool, withDatabase, type Sql } from '../src/data/driver/index.js';
import { demoTenants, seedDemoTenants, type FixtureTenant } from '../app/fixtures.js';
import { buildServer } from '../app/server.js';

export const migrationsDir = fileURLToPath(new URL('../app/migrations/', import.meta.url));
export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const JWT_SECRET = 'test-jwt-secret-0123456789abcdefghijklmnop';
/** Fixed so that several stacks in one cluster do not reset each other's role passwords. */
export const ROLE_PASSWORD = 'tenantry-test-role-password';

export function serverUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the tests with `npm test`');
  return url;
}

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** A request to the stack's app for tenant `slug` (X-Tenant), with a bearer token when given. */
export function callAs(stack: TestStack, slug: string, token: string | undefined, method: Method, url: string, payload?: object): Promise<LightMyRequestResponse> {
  return stack.app.inject({
    method, url, headers: { 'x-tenant': slug, ...(token ? { authorization: `Bearer ${token}` } : {}) }, ...(payload ? { payload } : {}),
  });
}

/** A fresh, empty database on the test server; `drop()` removes it. */
export async function createTestDatabase(prefix = 't'): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `tenantry_${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = createPool(serverUrl(), { max: 1 });
  await admin.query(`create database ${name}`);
  await admin.end();
  return {
    url: withDatabase(serverUrl(), name),
    name,
    drop: async () => {
      const a = createPool(serverUrl(), { max: 1 });
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

/** The demo tenants, all in the pooled placement: for suites about RLS on the shared schema. */
export const pooledDemoTenants: readonly FixtureTenant[] = demoTenants.map((t) => ({ ...t, isolation: 'pooled' }));

/** Where a tenant's rows live, for ground truth read as the superuser (RLS does not apply). */
export interface TenantStore {
  readonly sql: Sql;
  /** The qualified name of a tenant table in that place. */
  table(name: string): string;
}

/** Drops a tenant's database or role if a crashed run left them (fixture ids are fixed). */
async function dropPlacementOf(server: Sql, t: { id: string; isolation: string }): Promise<void> {
  const hex = t.id.replace(/-/g, '');
  try {
    if (t.isolation === 'database') await server.query(`drop database if exists tenant_${hex} with (force)`);
    else if (t.isolation === 'schema') await server.query(`drop role if exists t_${hex}`);
  } catch (err) {
    // Best effort: a role that still owns objects in a leaked database stays, and provisioning
    // (idempotent) reuses it.
    console.error(`test clean-up of ${t.isolation} tenant ${t.id}: ${(err as Error).message}`);
  }
}

export interface TestStack {
  readonly tenantry: Tenantry;
  readonly app: FastifyInstance;
  readonly admin: Sql;
  readonly databaseUrl: string;
  readonly tenants: readonly FixtureTenant[];
  /** Where the tenant's rows live (its placement), for superuser ground truth. */
  storeOf(tenantId: string): Promise<TenantStore>;
  /** Every place tenant rows live: the shared schema, each tenant schema, each tenant database. */
  stores(): Promise<TenantStore[]>;
  /** A token for a demo user (by tenant slug and role). */
  token(slug: string, role?: 'owner' | 'admin' | 'agent'): Promise<string>;
  close(): Promise<void>;
}

/**
 * The toolkit on `databaseUrl` with the suite's fixed JWT secret and role passwords (the roles are
 * cluster-wide). Started on a database that already has one, it is a second "process" there.
 */
/**
 * Rates, concurrency and quotas no suite about something else ever meets (the limits suites pass
 * `plans: {}` to get the real plans). Statement timeouts stay the plans'.
 */
export const roomyPlans = Object.fromEntries(['free', 'pro', 'business', 'enterprise'].map((plan) =>
  [plan, { requests_per_second: 1_000_000, burst: 1_000_000, concurrent_requests: 100_000, db_connections: 1_000, quotas: { users: null, tickets: null, storage_bytes: null } }]));

export function startTestTenantry(databaseUrl: string, overrides: Partial<TenantryOptions> & Pick<StartOptions, 'appPlans'> = {}): Promise<Tenantry> {
  return Tenantry.start({
    databaseUrl,
    migrationsDir,
    appPlans: helpdeskPlans,
    plans: roomyPlans,
    // Suites log in (and fail on purpose) far more often than a person: the sign-in throttle is the
    // subject of test/login-throttle.test.ts, which sets its own limits.
    login: { accountFailures: 1_000_000, addressFailures: 1_000_000, windowSeconds: 60, maxBlockSeconds: 1 },
    jwt: { secret: JWT_SECRET, issuer: 'tenantry', audience: 'tenantry-api', ttlSeconds: 3600 },
    rolePasswords: { app: ROLE_PASSWORD, platform: ROLE_PASSWORD },
    ...throughPgBouncer(),
    ...overrides,
  });
}

/**
 * Runtime connections through PgBouncer in transaction mode when the suite runs that way (a
 * `*-pgbouncer.test.ts` file calls runThroughPgBouncer first): the deployment of
 * TENANTRY_RUNTIME_URL + TENANTRY_POOLER=transaction.
 */
function throughPgBouncer(): Partial<TenantryOptions> {
  if (process.env.TEST_THROUGH_PGBOUNCER !== '1') return {};
  const url = process.env.TEST_PGBOUNCER_URL;
  if (!url) throw new Error('TEST_THROUGH_PGBOUNCER is set but no PgBouncer runs (TEST_PGBOUNCER_URL)');
  return { runtimeUrl: url, pooler: 'transaction' };
}

/**
 * Makes the rest of this test process run through PgBouncer, then loads `suite` (a test file).
 * Without PgBouncer installed the suite is skipped, except on CI (CI=true), where it fails.
 */
export async function runThroughPgBouncer(suite: () => Promise<unknown>): Promise<void> {
  if (!process.env.TEST_PGBOUNCER_URL) {
    if (process.env.CI) throw new Error('CI must run the suites through PgBouncer: install pgbouncer (.ci/run does)');
    const { test } = await import('node:test');
    test('through PgBouncer', { skip: 'pgbouncer is not installed' }, () => {});
    return;
  }
  process.env.TEST_THROUGH_PGBOUNCER = '1';
  await suite();
}

/** A database, the toolkit on it, the demo fixtures and the helpdesk server (used via inject). */
export async function startTestStack(overrides: Partial<TenantryOptions> & Pick<StartOptions, 'appPlans'> = {}, tenants: readonly FixtureTenant[] = demoTenants): Promise<TestStack> {
  const server = createPool(serverUrl(), { max: 1 });
  try {
    for (const t of tenants) await dropPlacementOf(server, t);
  } finally {
    await server.end();
  }
  const db = await createTestDatabase();
  const tenantry = await startTestTenantry(db.url, overrides);
  await seedDemoTenants(tenantry, tenants);
  const app = await buildServer({ tenantry, adminToken: ADMIN_TOKEN });
  const admin = createPool(db.url, { max: 2 });
  const tokens = new Map<string, string>();
  const tenantDbs = new Map<string, Sql>();
  const storeOf = async (tenantId: string): Promise<TenantStore> => {
    const [row] = await admin.query<{ isolation: string }>('select isolation from tenantry.tenants where id = $1', [tenantId]);
    if (!row) throw new Error(`no tenant ${tenantId} in the catalog`);
    const hex = tenantId.replace(/-/g, '');
    if (row.isolation === 'schema') return { sql: admin, table: (n) => `"t_${hex}".${n}` };
    if (row.isolation === 'database') {
      let sql = tenantDbs.get(hex);
      if (!sql) tenantDbs.set(hex, sql = createPool(withDatabase(serverUrl(), `tenant_${hex}`), { max: 1 }));
      return { sql, table: (n) => `app.${n}` };
    }
    return { sql: admin, table: (n) => `app.${n}` };
  };
  return {
    tenantry, app, admin, databaseUrl: db.url, tenants, storeOf,
    async stores() {
      const placed = await admin.query<{ id: string }>("select id from tenantry.tenants where isolation <> 'pooled' order by id");
      return [{ sql: admin, table: (n: string) => `app.${n}` }, ...await Promise.all(placed.map((t) => storeOf(t.id)))];
    },
    async token(slug, role = 'owner') {
      const key = `${slug}/${role}`;
      const cached = tokens.get(key);
      if (cached) return cached;
      const f = tenants.find((t) => t.slug === slug)!;
      const u = f.users.find((x) => x.role === role)!;
      const res = await app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': slug }, payload: { email: u.email, password: u.password } });
      if (res.statusCode !== 200) throw new Error(`login ${key} failed: ${res.statusCode} ${res.body}`);
      const token = res.json().access_token as string;
      tokens.set(key, token);
      return token;
    },
    async close() {
      // Best effort, step by step: a failure in one step must not leave the others undone.
      const steps: [string, () => Promise<unknown>][] = [
        ['app', () => app.close()],
        ['tenantry', () => tenantry.close()],
        ['tenant database pools', () => Promise.all([...tenantDbs.values()].map((s) => s.end()))],
      ];
      let placed: { id: string; isolation: string }[] = [];
      steps.push(['catalog', async () => {
        placed = await admin.query<{ id: string; isolation: string }>("select id, isolation from tenantry.tenants where isolation <> 'pooled'");
      }]);
      steps.push(['admin pool', () => admin.end()], ['test database', () => db.drop()]);
      // Tenant databases and schema tenants' roles live outside the test database: remove them.
      steps.push(['placements', async () => {
        const server = createPool(serverUrl(), { max: 1 });
        try {
          for (const t of placed) await dropPlacementOf(server, t);
        } finally {
          await server.end();
        }
      }]);
      const failures: string[] = [];
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (err) {
          failures.push(`${name}: ${(err as Error).message}`);
        }
      }
      if (failures.length) throw new Error(`test stack clean-up failed: ${failures.join('; ')}`);
    },
  };
}
