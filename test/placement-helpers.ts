/**
 * Helpers for the placement tests (test/placements.test.ts, test/database-pool-cap.test.ts):
 * creating tenants of any placement with known rows, reading a tenant's stored rows as superuser
 * (ground truth, wherever the placement keeps them), and removing what the stack's close() leaves
 * behind (tenant databases and the cluster-wide roles of schema tenants).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { hashPassword, isTenantryError, withPlatformScope, type Isolation, type Tenant, type Tenantry } from '../src/index.js';
import { schemas } from '../src/data/bootstrap.js';
import { tenantDatabase, tenantRole, tenantSchema } from '../src/core/tenant-ids.js';
import { createPool, ident, sqlState, withDatabase, type Sql } from '../src/data/driver/index.js';
import { serverUrl } from './helpers.js';

export interface SeededTicket { readonly id: string; readonly title: string }
export interface SeededOwner { readonly id: string; readonly email: string; readonly password: string }
export interface SeededTenant {
  readonly tenant: Tenant;
  readonly tickets: readonly SeededTicket[];
  readonly owner: SeededOwner | undefined;
}

/**
 * Records the names a tenant leaves on the server (its database, its role), before it is created,
 * so that after() can remove them even when creation failed half-way.
 */
export class Leftovers {
  readonly databases = new Set<string>();
  readonly roles = new Set<string>();

  note(id: string, isolation: Isolation): void {
    if (isolation === 'database') this.databases.add(tenantDatabase(id));
    if (isolation === 'schema') this.roles.add(tenantRole(id));
  }

  /** Drops the tenant databases (with force), then the roles; run after the stack is closed. */
  async drop(parallel = 4): Promise<void> {
    const sql = createPool(serverUrl(), { max: parallel, applicationName: 'tenantry-test-cleanup' });
    try {
      const names = [...this.databases];
      for (let i = 0; i < names.length; i += parallel) {
        await Promise.all(names.slice(i, i + parallel).map((n) => sql.query(`drop database if exists ${ident(n)} with (force)`)));
      }
      for (const r of this.roles) await sql.query(`drop role if exists ${ident(r)}`);
    } finally {
      await sql.end();
    }
  }
}

/**
 * Creates a tenant through the toolkit (catalog, placement, init in the tenant's context) with one
 * ticket per title and, when `owner` is set, an owner user who can log in with that password.
 */
export async function seedTenant(tenantry: Tenantry, leftovers: Leftovers, input: {
  slug: string; isolation: Isolation; titles: readonly string[]; owner?: boolean; id?: string;
}): Promise<SeededTenant> {
  const id = input.id ?? randomUUID();
  leftovers.note(id, input.isolation);
  const tickets = input.titles.map((title) => ({ id: randomUUID(), title }));
  const owner = input.owner
    ? { id: randomUUID(), email: `owner@${input.slug}.test`, password: `${input.slug}-owner-password` }
    : undefined;
  const hash = owner ? await hashPassword(owner.password) : undefined;
  const { tenant } = await withPlatformScope({ actor: 'test', reason: 'x' }, () =>
    tenantry.createTenant({ id, slug: input.slug, name: input.slug, isolation: input.isolation }, async () => {
      if (owner) {
        await tenantry.db.query('insert into users (id, email, name, role, password_hash) values ($1, $2, $3, $4, $5)',
          [owner.id, owner.email, 'Owner', 'owner', hash]);
      }
      for (const t of tickets) await tenantry.db.query('insert into tickets (id, title) values ($1, $2)', [t.id, t.title]);
    }));
  assert.equal(tenant.status, 'active');
  assert.equal(tenant.isolation, input.isolation);
  return { tenant, tickets, owner };
}

export type StoredRow = { tenant_id: string; id: string; title: string };

/**
 * Ground truth: every row of `table` where the tenant's placement stores it, read as superuser
 * (bypasses RLS on purpose), whatever its tenant_id says.
 */
export async function storedRows(stackDatabaseUrl: string, admin: Sql, tenant: Tenant, table: 'tickets' | 'users' = 'tickets'): Promise<StoredRow[]> {
  const cols = table === 'tickets' ? 'tenant_id::text, id::text, title' : 'tenant_id::text, id::text, email as title';
  if (tenant.isolation === 'pooled') {
    return admin.query<StoredRow>(`select ${cols} from ${schemas.pooled}.${table} where tenant_id = $1 order by id`, [tenant.id]);
  }
  if (tenant.isolation === 'schema') {
    return admin.query<StoredRow>(`select ${cols} from ${ident(tenantSchema(tenant.id))}.${table} order by id`);
  }
  const sql = createPool(withDatabase(stackDatabaseUrl, tenantDatabase(tenant.id)), { max: 1, applicationName: 'tenantry-test-truth' });
  try {
    return await sql.query<StoredRow>(`select ${cols} from ${schemas.pooled}.${table} order by id`);
  } finally {
    await sql.end();
  }
}

/** Rows with this tenant_id anywhere in the place where `where` stores its rows. */
export async function rowsOfTenantIn(stackDatabaseUrl: string, admin: Sql, where: Tenant, tenantId: string): Promise<number> {
  const all = where.isolation === 'pooled'
    ? await admin.query<StoredRow>(`select tenant_id::text, id::text, title from ${schemas.pooled}.tickets where tenant_id = $1`, [tenantId])
    : (await storedRows(stackDatabaseUrl, admin, where)).filter((r) => r.tenant_id === tenantId);
  return all.length;
}

/** Asserts that `p` rejects with a PostgreSQL error of this SQLSTATE. */
export async function rejectsWithState(p: Promise<unknown>, state: string, what: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.equal(sqlState(err), state, `${what}: got ${sqlState(err) ?? 'no SQLSTATE'}: ${(err as Error)?.message}`);
    return true;
  }, what);
}

/** Asserts that `p` rejects with a TenantryError of this code. */
export async function rejectsWithCode(p: Promise<unknown>, code: string, what: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isTenantryError(err), `${what}: not a TenantryError: ${(err as Error)?.stack ?? String(err)}`);
    assert.equal(err.code, code, `${what}: ${err.message}`);
    return true;
  }, what);
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping order of results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}
