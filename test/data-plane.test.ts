/**
 * The pooled data plane against a real PostgreSQL: context never leaks between borrowers of a
 * connection, no context means no SQL and no rows, WITH CHECK refuses foreign writes, the runtime
 * role cannot escape RLS, many tenants interleave cleanly, and a query costs one round trip.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { TenantContextMissingError, runWithTenant, withPlatformScope, type Tenant } from '../src/index.js';
import { DataPlane } from '../src/data/data-plane.js';
import { PooledPlacement } from '../src/data/pooled/pooled-placement.js';
import { createPool, sqlState, type Sql } from '../src/data/driver/index.js';
import { FlightProxy } from './flight-proxy.js';
import { pooledDemoTenants, startTestStack, type TestStack } from './helpers.js';
import { runtimeUrl, tenantById, tenantTables, withRuntimeConnection } from './isolation-probes.js';


/** The state of the one connection of a max-1 pool, as seen by the next borrower. */
type ConnState = { pid: number; tenant: string | null; search_path: string; fresh_xact: boolean };
async function connState(pool: Sql): Promise<ConnState> {
  // A transaction-local mark set by one statement is still there for the next one only if a
  // transaction block is open across them (each pool.query() ends with its own Sync).
  await pool.query("select set_config('tenantry.probe', 'open', true)");
  const [row] = await pool.query<ConnState>(`
    select pg_backend_pid() as pid, current_setting('app.tenant_id', true) as tenant,
      current_setting('search_path') as search_path, coalesce(current_setting('tenantry.probe', true), '') <> 'open' as fresh_xact`);
  assert.ok(row);
  return row;
}

/** No tenant left behind: app.tenant_id unset or empty, default search_path, no open transaction. */
function assertClean(state: ConnState, pid: number, after: string): void {
  assert.equal(state.pid, pid, `${after}: still the single connection`);
  assert.ok(state.tenant === null || state.tenant === '', `${after}: app.tenant_id leaked: ${state.tenant}`);
  assert.ok(!/\bapp\b/.test(state.search_path), `${after}: search_path leaked: ${state.search_path}`);
  assert.equal(state.fresh_xact, true, `${after}: a transaction was left open`);
}

type TicketRow = { tenant_id: string; title: string; ctx: string };
const ticketsSql = "select tenant_id, title, current_setting('app.tenant_id') as ctx from tickets order by id";

function assertOwn(rows: readonly { tenant_id: string }[], tenant: Tenant, expected: number, what: string): void {
  assert.equal(rows.length, expected, `${what}: ${tenant.slug} row count`);
  for (const r of rows) assert.equal(r.tenant_id, tenant.id, `${what}: ${tenant.slug} got a row of ${r.tenant_id}`);
}

/** A small seeded PRNG, so a failing interleaving can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function rejectsWithState(p: Promise<unknown>, state: string, what: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.equal(sqlState(err), state, `${what}: ${(err as Error).message}`);
    return true;
  }, what);
}

describe('data plane (pooled) on PostgreSQL', () => {
  let stack: TestStack;
  let A: Tenant;
  let B: Tenant;
  let C: Tenant;
  const TICKETS = 6;

  before(async () => {
    stack = await startTestStack({}, pooledDemoTenants);
    [A, B, C] = await Promise.all(stack.tenants.map((t) => tenantById(stack, t.id))) as [Tenant, Tenant, Tenant];
  });
  after(async () => { await stack?.close(); });

  describe('one connection, several borrowers', () => {
    let pool: Sql;
    let db: DataPlane;
    let pid: number;

    before(async () => {
      pool = createPool(runtimeUrl(stack), { max: 1 });
      db = new DataPlane([new PooledPlacement(pool, stack.admin)]);
      const first = await connState(pool);
      assert.equal(first.tenant, null, 'a fresh connection has no tenant');
      pid = first.pid;
    });
    after(async () => { await db.close(); });

    it('A, then B, then A: each sees only its rows; the connection is clean after each', async () => {
      for (const [i, t] of [A, B, A, C, B].entries()) {
        const rows = await runWithTenant(t, () => db.query<TicketRow>(ticketsSql));
        assertOwn(rows, t, TICKETS, `query #${i}`);
        assert.ok(rows.every((r) => r.ctx === t.id && r.title.startsWith(`[${t.name}]`)));
        assertClean(await connState(pool), pid, `after query #${i} (${t.slug})`);

        const [counts] = await runWithTenant(t, () => db.transaction(async (tx) => {
          const [ctx] = await tx.query<{ ctx: string }>("select current_setting('app.tenant_id') as ctx");
          assert.equal(ctx?.ctx, t.id);
          return tx.query<{ users: number; comments: number }>(
            'select (select count(*)::int from users) as users, (select count(*)::int from comments) as comments');
        }));
        assert.deepEqual(counts, { users: 3, comments: 1 });
        assertClean(await connState(pool), pid, `after transaction #${i} (${t.slug})`);
      }
    });

    it('interleaved concurrently: no borrower sees another\'s rows or context', async () => {
      const rand = prng(7);
      const order = Array.from({ length: 40 }, (_, i) => [A, B, C][i % 3]!);
      const work = order.map(async (t, i) => {
        await sleep(Math.floor(rand() * 3));
        if (i % 4 === 3) return { kind: 'state' as const, state: await connState(pool) };
        return runWithTenant(t, async () => {
          if (i % 2 === 0) {
            const rows = await db.query<TicketRow>(ticketsSql);
            assertOwn(rows, t, TICKETS, `concurrent query #${i}`);
            assert.ok(rows.every((r) => r.ctx === t.id), `concurrent query #${i}: context`);
          } else {
            await db.transaction(async (tx) => {
              const before = await tx.query<{ ctx: string }>("select current_setting('app.tenant_id') as ctx");
              await immediate();
              await sleep(Math.floor(rand() * 2));
              const rows = await tx.query<TicketRow>(ticketsSql);
              assert.equal(before[0]?.ctx, t.id);
              assertOwn(rows, t, TICKETS, `concurrent transaction #${i}`);
            });
          }
          return { kind: 'data' as const };
        });
      });
      const results = await Promise.all(work);
      const states = results.flatMap((r) => (r.kind === 'state' ? [r.state] : []));
      assert.equal(states.length, 10);
      for (const [i, s] of states.entries()) assertClean(s, pid, `state probe #${i} between borrowers`);
      assertClean(await connState(pool), pid, 'after the interleaving');
    });

    it('a failed statement or a throwing transaction leaves the connection clean', async () => {
      await runWithTenant(A, () => rejectsWithState(db.query('select 1 / 0'), '22012', 'division by zero'));
      assertClean(await connState(pool), pid, 'after a failed query()');
      await assert.rejects(runWithTenant(A, () => db.transaction(async (tx) => {
        await tx.query("insert into tickets (id, title) values ($1, 'rolled back')", [randomUUID()]);
        throw new Error('boom');
      })), /boom/);
      assertClean(await connState(pool), pid, 'after a throwing transaction()');
      await runWithTenant(A, () => rejectsWithState(
        db.transaction((tx) => tx.query('select * from no_such_table')), '42P01', 'missing table'));
      assertClean(await connState(pool), pid, 'after a failed statement in transaction()');
      const [n] = await stack.admin.query<{ n: number }>("select count(*)::int as n from app.tickets where title = 'rolled back'");
      assert.equal(n?.n, 0, 'the throwing transaction was rolled back');
      // And the next borrower is served normally.
      assertOwn(await runWithTenant(B, () => db.query<TicketRow>(ticketsSql)), B, TICKETS, 'after failures');
    });

    it('a transaction handle used after its transaction ended cannot reach the next borrower', async () => {
      let stale: { query: (text: string) => Promise<unknown[]> } | undefined;
      await runWithTenant(A, () => db.transaction(async (tx) => {
        stale = tx;
        await tx.query('select 1');
      }));
      assert.ok(stale);
      // B borrows the single connection; meanwhile A's leaked handle is used again.
      let leaked: unknown[] | undefined;
      let staleError: unknown;
      await runWithTenant(B, () => db.transaction(async (tx) => {
        await tx.query('select 1');
        leaked = await stale!.query("select tenant_id from tickets").catch((err: unknown) => { staleError = err; return undefined; });
      }));
      assert.ok(!leaked?.some((r) => (r as { tenant_id: string }).tenant_id === B.id),
        `A's stale transaction handle read ${leaked?.length} of B's tickets inside B's transaction`);
      assert.ok(staleError, 'using a transaction handle after its transaction ended must throw');
      assertClean(await connState(pool), pid, 'after the stale handle');
    });
  });

  describe('limits and failures', () => {
    let pool: Sql;
    let db: DataPlane;
    let pid: number;

    before(async () => {
      pool = createPool(runtimeUrl(stack), { max: 1 });
      db = new DataPlane([new PooledPlacement(pool, stack.admin)], { statementTimeoutMs: 300 });
      pid = (await connState(pool)).pid;
    });
    after(async () => { await db.close(); });

    it('a statement past the statement timeout is cancelled: query_timeout, and the timeout does not outlive it', async () => {
      for (const run of [
        () => db.query('select pg_sleep(3)'),
        () => db.transaction(async (tx) => { await tx.query('select 1'); return tx.query('select pg_sleep(3)'); }),
      ]) {
        const started = Date.now();
        await assert.rejects(runWithTenant(A, run), (err: unknown) => (err as { code?: string }).code === 'query_timeout');
        assert.ok(Date.now() - started < 2_500, `cancelled near 300 ms, took ${Date.now() - started} ms`);
      }
      const [row] = await pool.query<{ timeout: string }>("select current_setting('statement_timeout') as timeout");
      assert.equal(row?.timeout, '0', 'the timeout was transaction-local');
      assertClean(await connState(pool), pid, 'after the timeouts');
      // Just under the limit is fine.
      const rows = await runWithTenant(A, () => db.query<{ ok: number }>('select 1 as ok from pg_sleep(0.05)'));
      assert.deepEqual(rows, [{ ok: 1 }]);
    });

    it('a client that goes away has its running statement cancelled, and the connection is not reused', async () => {
      const long = new DataPlane([new PooledPlacement(pool, stack.admin)], { statementTimeoutMs: 0 });
      const abort = new AbortController();
      const started = Date.now();
      const running = runWithTenant(A, () => long.query('select pg_sleep(5)'), { signal: abort.signal });
      setTimeout(() => abort.abort(), 150);
      await assert.rejects(running, (err: unknown) => (err as { code?: string }).code === 'query_timeout');
      assert.ok(Date.now() - started < 3_000, `cancelled at once, took ${Date.now() - started} ms`);
      const after = await connState(pool);
      assert.notEqual(after.pid, pid, 'a connection that was sent a cancel is discarded, never lent again');
      assertClean(after, after.pid, 'after the cancel');
      pid = after.pid;
      const [gone] = await stack.admin.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where query like 'select pg_sleep(5)%' and state = 'active'");
      assert.equal(gone?.n, 0, 'the statement no longer runs on the server');
    });

    it('a migration that changes what a prepared statement returns: the next read works (re-prepared), with the new column', async () => {
      const text = 'select * from tickets order by id limit 1';
      const before = await runWithTenant(A, () => db.query<Record<string, unknown>>(text));
      assert.ok(before[0] && !('probe_col' in before[0]));
      await stack.admin.query('alter table app.tickets add column probe_col int default 7');
      try {
        const after = await runWithTenant(A, () => db.query<Record<string, unknown>>(text));
        assert.equal(after[0]?.probe_col, 7, 'the read sees the new column instead of failing with 0A000');
      } finally {
        await stack.admin.query('alter table app.tickets drop column probe_col');
      }
      const again = await runWithTenant(A, () => db.query<Record<string, unknown>>(text));
      assert.ok(again[0] && !('probe_col' in again[0]));
    });

    it('a statement that leaves a transaction open (a bare BEGIN) gets its connection discarded', async () => {
      await runWithTenant(A, () => db.query('begin'));
      const after = await connState(pool);
      assert.notEqual(after.pid, pid, 'the connection with the open transaction was closed');
      assertClean(after, after.pid, 'after the bare BEGIN');
      pid = after.pid;
    });
  });

  describe('no tenant context', () => {
    it('DataPlane.query/transaction throw TenantContextMissingError before any SQL', async () => {
      const proxy = await FlightProxy.start(stack.databaseUrl);
      const db = new DataPlane([new PooledPlacement(createPool(proxy.url(runtimeUrl(stack)), { max: 1 }), stack.admin)]);
      try {
        let called = false;
        await assert.rejects(db.query('select * from tickets'), TenantContextMissingError);
        await assert.rejects(db.transaction(async (tx) => { called = true; return tx.query('select 1'); }), TenantContextMissingError);
        // The platform scope is not a tenant scope either.
        await withPlatformScope({ actor: 'test', reason: 'no tenant data in platform scope' }, async () => {
          await assert.rejects(db.query('select * from tickets'), TenantContextMissingError);
          await assert.rejects(db.transaction(async () => { called = true; }), TenantContextMissingError);
        });
        assert.equal(called, false, 'the transaction body never ran');
        assert.equal(proxy.connections, 0, 'no connection was even opened');
        assert.equal(proxy.clientBytes, 0, 'no byte of SQL was sent');
        // The same DataPlane does work inside a tenant scope, through the same proxy.
        assertOwn(await runWithTenant(A, () => db.query<TicketRow>(ticketsSql)), A, TICKETS, 'through the proxy');
        assert.equal(proxy.connections, 1);
      } finally {
        await db.close();
        await proxy.close();
      }
      await assert.rejects(stack.tenantry.db.query('select 1'), (err: unknown) =>
        err instanceof TenantContextMissingError && err.code === 'tenant_context_missing' && err.status === 500);
    });

    it('at SQL level the runtime role sees zero rows, never all rows, with no or a garbage tenant', async () => {
      for (const table of tenantTables) {
        const [all] = await stack.admin.query<{ n: number }>(`select count(*)::int as n from app.${table}`);
        assert.ok((all?.n ?? 0) >= 3, `${table} has rows of several tenants`);
      }
      await withRuntimeConnection(stack, async (sql) => {
        const [who] = await sql.query<{ me: string; tenant: string | null }>(
          "select current_user as me, current_setting('app.tenant_id', true) as tenant");
        assert.deepEqual(who, { me: 'tenantry_app', tenant: null });
        for (const table of tenantTables) {
          const [r] = await sql.query<{ n: number }>(`select count(*)::int as n from app.${table}`);
          assert.equal(r?.n, 0, `no context: ${table}`);
          for (const garbage of ['not-a-uuid', '', `${A.id}' or true --`, A.id.toUpperCase() + 'x']) {
            const n = await sql.transaction(async (tx) => {
              await tx.query("select set_config('app.tenant_id', $1, true)", [garbage]);
              const [c] = await tx.query<{ n: number }>(`select count(*)::int as n from app.${table}`);
              return c?.n;
            });
            assert.equal(n, 0, `app.tenant_id=${JSON.stringify(garbage)}: ${table}`);
          }
        }
        // Control: the same connection with a valid tenant sees that tenant's rows.
        const own = await sql.transaction(async (tx) => {
          await tx.query("select set_config('app.tenant_id', $1, true)", [A.id]);
          return tx.query<{ tenant_id: string }>('select tenant_id from app.tickets');
        });
        assertOwn(own, A, TICKETS, 'runtime role with a valid tenant');
        // Writing without a tenant fails too: tenant_id defaults to NULL, which WITH CHECK refuses
        // (RLS checks run before NOT NULL, hence 42501 rather than 23502).
        await rejectsWithState(sql.query("insert into app.tickets (id, title) values ($1, 'x')", [randomUUID()]), '42501', 'insert without tenant');
        await rejectsWithState(sql.query("insert into app.tickets (tenant_id, id, title) values ($1, $2, 'x')", [A.id, randomUUID()]), '42501', 'insert naming a tenant without context');
        // Turning row security off does not turn the policies off: it errors instead.
        await rejectsWithState(sql.transaction(async (tx) => {
          await tx.query('set local row_security = off');
          return tx.query('select count(*) from app.tickets');
        }), '42501', 'row_security = off');
      });
    });
  });

  describe('WITH CHECK', () => {
    it('inside tenant A, a row naming tenant B is refused with 42501 and nothing changes', async () => {
      const snapshot = () => stack.admin.query<{ tenant_id: string; id: string; title: string }>(
        'select tenant_id, id, title from app.tickets order by tenant_id, id');
      const before = await snapshot();
      const [fa] = stack.tenants;
      const target = fa!.tickets[1]!.id;

      await runWithTenant(A, async () => {
        await rejectsWithState(stack.tenantry.db.query('insert into tickets (tenant_id, id, title) values ($1, $2, $3)',
          [B.id, randomUUID(), 'smuggled']), '42501', 'insert with B\'s tenant_id');
        await rejectsWithState(stack.tenantry.db.query('update tickets set tenant_id = $1 where id = $2',
          [B.id, target]), '42501', 'update moving A\'s row to B');
        await rejectsWithState(stack.tenantry.db.transaction((tx) =>
          tx.query('update tickets set tenant_id = $1, requester_id = null, assignee_id = null where id = $2', [B.id, target])),
        '42501', 'update moving A\'s row to B in a transaction');
        await rejectsWithState(stack.tenantry.db.query('insert into tickets (tenant_id, id, title) values (null, $1, $2)',
          [randomUUID(), 'no tenant']), '42501', 'insert with a NULL tenant_id');
        // B's rows cannot be touched from A either: invisible, so zero rows affected.
        const hit = await stack.tenantry.db.query("update tickets set title = 'hijacked' where id = $1 returning id", [stack.tenants[1]!.tickets[0]!.id]);
        assert.equal(hit.length, 0);
        const gone = await stack.tenantry.db.query('delete from tickets where tenant_id = $1 returning id', [B.id]);
        assert.equal(gone.length, 0);
        // Control: A's own write works (and is undone below).
        const own = await stack.tenantry.db.query<{ tenant_id: string }>(
          "insert into tickets (id, title) values ($1, 'own') returning tenant_id", [randomUUID()]);
        assert.equal(own[0]?.tenant_id, A.id, 'tenant_id defaults to the current tenant');
      });
      await stack.admin.query("delete from app.tickets where title = 'own' and tenant_id = $1", [A.id]);
      assert.deepEqual(await snapshot(), before, 'no ticket changed');
      const [moved] = await stack.admin.query<{ tenant_id: string }>('select tenant_id from app.tickets where id = $1', [target]);
      assert.equal(moved?.tenant_id, A.id);
    });
  });

  describe('runtime role', () => {
    it('is no superuser, has no BYPASSRLS, owns nothing and can create nothing', async () => {
      const [role] = await stack.admin.query<{
        super: boolean; bypass: boolean; createdb: boolean; createrole: boolean; owned: number;
        create_public: boolean; create_app: boolean; create_db: boolean; temp: boolean; member_of_owner: boolean;
      }>(`
        select rolsuper as super, rolbypassrls as bypass, rolcreatedb as createdb, rolcreaterole as createrole,
          (select count(*)::int from pg_class where relowner = r.oid) as owned,
          has_schema_privilege(rolname, 'public', 'CREATE') as create_public,
          has_schema_privilege(rolname, 'app', 'CREATE') as create_app,
          has_database_privilege(rolname, current_database(), 'CREATE') as create_db,
          has_database_privilege(rolname, current_database(), 'TEMP') as temp,
          pg_has_role(rolname, 'tenantry_owner', 'MEMBER') as member_of_owner
        from pg_roles r where rolname = 'tenantry_app'`);
      assert.deepEqual(role, {
        super: false, bypass: false, createdb: false, createrole: false, owned: 0,
        create_public: false, create_app: false, create_db: false, temp: false, member_of_owner: false,
      });

      await withRuntimeConnection(stack, async (sql) => {
        const suffix = randomUUID().slice(0, 8);
        await rejectsWithState(sql.query(`create table public.probe_${suffix} (a int)`), '42501', 'create table in public');
        await rejectsWithState(sql.query(`create table app.probe_${suffix} (a int)`), '42501', 'create table in app');
        await rejectsWithState(sql.query(`create schema probe_${suffix}`), '42501', 'create schema');
        await rejectsWithState(sql.query(`create temp table probe_${suffix} (a int)`), '42501', 'create temp table');
        await rejectsWithState(sql.query('set role tenantry_owner'), '42501', 'set role to the owner');
        await rejectsWithState(sql.query('select * from app.tenantry_migrations'), '42501', 'read the migration ledger');
        await rejectsWithState(sql.query('alter table app.tickets no force row level security'), '42501', 'alter a table');
        await rejectsWithState(sql.query('drop policy tenant_isolation on app.tickets'), '42501', 'drop a policy');
      });
      const [still] = await stack.admin.query<{ n: number }>(
        "select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relname like 'probe\\_%' or n.nspname like 'probe\\_%'");
      assert.equal(still?.n, 0);
    });

    it('every tenant table: RLS enabled and forced, full policy, tenant_id leads PK and an index, in every FK', async () => {
      const tables = await stack.admin.query<{
        name: string; rls: boolean; force: boolean; full_policy: boolean; tenant_index: boolean; tenant_pk: boolean; bad_fks: string[];
      }>(`
        select c.relname as name, c.relrowsecurity as rls, c.relforcerowsecurity as force,
          exists (select 1 from pg_policies p where p.schemaname = n.nspname and p.tablename = c.relname
                  and p.cmd = 'ALL' and p.permissive = 'PERMISSIVE' and p.qual is not null and p.with_check is not null) as full_policy,
          exists (select 1 from pg_index i where i.indrelid = c.oid and i.indkey[0] = a.attnum) as tenant_index,
          exists (select 1 from pg_constraint k where k.conrelid = c.oid and k.contype = 'p' and k.conkey[1] = a.attnum) as tenant_pk,
          array(select k.conname::text from pg_constraint k where k.conrelid = c.oid and k.contype = 'f'
                and not exists (select 1 from unnest(k.conkey, k.confkey) as u(l, r)
                                join pg_attribute ra on ra.attrelid = k.confrelid and ra.attnum = u.r
                                where u.l = a.attnum and ra.attname = 'tenant_id')
                order by 1) as bad_fks
        from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
        where n.nspname = 'app' and c.relkind in ('r', 'p')
        order by c.relname`);
      assert.deepEqual(tables.map((t) => t.name), ['comments', 'tenantry_audit_log', 'tickets', 'users']);
      for (const t of tables) {
        assert.deepEqual(t, { name: t.name, rls: true, force: true, full_policy: true, tenant_index: true, tenant_pk: true, bad_fks: [] });
      }
      const [fks] = await stack.admin.query<{ n: number }>(
        "select count(*)::int as n from pg_constraint k join pg_namespace n on n.oid = k.connamespace where n.nspname = 'app' and k.contype = 'f'");
      assert.equal(fks?.n, 4, 'the foreign keys checked above exist');
    });
  });

  it('20 tenants, 500 concurrent queries with random awaits: each sees only its own rows', async () => {
    const suffix = randomUUID().slice(0, 6);
    const made: { tenant: Tenant; tickets: number }[] = [];
    await withPlatformScope({ actor: 'test', reason: 'x' }, async () => {
      for (let i = 0; i < 20; i++) {
        const tickets = 1 + (i % 7);
        const { tenant } = await stack.tenantry.createTenant({ slug: `load-${suffix}-${i}`, name: `Load ${i}` }, async (t) => {
          await stack.tenantry.db.transaction(async (tx) => {
            for (let k = 0; k < tickets; k++) {
              await tx.query('insert into tickets (id, title) values ($1, $2)', [randomUUID(), `${t.slug} #${k}`]);
            }
          });
        });
        made.push({ tenant, tickets });
      }
    });
    const rand = prng(42);
    const failures: string[] = [];
    const calls = Array.from({ length: 500 }, (_, j) => {
      const { tenant, tickets } = made[Math.floor(rand() * made.length)]!;
      const delays = [Math.floor(rand() * 4), Math.floor(rand() * 3)];
      return runWithTenant(tenant, async () => {
        await sleep(delays[0]);
        const rows = await stack.tenantry.db.query<TicketRow>(ticketsSql);
        await (delays[1] ? sleep(delays[1]) : immediate());
        const foreign = rows.filter((r) => r.tenant_id !== tenant.id || r.ctx !== tenant.id || !r.title.startsWith(`${tenant.slug} #`));
        if (foreign.length) failures.push(`call ${j} (${tenant.slug}): ${foreign.length} foreign rows`);
        if (rows.length !== tickets) failures.push(`call ${j} (${tenant.slug}): ${rows.length} rows, expected ${tickets}`);
      });
    });
    await Promise.all(calls);
    assert.deepEqual(failures, []);
    const [total] = await stack.admin.query<{ n: number }>(
      'select count(*)::int as n from app.tickets where tenant_id = any($1::uuid[])', [made.map((m) => m.tenant.id)]);
    assert.equal(total?.n, made.reduce((s, m) => s + m.tickets, 0));
  });

  it('db.query() is one round trip and one Sync; the naive sequence is four of each', async () => {
    const proxy = await FlightProxy.start(stack.databaseUrl);
    const pool = createPool(proxy.url(runtimeUrl(stack)), { max: 1 });
    const db = new DataPlane([new PooledPlacement(pool, stack.admin)]);
    const text = 'select tenant_id, title from tickets where status = $1 order by id';
    // The naive version awaits each statement, each with its own Sync; it uses the same named
    // prepared statements as the DataPlane, so the difference measured is the pipelining alone.
    const naive = async (tenant: Tenant) => {
      const conn = await pool.connect();
      try {
        await conn.query('begin', []);
        await conn.query("select set_config('app.tenant_id', $1, true), set_config('search_path', $2, true)", [tenant.id, 'app']);
        const rows = await conn.query<{ tenant_id: string; title: string }>(text, ['open']);
        await conn.query('commit', []);
        return rows;
      } finally {
        conn.release();
      }
    };
    const measure = async <T>(fn: () => Promise<T>): Promise<{ flights: number; syncs: number; describes: number; result: T }> => {
      const start = proxy.flights;
      const syncs = proxy.syncs;
      const describes = proxy.describes;
      const result = await fn();
      return { flights: proxy.flights - start, syncs: proxy.syncs - syncs, describes: proxy.describes - describes, result };
    };
    try {
      // Warm up: connect, and let the driver describe each prepared statement once.
      const cold = await measure(() => runWithTenant(A, () => db.query(text, ['open'])));
      assert.ok(cold.flights >= 1);
      assert.ok(cold.describes >= 1, 'the first execution on a connection describes its statements');
      await runWithTenant(A, () => db.query(text, ['open']));
      await naive(A);

      const piped = await measure(() => runWithTenant(A, () => db.query<{ tenant_id: string; title: string }>(text, ['open'])));
      const slow = await measure(() => naive(A));
      assert.equal(piped.flights, 1, 'db.query(): context and statement in one flight');
      assert.equal(piped.describes, 0, 'a warm prepared statement is not described again: its row description is kept');
      assert.equal(piped.syncs, 1, 'db.query(): context and statement before a single Sync');
      assert.equal(slow.flights, 4, 'awaited BEGIN, set_config, SELECT, COMMIT: four flights');
      assert.equal(slow.syncs, 4, 'awaited BEGIN, set_config, SELECT, COMMIT: four Syncs');
      assert.deepEqual(piped.result, slow.result, 'both return the same rows');
      assert.ok(piped.result.length > 0 && piped.result.every((r) => r.tenant_id === A.id));
      // Other tenants on the warm connection: still one flight each.
      for (const t of [B, C, A]) {
        const again = await measure(() => runWithTenant(t, () => db.query<{ tenant_id: string }>(text, ['open'])));
        assert.equal(again.flights, 1, `${t.slug}: one flight`);
        assert.equal(again.syncs, 1, `${t.slug}: one Sync`);
        assert.ok(again.result.every((r) => r.tenant_id === t.id));
      }
      assert.equal(proxy.connections, 1, 'all of it on one connection');
    } finally {
      await db.close();
      await proxy.close();
    }
  });
});
