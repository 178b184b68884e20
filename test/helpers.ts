import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { Tenantry, type TenantryOptions } from '../src/index.js';
import { createPool, withDatabase, type Sql } from '../src/data/postgres-driver.js';
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

/** A fresh, empty database on the test server; `drop()` removes it. */
export async function createTestDatabase(prefix = 't'): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `tenantry_${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = createPool(serverUrl(), { max: 1 });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  return {
    url: withDatabase(serverUrl(), name),
    name,
    drop: async () => {
      const a = createPool(serverUrl(), { max: 1 });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

export interface TestStack {
  readonly tenantry: Tenantry;
  readonly app: FastifyInstance;
  readonly admin: Sql;
  readonly databaseUrl: string;
  readonly tenants: readonly FixtureTenant[];
  /** A token for a demo user (by tenant slug and role). */
  token(slug: string, role?: 'owner' | 'admin' | 'agent'): Promise<string>;
  close(): Promise<void>;
}

/** A database, the toolkit on it, the demo fixtures and the helpdesk server (used via inject). */
export async function startTestStack(overrides: Partial<TenantryOptions> = {}, tenants: readonly FixtureTenant[] = demoTenants): Promise<TestStack> {
  const db = await createTestDatabase();
  const tenantry = await Tenantry.start({
    databaseUrl: db.url,
    migrationsDir,
    jwt: { secret: JWT_SECRET, issuer: 'tenantry', audience: 'tenantry-api', ttlSeconds: 3600 },
    rolePasswords: { app: ROLE_PASSWORD, platform: ROLE_PASSWORD },
    ...overrides,
  });
  await seedDemoTenants(tenantry, tenants);
  const app = await buildServer({ tenantry, adminToken: ADMIN_TOKEN });
  const admin = createPool(db.url, { max: 2 });
  const tokens = new Map<string, string>();
  return {
    tenantry, app, admin, databaseUrl: db.url, tenants,
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
      await app.close();
      await tenantry.close();
      // Tenant databases and schema tenants' roles live outside the test database: remove them.
      const placed = await admin.unsafe<{ id: string; isolation: string }[]>(
        "select id, isolation from tenantry.tenants where isolation <> 'pooled'").catch(() => []);
      await admin.end();
      await db.drop();
      const server = createPool(serverUrl(), { max: 1 });
      try {
        for (const t of placed) {
          const hex = t.id.replace(/-/g, '');
          if (t.isolation === 'database') await server.unsafe(`drop database if exists tenant_${hex} with (force)`);
          else await server.unsafe(`drop role if exists t_${hex}`);
        }
      } finally {
        await server.end();
      }
    },
  };
}
