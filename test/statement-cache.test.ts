/**
 * Prepared statements of schema tenants: PostgreSQL re-plans a prepared statement whenever the
 * search_path or the role differ from when it was planned, so each schema tenant's statements are
 * prepared under names of their own on a connection (plan key = tenant id), what a connection
 * keeps is bounded (least recently used closed), and a tenant goes back to the connection (lane)
 * that has them when it is free. Read on the connection itself from pg_prepared_statements.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runWithTenant, type Tenant } from '../src/index.js';
import { DataPlane } from '../src/data/data-plane.js';
import { tenantMigrator } from '../src/migrate/tenant-migrator.js';
import { SchemaPlacement } from '../src/data/schema/schema-placement.js';
import { PooledPlacement } from '../src/data/pooled/pooled-placement.js';
import { createPool, type Sql } from '../src/data/driver/index.js';
import { startTestStack, type TestStack } from './helpers.js';
import { runtimeUrl } from './isolation-probes.js';
import { Leftovers, seedTenant } from './placement-helpers.js';

describe('statement cache and lanes', () => {
  let stack: TestStack;
  const leftovers = new Leftovers();
  const schemaTenants: Tenant[] = [];
  const text = 'select id, title from tickets order by id';

  before(async () => {
    stack = await startTestStack({}, []);
    for (let i = 0; i < 5; i++) {
      const s = await seedTenant(stack.tenantry, leftovers, { slug: `cache-s${i}`, isolation: 'schema', titles: [`s${i}`] });
      schemaTenants.push(s.tenant);
    }
  });
  after(async () => {
    await stack?.close();
    await leftovers.drop();
  });

  /** A data plane over `pool` with the schema placement (the pooled one only for its admin). */
  const plane = (pool: Sql) => new DataPlane([
    new SchemaPlacement(pool, stack.admin, tenantMigrator(async () => [])), new PooledPlacement(pool, stack.admin),
  ]);

  /** The prepared statements of the one connection of a max-1 pool whose text is `text`. */
  const prepared = async (pool: Sql) => {
    const rows = await pool.query<{ name: string }>('select name from pg_prepared_statements where statement = $1 order by name', [text]);
    return rows.map((r) => r.name);
  };

  it("a schema tenant's statement is prepared once per tenant on a connection, and reused", async () => {
    const pool = createPool(runtimeUrl(stack), { max: 1 });
    const db = plane(pool);
    try {
      for (let round = 0; round < 4; round++) {
        for (const t of schemaTenants.slice(0, 3)) {
          const rows = await runWithTenant(t, () => db.query<{ title: string }>(text));
          assert.deepEqual(rows.map((r) => r.title), [t.slug.replace('cache-', '')]);
        }
      }
      const names = await prepared(pool);
      assert.equal(names.length, 3, `one prepared statement per tenant, reused over 4 rounds: ${names.join(', ')}`);
      assert.equal(new Set(names).size, 3);
    } finally {
      await db.close();
    }
  });

  it('the statements a connection keeps are bounded: the least recently used are closed', async () => {
    const pool = createPool(runtimeUrl(stack), { max: 1, statementCache: 3 });
    const db = plane(pool);
    try {
      for (const t of schemaTenants) await runWithTenant(t, () => db.query(text));
      // The context statement is one of the three kept; two tenant statements remain.
      const names = await prepared(pool);
      assert.ok(names.length <= 2, `at most the cache's size: ${names.join(', ')}`);
      const [all] = await pool.query<{ n: number }>('select count(*)::int as n from pg_prepared_statements');
      assert.ok(all!.n <= 3 + 1, `the connection holds at most 3 named statements (+ this probe's): ${all!.n}`);
      // Every tenant still reads its own rows (an evicted statement is prepared again).
      for (const t of schemaTenants) {
        const rows = await runWithTenant(t, () => db.query<{ title: string }>(text));
        assert.deepEqual(rows.map((r) => r.title), [t.slug.replace('cache-', '')]);
      }
    } finally {
      await db.close();
    }
  });

  it('with lanes, a tenant gets the connection that served it whenever that one is free', async () => {
    const pool = createPool(runtimeUrl(stack), { max: 4, lanes: 4 });
    const db = plane(pool);
    const pidSql = 'select pg_backend_pid() as pid';
    try {
      const pids = new Map<string, Set<number>>();
      for (let round = 0; round < 5; round++) {
        for (const t of schemaTenants) {
          const [row] = await runWithTenant(t, () => db.query<{ pid: number }>(pidSql));
          const seen = pids.get(t.id) ?? new Set<number>();
          seen.add(row!.pid);
          pids.set(t.id, seen);
        }
      }
      for (const t of schemaTenants) assert.equal(pids.get(t.id)!.size, 1, `${t.slug} always on one connection when it is free`);
      // With the tenant's connection busy, the next request waits for it (planning again elsewhere
      // costs more than a short wait), but once one waits there, the next takes a free one.
      const t = schemaTenants[0]!;
      const home = [...pids.get(t.id)!][0]!;
      const busy = runWithTenant(t, () => db.query('select pg_sleep(0.3)'));
      const waiting = runWithTenant(t, () => db.query<{ pid: number }>(pidSql));
      const started = Date.now();
      const [other] = await runWithTenant(t, () => db.query<{ pid: number }>(pidSql));
      assert.ok(Date.now() - started < 250, 'the third did not wait for the busy connection');
      assert.notEqual(other!.pid, home, 'it ran on another connection');
      const [second] = await waiting;
      assert.equal(second!.pid, home, 'the second waited for its own connection');
      await busy;
    } finally {
      await db.close();
    }
  });

  it('with every lane busy, a caller gets whichever connection frees first (no queue behind one lane)', async () => {
    const pool = createPool(runtimeUrl(stack), { max: 2, lanes: 2 });
    try {
      const slow = pool.query('select pg_sleep(1.0)');
      const quick = pool.query('select pg_sleep(0.2)');
      const started = Date.now();
      await pool.query('select 1');
      const waited = Date.now() - started;
      assert.ok(waited < 800, `served when the quicker lane freed (~200 ms), not behind the slow one: ${waited} ms`);
      await Promise.all([slow, quick]);
      // And an affinity whose lane is taken, with a caller already waiting there, also takes any.
      const t = schemaTenants[1]!.id;
      const a = pool.connect(t);
      const first = await a;
      const busyElsewhere = pool.query('select pg_sleep(0.2)');
      const queuedOnOwn = pool.connect(t);
      const startedAgain = Date.now();
      const other = pool.connect(t);
      setTimeout(() => first.release(), 1_000);
      const got = await other;
      assert.ok(Date.now() - startedAgain < 800, 'the third caller of a busy lane took the other lane when it freed');
      got.release();
      (await queuedOnOwn).release();
      await busyElsewhere;
    } finally {
      await pool.end();
    }
  });

  it('behind a transaction pooler (prepare off) nothing is prepared', async () => {
    const pool = createPool(runtimeUrl(stack), { max: 1, prepare: false });
    const db = plane(pool);
    try {
      for (const t of schemaTenants) await runWithTenant(t, () => db.query(text));
      const [all] = await pool.query<{ n: number }>('select count(*)::int as n from pg_prepared_statements');
      assert.equal(all!.n, 0);
    } finally {
      await db.close();
    }
  });

});
