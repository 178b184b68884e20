/**
 * The placement contract, run for each placement (pooled, schema, database) on a real
 * PostgreSQL: a tenant sees only its own rows, cannot write rows of another tenant (of the same
 * placement or of another one), needs a context, can be provisioned twice, and a failed statement
 * rolls its transaction back; over HTTP a credential never crosses tenants and another tenant's
 * row is indistinguishable from a missing one. Then what only the schema placement promises.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { TenantContextMissingError, runWithTenant, withPlatformScope, type Isolation, type Tenant } from '../src/index.js';
import { DataPlane } from '../src/data/data-plane.js';
import { SchemaPlacement } from '../src/data/schema/schema-placement.js';
import { loadMigrations } from '../src/migrate/migration-files.js';
import { tenantMigrator } from '../src/migrate/tenant-migrator.js';
import { roles, schemas } from '../src/data/bootstrap.js';
import { tenantDatabase, tenantRole, tenantSchema } from '../src/core/tenant-ids.js';
import { createPool, databaseName, type Sql } from '../src/data/driver/index.js';
import { migrationsDir, startTestStack, type TestStack } from './helpers.js';
import { runtimeUrl } from './isolation-probes.js';
import {
  Leftovers, rejectsWithCode, rejectsWithState, rowsOfTenantIn, seedTenant, storedRows, type SeededTenant, type StoredRow,
} from './placement-helpers.js';

const isolations = ['pooled', 'schema', 'database'] as const satisfies readonly Isolation[];
const hex = (id: string) => id.replace(/-/g, '');

/** The driver returns rows in a Result (an Array subclass): compare as plain arrays and objects. */
function plain(x: unknown): unknown {
  if (Array.isArray(x)) return Array.from(x, plain);
  if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  }
  return x;
}
function deepEqual(actual: unknown, expected: unknown, message?: string): void {
  assert.deepEqual(plain(actual), expected, message);
}

let stack: TestStack;
const leftovers = new Leftovers();
/** Two tenants (A, B) of each placement, each with an owner and three tickets. */
const seeded = new Map<Isolation, { A: SeededTenant; B: SeededTenant }>();

const ticketsSql = 'select tenant_id::text, id::text, title from tickets order by id';
const expectedRows = (s: SeededTenant): StoredRow[] =>
  s.tickets.map((t) => ({ tenant_id: s.tenant.id, id: t.id, title: t.title })).sort((a, b) => a.id.localeCompare(b.id));

async function truth(t: Tenant): Promise<StoredRow[]> {
  return storedRows(stack.databaseUrl, stack.admin, t);
}

/** A Bearer token of the tenant's owner, from POST /api/v1/auth/token. */
const tokens = new Map<string, string>();
async function login(s: SeededTenant): Promise<string> {
  const cached = tokens.get(s.tenant.id);
  if (cached) return cached;
  assert.ok(s.owner, `${s.tenant.slug} has no owner`);
  const res = await stack.app.inject({
    method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': s.tenant.slug },
    payload: { email: s.owner.email, password: s.owner.password },
  });
  assert.equal(res.statusCode, 200, `login to ${s.tenant.slug}: ${res.body}`);
  const token = res.json().access_token as string;
  tokens.set(s.tenant.id, token);
  return token;
}

/** A problem body without the per-request members (instance, request_id). */
function problemShape(res: LightMyRequestResponse): Record<string, unknown> {
  const { instance: _i, request_id: _r, ...rest } = res.json() as Record<string, unknown>;
  return { status: res.statusCode, contentType: res.headers['content-type'], ...rest };
}

before(async () => {
  // No demo tenants: this file's tenants only (and no fixed-id tenant shared with another stack).
  stack = await startTestStack({}, []);
  for (const isolation of isolations) {
    const [A, B] = await Promise.all(['a', 'b'].map((x) => seedTenant(stack.tenantry, leftovers, {
      slug: `${isolation}-${x}`, isolation, owner: true,
      titles: [1, 2, 3].map((n) => `${isolation}-${x} ticket ${n}`),
    })));
    seeded.set(isolation, { A: A!, B: B! });
  }
});

after(async () => {
  await stack?.close();
  await leftovers.drop();
});

for (const isolation of isolations) {
  describe(`placement contract: ${isolation}`, () => {
    const own = () => seeded.get(isolation)!;
    /** B of the same placement, then A of each other placement. */
    const peers = (): SeededTenant[] => [own().B, ...isolations.filter((i) => i !== isolation).map((i) => seeded.get(i)!.A)];
    const db = () => stack.tenantry.db;

    it('each tenant sees exactly its own rows, through query() and transaction()', async () => {
      for (const s of [own().A, own().B]) {
        const viaQuery = await runWithTenant(s.tenant, () => db().query<StoredRow>(ticketsSql));
        deepEqual(viaQuery, expectedRows(s), `${s.tenant.slug} via query()`);
        const viaTx = await runWithTenant(s.tenant, () => db().transaction(async (tx) => ({
          tickets: await tx.query<StoredRow>(ticketsSql),
          users: await tx.query<{ tenant_id: string; email: string }>('select tenant_id::text, email from users'),
        })));
        deepEqual(viaTx.tickets, expectedRows(s), `${s.tenant.slug} via transaction()`);
        deepEqual(viaTx.users, [{ tenant_id: s.tenant.id, email: s.owner!.email }], `${s.tenant.slug} users`);
        deepEqual(await truth(s.tenant), expectedRows(s), `${s.tenant.slug}: what is stored is what was seen`);
      }
    });

    it('a tenant cannot read a peer\'s rows, by id or by tenant_id (same and other placements)', async () => {
      const A = own().A;
      for (const P of peers()) {
        const [byId, byTenant] = await runWithTenant(A.tenant, () => db().transaction(async (tx) => [
          await tx.query('select id from tickets where id = any($1::uuid[])', [P.tickets.map((t) => t.id)]),
          await tx.query<{ n: number }>('select count(*)::int as n from tickets where tenant_id = $1', [P.tenant.id]),
        ] as const));
        deepEqual(byId, [], `${A.tenant.slug} reads ${P.tenant.slug}'s tickets by id`);
        deepEqual(byTenant, [{ n: 0 }], `${A.tenant.slug} counts ${P.tenant.slug}'s tickets`);
      }
    });

    it('the transaction runs where the placement keeps the tenant', async () => {
      const A = own().A.tenant;
      const [where] = await runWithTenant(A, () => db().query<{ db: string; path: string; usr: string; sess: string; tid: string }>(
        `select current_database() as db, current_setting('search_path') as path, current_user as usr,
                session_user as sess, current_setting('app.tenant_id') as tid`));
      assert.ok(where);
      assert.equal(where.tid, A.id);
      assert.equal(where.sess, roles.app, 'the runtime connection logs in as the app role');
      const stackDb = databaseName(stack.databaseUrl);
      const expected = {
        pooled: { db: stackDb, path: schemas.pooled, usr: roles.app },
        schema: { db: stackDb, path: tenantSchema(A.id), usr: tenantRole(A.id) },
        database: { db: tenantDatabase(A.id), path: schemas.pooled, usr: roles.app },
      }[isolation];
      deepEqual({ db: where.db, path: where.path, usr: where.usr }, expected);
    });

    it('writing a row with another tenant\'s tenant_id fails with 42501 and changes nothing', async () => {
      const A = own().A;
      for (const P of peers()) {
        const what = `${A.tenant.slug} → ${P.tenant.slug}`;
        const forged = randomUUID();
        await runWithTenant(A.tenant, async () => {
          await rejectsWithState(db().query('insert into tickets (tenant_id, id, title) values ($1, $2, $3)', [P.tenant.id, forged, 'forged']),
            '42501', `${what}: insert via query()`);
          await rejectsWithState(db().transaction(async (tx) => {
            await tx.query('insert into tickets (tenant_id, id, title) values ($1, $2, $3)', [P.tenant.id, forged, 'forged']);
          }), '42501', `${what}: insert via transaction()`);
          await rejectsWithState(db().query('update tickets set tenant_id = $1 where id = $2', [P.tenant.id, A.tickets[0]!.id]),
            '42501', `${what}: moving an own row to the peer`);
          await rejectsWithState(db().query('insert into users (tenant_id, id, email, name, role, password_hash) values ($1, $2, $3, $4, $5, $6)',
            [P.tenant.id, randomUUID(), 'intruder@example.test', 'Intruder', 'owner', 'x']), '42501', `${what}: forged user`);
          // The peer's rows are invisible, so they cannot be updated or deleted either.
          const ids = P.tickets.map((t) => t.id);
          deepEqual(await db().query("update tickets set title = 'pwned' where id = any($1::uuid[]) returning id", [ids]), [], `${what}: update`);
          deepEqual(await db().query('delete from tickets where id = any($1::uuid[]) returning id', [ids]), [], `${what}: delete`);
          deepEqual(await db().query("update tickets set title = 'pwned' where tenant_id = $1 returning id", [P.tenant.id]), [], `${what}: update by tenant_id`);
        });
        deepEqual(await truth(A.tenant), expectedRows(A), `${what}: A's rows unchanged`);
        deepEqual(await truth(P.tenant), expectedRows(P), `${what}: peer's rows unchanged`);
        // (Two pooled tenants share one storage, where the line above already counted P's rows.)
        if (!(isolation === 'pooled' && P.tenant.isolation === 'pooled')) {
          assert.equal(await rowsOfTenantIn(stack.databaseUrl, stack.admin, A.tenant, P.tenant.id), 0, `${what}: no peer row landed in A's storage`);
        }
        const users = await storedRows(stack.databaseUrl, stack.admin, P.tenant, 'users');
        deepEqual(users.map((u) => u.title), [P.owner!.email], `${what}: peer's users unchanged`);
      }
    });

    it('without a tenant context, query() and transaction() throw TenantContextMissingError and send nothing', async () => {
      let ran = false;
      await assert.rejects(db().query('select 1'), TenantContextMissingError);
      await assert.rejects(db().transaction(async () => { ran = true; }), TenantContextMissingError);
      // The platform scope is not a tenant scope.
      await withPlatformScope({ actor: 'test', reason: 'x' }, async () => {
        await assert.rejects(db().query(ticketsSql), TenantContextMissingError);
        await assert.rejects(db().transaction(async () => { ran = true; }), TenantContextMissingError);
      });
      assert.equal(ran, false, 'the transaction callback never ran');
      await rejectsWithCode(db().query('select 1'), 'tenant_context_missing', 'code');
    });

    it('provision() is idempotent: twice on an existing tenant, twice on a new one', async () => {
      const A = own().A;
      const placement = stack.tenantry.db.placement(isolation);
      assert.equal(placement.isolation, isolation);
      await placement.provision(A.tenant);
      await placement.provision(A.tenant);
      deepEqual(await truth(A.tenant), expectedRows(A), 'existing rows survive re-provisioning');
      deepEqual(await runWithTenant(A.tenant, () => db().query<StoredRow>(ticketsSql)), expectedRows(A));

      // A tenant the placement has never seen: the first call creates, the second finds it done.
      const fresh: Tenant = { ...A.tenant, id: randomUUID(), slug: `${isolation}-fresh` };
      leftovers.note(fresh.id, isolation);
      await placement.provision(fresh);
      await placement.provision(fresh);
      const counts = await stack.admin.query<{ roles: number; schemas: number; dbs: number }>(
        `select (select count(*)::int from pg_roles where rolname = $1) as roles,
                (select count(*)::int from pg_namespace where nspname = $1) as schemas,
                (select count(*)::int from pg_database where datname = $2) as dbs`,
        [tenantSchema(fresh.id), tenantDatabase(fresh.id)]);
      deepEqual(counts[0], {
        roles: isolation === 'schema' ? 1 : 0, schemas: isolation === 'schema' ? 1 : 0, dbs: isolation === 'database' ? 1 : 0,
      });
      const id = randomUUID();
      await runWithTenant(fresh, async () => {
        deepEqual(await db().query(ticketsSql), [], 'a new tenant starts empty');
        await db().query("insert into tickets (id, title) values ($1, 'first')", [id]);
        deepEqual(await db().query(ticketsSql), [{ tenant_id: fresh.id, id, title: 'first' }]);
      });
      await placement.provision(fresh);
      deepEqual(await truth(fresh), [{ tenant_id: fresh.id, id, title: 'first' }], 'a third provision() keeps the row');
    });

    it('deprovision() removes every row and object of the tenant, leaves the peer untouched, and is idempotent', async () => {
      const placement = stack.tenantry.db.placement(isolation);
      const gone = await seedTenant(stack.tenantry, leftovers, { slug: `${isolation}-gone`, isolation, titles: ['x', 'y'], owner: true });
      const { B } = own();
      const peerBefore = await truth(B.tenant);
      await runWithTenant(gone.tenant, () => db().query("insert into comments (id, ticket_id, body) values ($1, $2, 'c')", [randomUUID(), gone.tickets[0]!.id]));
      await placement.deprovision(gone.tenant);
      await placement.deprovision(gone.tenant);
      const [objects] = await stack.admin.query<{ roles: number; schemas: number; dbs: number }>(
        `select (select count(*)::int from pg_roles where rolname = $1) as roles,
                (select count(*)::int from pg_namespace where nspname = $1) as schemas,
                (select count(*)::int from pg_database where datname = $2) as dbs`,
        [tenantSchema(gone.tenant.id), tenantDatabase(gone.tenant.id)]);
      deepEqual(objects, { roles: 0, schemas: 0, dbs: 0 }, 'no schema, role or database of the tenant remains');
      if (isolation === 'pooled') {
        for (const table of ['comments', 'tickets', 'users']) {
          const [left] = await stack.admin.query<{ n: number }>(`select count(*)::int as n from app.${table} where tenant_id = $1`, [gone.tenant.id]);
          assert.equal(left?.n, 0, `no ${table} row of the tenant remains in the shared schema`);
        }
      }
      deepEqual(await truth(B.tenant), peerBefore, 'the peer of the same placement keeps every row');
    });

    it('a failing statement inside transaction() rolls back the statements before it', async () => {
      const A = own().A;
      const first = A.tickets[0]!;
      const added = randomUUID();
      await runWithTenant(A.tenant, async () => {
        await rejectsWithState(db().transaction(async (tx) => {
          await tx.query("insert into tickets (id, title) values ($1, 'rolled back')", [added]);
          await tx.query("update tickets set title = 'changed' where id = $1", [first.id]);
          const [seen] = await tx.query<{ n: number }>('select count(*)::int as n from tickets');
          deepEqual(seen, { n: A.tickets.length + 1 }, 'the insert is visible inside the transaction');
          await tx.query('select 1 / 0');
        }), '22012', 'division by zero');

        // The error caught inside the callback still fails the transaction, which rolls back.
        await rejectsWithCode(db().transaction(async (tx) => {
          await tx.query("insert into tickets (id, title) values ($1, 'rolled back')", [added]);
          await tx.query('insert into tickets (id, title) values ($1, $2)', [A.tickets[1]!.id, 'duplicate key']).catch(() => {});
          return 'swallowed';
        }), 'internal_error', 'a swallowed statement error');

        // One statement that fails half-way (the second row breaks a check) inserts nothing.
        await rejectsWithState(db().query('insert into tickets (id, title) values ($1, $2), ($3, $4)',
          [added, 'ok', randomUUID(), '']), '23514', 'check violation');
        deepEqual(await db().query<StoredRow>(ticketsSql), expectedRows(A), 'seen through the data plane');
      });
      deepEqual(await truth(A.tenant), expectedRows(A), 'stored');
    });

    it('HTTP: a token of this tenant on another tenant\'s host is 403 tenant_mismatch', async () => {
      const A = own().A;
      const token = await login(A);
      const ok = await stack.app.inject({ method: 'GET', url: '/api/v1/tickets', headers: { host: `${A.tenant.slug}.localhost`, authorization: `Bearer ${token}` } });
      assert.equal(ok.statusCode, 200, `own host: ${ok.body}`);
      deepEqual((ok.json().data as { id: string }[]).map((t) => t.id).sort(), A.tickets.map((t) => t.id).sort());
      for (const P of peers()) {
        for (const headers of [{ host: `${P.tenant.slug}.localhost` }, { 'x-tenant': P.tenant.slug }]) {
          const res = await stack.app.inject({ method: 'GET', url: '/api/v1/tickets', headers: { ...headers, authorization: `Bearer ${token}` } });
          assert.equal(res.statusCode, 403, `${A.tenant.slug} token on ${JSON.stringify(headers)}: ${res.body}`);
          assert.equal(res.json().code, 'tenant_mismatch');
          assert.ok(!res.body.includes(P.tickets[0]!.title), 'no peer data in the answer');
        }
      }
    });

    it('HTTP: another tenant\'s ticket id is 404 not_found, exactly like an id that does not exist', async () => {
      const A = own().A;
      const auth = { host: `${A.tenant.slug}.localhost`, authorization: `Bearer ${await login(A)}` };
      const own0 = await stack.app.inject({ method: 'GET', url: `/api/v1/tickets/${A.tickets[0]!.id}`, headers: auth });
      assert.equal(own0.statusCode, 200, 'control: an own ticket is found');
      assert.equal(own0.json().title, A.tickets[0]!.title);
      const requests = (id: string) => [
        { method: 'GET' as const, url: `/api/v1/tickets/${id}` },
        { method: 'PATCH' as const, url: `/api/v1/tickets/${id}`, payload: { title: 'pwned' } },
        { method: 'GET' as const, url: `/api/v1/tickets/${id}/comments` },
        { method: 'POST' as const, url: `/api/v1/tickets/${id}/comments`, payload: { body: 'pwned' } },
        { method: 'DELETE' as const, url: `/api/v1/tickets/${id}` },
      ];
      const missing = randomUUID();
      for (const P of peers()) {
        const foreign = P.tickets[0]!.id;
        const [rf, rm] = [requests(foreign), requests(missing)];
        for (const [i, req] of rf.entries()) {
          const a = await stack.app.inject({ ...req, headers: auth });
          const b = await stack.app.inject({ ...rm[i]!, headers: auth });
          assert.equal(a.statusCode, 404, `${req.method} ${P.tenant.slug}'s ticket: ${a.body}`);
          assert.equal(a.json().code, 'not_found');
          deepEqual(problemShape(a), problemShape(b), `${req.method}: foreign and missing answer the same`);
        }
        deepEqual(await truth(P.tenant), expectedRows(P), `${P.tenant.slug}'s tickets unchanged`);
      }
    });
  });
}

describe('schema placement specifics', () => {
  const A = () => seeded.get('schema')!.A.tenant;
  const B = () => seeded.get('schema')!.B.tenant;
  const db = () => stack.tenantry.db;

  it('another tenant\'s schema, the pooled schema and the catalog are "permission denied" (42501)', async () => {
    for (const table of [`${tenantSchema(B().id)}.tickets`, `${schemas.pooled}.tickets`, `${schemas.catalog}.tenants`]) {
      await rejectsWithState(runWithTenant(A(), () => db().transaction(async (tx) => {
        await tx.query('select 1');
        await tx.query(`select * from ${table}`);
      })), '42501', `transaction reading ${table}`);
      await rejectsWithState(runWithTenant(A(), () => db().query(`select * from ${table}`)), '42501', `query reading ${table}`);
    }
    // B's schema is readable by B: the refusal is about A, not a broken schema.
    assert.equal((await runWithTenant(B(), () => db().query(`select id from ${tenantSchema(B().id)}.tickets`))).length, 3);
  });

  it('self-check: with B\'s schema granted to A by mistake the permission wall falls, and RLS still hides B\'s rows', async () => {
    const [a, b] = [tenantRole(A().id), tenantSchema(B().id)];
    const table = `${b}.tickets`;
    await stack.admin.execute(`grant usage on schema ${b} to ${a}; grant select on ${table} to ${a}`);
    try {
      // The check of the test above goes red: no 42501 any more ...
      const rows = await runWithTenant(A(), () => db().query(`select * from ${table}`));
      // ... and the second wall holds: B's rows carry B's tenant_id, RLS filters them out.
      deepEqual(rows, []);
      const [all] = await stack.admin.query<{ n: number }>(`select count(*)::int as n from ${table}`);
      assert.equal(all?.n, 3);
    } finally {
      await stack.admin.execute(`revoke select on ${table} from ${a}; revoke usage on schema ${b} from ${a}`);
    }
    await rejectsWithState(runWithTenant(A(), () => db().query(`select * from ${table}`)), '42501', 'after the revoke');
  });

  it('search_path is exactly the tenant\'s schema: no public, no app', async () => {
    const rows = await runWithTenant(A(), () => db().query<{ search_path: string }>('show search_path'));
    deepEqual(rows, [{ search_path: tenantSchema(A().id) }]);
    const inTx = await runWithTenant(A(), () => db().transaction((tx) => tx.query<{ search_path: string }>('show search_path')));
    deepEqual(inTx, [{ search_path: tenantSchema(A().id) }]);
  });

  it('a table in public is not found (42P01) rather than read', async () => {
    await stack.admin.query('create table public.widgets(x int)');
    try {
      await stack.admin.query('insert into public.widgets values (42)');
      await stack.admin.query('grant select on public.widgets to public');
      // Control: the table is readable by the tenant's role when named explicitly...
      deepEqual(await runWithTenant(A(), () => db().query('select x from public.widgets')), [{ x: 42 }]);
      // ...but an unqualified name never falls back to public.
      await rejectsWithState(runWithTenant(A(), () => db().query('select * from widgets')), '42P01', 'unqualified widgets');
      await rejectsWithState(runWithTenant(A(), () => db().transaction((tx) => tx.query('select * from widgets'))), '42P01', 'unqualified widgets in a transaction');
    } finally {
      await stack.admin.query('drop table if exists public.widgets');
    }
  });

  it('outside a transaction the runtime connection has no role, tenant or search_path switched', async () => {
    const pool: Sql = createPool(runtimeUrl(stack), { max: 1, applicationName: 'tenantry-test-one' });
    const plane = new DataPlane([new SchemaPlacement(pool, stack.tenantry.adminSql, tenantMigrator(() => loadMigrations(migrationsDir)))]);
    type State = { pid: number; usr: string; sess: string; tid: string | null; path: string };
    const stateSql = `select pg_backend_pid() as pid, current_user as usr, session_user as sess,
      current_setting('app.tenant_id', true) as tid, current_setting('search_path') as path`;
    const outside = async (pid: number, after: string) => {
      const [s] = await pool.query<State>(stateSql);
      assert.ok(s);
      assert.equal(s.pid, pid, `${after}: the single connection`);
      assert.equal(s.usr, roles.app, `${after}: current_user`);
      assert.equal(s.sess, roles.app, `${after}: session_user`);
      assert.ok(!s.tid, `${after}: app.tenant_id leaked: ${s.tid}`);
      assert.ok(!s.path.includes('t_'), `${after}: search_path leaked: ${s.path}`);
    };
    try {
      const [inside] = await runWithTenant(A(), () => plane.transaction((tx) => tx.query<State>(stateSql)));
      assert.ok(inside);
      assert.equal(inside.usr, tenantRole(A().id), 'inside: the tenant role');
      assert.equal(inside.sess, roles.app);
      assert.equal(inside.tid, A().id);
      await outside(inside.pid, 'after transaction()');
      assert.equal((await runWithTenant(A(), () => plane.query<State>(stateSql)))[0]?.usr, tenantRole(A().id));
      await outside(inside.pid, 'after query()');
      await rejectsWithState(runWithTenant(A(), () => plane.transaction(async (tx) => { await tx.query('select 1 / 0'); })), '22012', 'failing transaction');
      await outside(inside.pid, 'after a failed transaction()');
      await rejectsWithState(runWithTenant(A(), () => plane.query('select 1 / 0')), '22012', 'failing query');
      await outside(inside.pid, 'after a failed query()');
      // And B, borrowing the same connection next, is B and only B.
      const [asB] = await runWithTenant(B(), () => plane.query<State>(stateSql));
      deepEqual([asB?.pid, asB?.usr, asB?.tid], [inside.pid, tenantRole(B().id), B().id]);
      await outside(inside.pid, 'after B');
    } finally {
      await plane.close();
      await pool.end();
    }
  });

  it('schema, role and database names derive from the tenant id only, never from the slug', async () => {
    const slug = 'robert-drop-table';
    const s = await seedTenant(stack.tenantry, leftovers, { slug, isolation: 'schema', titles: ['little bobby'] });
    const d = await seedTenant(stack.tenantry, leftovers, { slug: `${slug}-db`, isolation: 'database', titles: ['little bobby db'] });
    assert.equal(s.tenant.slug, slug);
    const [names] = await stack.admin.query<{ schemas: string[]; roles: string[]; dbs: string[] }>(
      `select array(select nspname::text from pg_namespace where nspname ilike '%robert%' or nspname ilike '%drop%') as schemas,
              array(select rolname::text from pg_roles where rolname ilike '%robert%' or rolname ilike '%drop%') as roles,
              array(select datname::text from pg_database where datname ilike '%robert%' or datname ilike '%drop%') as dbs`);
    deepEqual(names, { schemas: [], roles: [], dbs: [] }, 'no name carries the slug');
    assert.equal(tenantSchema(s.tenant.id), `t_${hex(s.tenant.id)}`);
    assert.equal(tenantDatabase(d.tenant.id), `tenant_${hex(d.tenant.id)}`);
    const [exist] = await stack.admin.query<{ schema: number; role: number; db: number }>(
      `select (select count(*)::int from pg_namespace where nspname = $1) as schema,
              (select count(*)::int from pg_roles where rolname = $1) as role,
              (select count(*)::int from pg_database where datname = $2) as db`,
      [`t_${hex(s.tenant.id)}`, `tenant_${hex(d.tenant.id)}`]);
    deepEqual(exist, { schema: 1, role: 1, db: 1 });
    deepEqual((await truth(s.tenant)).map((r) => r.title), ['little bobby']);
    deepEqual((await truth(d.tenant)).map((r) => r.title), ['little bobby db']);
  });
});
