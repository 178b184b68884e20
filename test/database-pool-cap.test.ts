/**
 * The database placement under many tenants: 210 tenant databases behind a budget of 10 server
 * connections (pool size 1). Touching every tenant never holds more than 10 connections of the
 * runtime role on tenant databases (sampled from pg_stat_activity every 20 ms by a separate
 * superuser connection), every request either succeeds or is refused with database_busy, and
 * when all 10 are busy an 11th tenant is refused fast (503 + Retry-After over HTTP) while the busy
 * tenants go on. Each tenant saw only its own row throughout.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { isTenantryError, runWithTenant, type Tenant } from '../src/index.js';
import { DatabasePlacement } from '../src/data/database/database-placement.js';
import { roles } from '../src/data/bootstrap.js';
import { tenantDatabase } from '../src/core/tenant-ids.js';
import { createPool, type Sql } from '../src/data/driver/index.js';
import { serverUrl, startTestStack, type TestStack } from './helpers.js';
import { Leftovers, mapLimit, rejectsWithCode, seedTenant, type SeededTenant } from './placement-helpers.js';

const CAP = 10;
const TENANTS = 210;
const CREATE_PARALLEL = 4;
const TOUCH_BATCH = 20;
const ACQUIRE_TIMEOUT_MS = 200;

type Seen = { tenant_id: string; title: string; db: string };
const seenSql = 'select tenant_id::text, title, current_database()::text as db from tickets';
const titleOf = (i: number) => `the only ticket of tenant #${i}`;

/** `p`, or a failure if it has not settled within `ms` (a stuck acquire must fail the test, not hang it). */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not settled after ${ms} ms`)), ms); });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Samples, every 20 ms from its own superuser connection, how many connections the runtime role
 * holds on tenant databases (all of them, and those of this test's tenants), and the placement's
 * reserved budget.
 */
class ConnectionSampler {
  maxAll = 0;
  maxMine = 0;
  maxReserved = 0;
  samples = 0;
  #stopped = false;
  #loop: Promise<void> | undefined;
  readonly #sql: Sql;

  constructor(private readonly mine: () => readonly string[], private readonly placement: DatabasePlacement) {
    this.#sql = createPool(serverUrl(), { max: 1, applicationName: 'tenantry-test-sampler' });
  }

  async start(): Promise<void> {
    await this.sample(); // connected before the load starts
    this.#loop = (async () => {
      while (!this.#stopped) {
        await this.sample();
        await sleep(20);
      }
    })();
  }

  async sample(): Promise<void> {
    this.maxReserved = Math.max(this.maxReserved, this.placement.connectionsReserved);
    const [row] = await this.#sql.query<{ total: number; mine: number }>(
      `select count(*)::int as total, count(*) filter (where datname = any($2::text[]))::int as mine
         from pg_stat_activity where datname like 'tenant_%' and usename = $1`, [roles.app, [...this.mine()]]);
    this.maxAll = Math.max(this.maxAll, row!.total);
    this.maxMine = Math.max(this.maxMine, row!.mine);
    this.maxReserved = Math.max(this.maxReserved, this.placement.connectionsReserved);
    this.samples++;
  }

  /** Connections of the runtime role on this test's tenant databases right now. */
  async now(): Promise<number> {
    const [row] = await this.#sql.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where usename = $1 and datname = any($2::text[])`, [roles.app, [...this.mine()]]);
    return row!.n;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    await this.#sql.end();
  }
}

describe(`database placement: ${TENANTS} tenant databases, a budget of ${CAP} connections`, () => {
  let stack: TestStack;
  let placement: DatabasePlacement;
  let sampler: ConnectionSampler;
  const leftovers = new Leftovers();
  const tenants: SeededTenant[] = [];
  const names: string[] = [];
  /** Every row every tenant saw, by tenant id. */
  const seen = new Map<string, Seen[][]>();

  const record = (t: Tenant, rows: readonly Seen[]) => {
    const list = seen.get(t.id) ?? [];
    list.push(rows.map((r) => ({ ...r })));
    seen.set(t.id, list);
  };
  const touch = async (s: SeededTenant): Promise<Seen[]> => {
    const rows = await runWithTenant(s.tenant, () => stack.tenantry.db.query<Seen>(seenSql));
    assert.ok(placement.connectionsReserved <= CAP, `reserved ${placement.connectionsReserved} > ${CAP}`);
    record(s.tenant, rows);
    return rows;
  };

  before(async () => {
    // No demo tenants: only this test's tenants use the placement (and no fixed-id tenant
    // database is shared with a stack of another test file running at the same time).
    stack = await startTestStack({
      tenantDatabases: { maxConnections: CAP, poolSize: 1, acquireTimeoutMs: ACQUIRE_TIMEOUT_MS, idleSeconds: 60 },
    }, []);
    const p = stack.tenantry.db.placement('database');
    assert.ok(p instanceof DatabasePlacement);
    placement = p;
    sampler = new ConnectionSampler(() => names, placement);
    await sampler.start();
  });

  after(async () => {
    await sampler?.stop();
    // Dropped several at a time (WITH (FORCE) closes the placement's idle connections) before
    // the stack's close(), which would drop them one by one.
    const started = performance.now();
    await leftovers.drop(CREATE_PARALLEL);
    console.log(`dropped ${leftovers.databases.size} tenant databases in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    await stack?.close();
  });

  it(`creates ${TENANTS} database tenants (${CREATE_PARALLEL} at a time), each with one ticket`, { timeout: 15 * 60_000 }, async (t) => {
    const started = performance.now();
    const created = await mapLimit(Array.from({ length: TENANTS }, (_, i) => i), CREATE_PARALLEL, async (i) => {
      const s = await seedTenant(stack.tenantry, leftovers, {
        slug: `cap-${i}`, isolation: 'database', titles: [titleOf(i)], owner: i === 0,
      });
      names.push(tenantDatabase(s.tenant.id));
      return s;
    });
    const seconds = (performance.now() - started) / 1000;
    tenants.push(...created);
    const msg = `created ${TENANTS} database tenants in ${seconds.toFixed(1)} s (${((seconds * 1000) / TENANTS).toFixed(0)} ms each, ${CREATE_PARALLEL} in parallel)`;
    t.diagnostic(msg);
    const [row] = await stack.admin.query<{ n: number }>('select count(*)::int as n from pg_database where datname = any($1::text[])', [names]);
    assert.equal(row!.n, TENANTS, 'one database per tenant');
    assert.equal(new Set(names).size, TENANTS);
    assert.ok(sampler.maxMine <= CAP, `while creating: ${sampler.maxMine} runtime connections on tenant databases`);
    assert.ok(placement.openPools <= CAP, `open pools ${placement.openPools}`);
  });

  it(`touching every tenant, ${TOUCH_BATCH} at a time, never holds more than ${CAP} connections`, { timeout: 5 * 60_000 }, async (t) => {
    assert.equal(tenants.length, TENANTS, 'needs the tenants of the previous test');
    const outcomes = { ok: 0, busy: 0, other: [] as string[] };
    const refused: typeof tenants = [];
    const started = performance.now();
    for (let i = 0; i < tenants.length; i += TOUCH_BATCH) {
      const batch = tenants.slice(i, i + TOUCH_BATCH);
      // Each request waits at most acquireTimeoutMs for a connection, then runs one query.
      const settled = await within(10_000, Promise.allSettled(batch.map((s) => touch(s))), `batch at ${i}`);
      for (const [j, r] of settled.entries()) {
        if (r.status === 'fulfilled') outcomes.ok++;
        else if (isTenantryError(r.reason) && r.reason.code === 'database_busy') { outcomes.busy++; refused.push(batch[j]!); }
        else outcomes.other.push(`${batch[j]!.tenant.slug}: ${(r.reason as Error)?.stack ?? String(r.reason)}`);
      }
      assert.ok(placement.openPools <= CAP, `open pools ${placement.openPools}`);
    }
    await sampler.sample();
    const msg = `touched ${TENANTS} tenants in ${((performance.now() - started) / 1000).toFixed(1)} s: ${outcomes.ok} ok, ${outcomes.busy} database_busy, ` +
      `${outcomes.other.length} other; max ${sampler.maxMine} runtime connections on these tenant databases ` +
      `(${sampler.maxAll} on any tenant_%), max reserved ${sampler.maxReserved}, ${sampler.samples} samples`;
    t.diagnostic(msg);
    assert.deepEqual(outcomes.other, [], 'only success or database_busy');
    assert.equal(outcomes.ok + outcomes.busy, TENANTS);
    // Without the crowd, every refused tenant gets through.
    for (const s of refused) assert.equal((await touch(s)).length, 1, s.tenant.slug);
    assert.ok(outcomes.ok > 0, 'some requests went through');
    assert.ok(sampler.samples >= 10, 'the sampler ran');
    assert.ok(sampler.maxMine >= 1, 'the sampler saw the load');
    assert.ok(sampler.maxMine <= CAP, `saw ${sampler.maxMine} connections of ${roles.app} on tenant databases (cap ${CAP})`);
    assert.ok(sampler.maxReserved <= CAP, `connectionsReserved reached ${sampler.maxReserved}`);
    assert.ok(await sampler.now() <= CAP);
  });

  it(`with ${CAP} tenants busy, an ${CAP + 1}th is refused fast with database_busy (503 + Retry-After over HTTP), the busy ones go on`, async (t) => {
    assert.equal(tenants.length, TENANTS, 'needs the tenants of the previous tests');
    const httpTenant = tenants[0]!;
    const busy = tenants.slice(1, 1 + CAP);
    const eleventh = tenants[1 + CAP]!;

    // A token for the HTTP tenant, taken before the connections are all busy.
    const login = await stack.app.inject({
      method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': httpTenant.tenant.slug },
      payload: { email: httpTenant.owner!.email, password: httpTenant.owner!.password },
    });
    assert.equal(login.statusCode, 200, login.body);
    const token = login.json().access_token as string;

    let started = 0;
    let allStarted!: () => void;
    const ready = new Promise<void>((resolve) => { allStarted = resolve; });
    const holds = busy.map((s) => runWithTenant(s.tenant, () => stack.tenantry.db.transaction(async (tx) => {
      if (++started === busy.length) allStarted();
      await tx.query('select pg_sleep(1)');
      return tx.query<Seen>(seenSql);
    })));
    const holdsSettled = Promise.allSettled(holds);
    const first = await within(10_000, Promise.race([ready.then(() => 'ready' as const), holdsSettled.then(() => 'ended' as const)]), 'starting the busy transactions');
    assert.equal(first, 'ready', 'every busy transaction started before any ended');
    assert.equal(placement.connectionsReserved, CAP, 'every connection of the budget is held');
    assert.equal(placement.openPools, CAP);

    // The 11th tenant: refused after acquireTimeoutMs, not after the sleeps end.
    let t0 = performance.now();
    await assert.rejects(runWithTenant(eleventh.tenant, () => stack.tenantry.db.query(seenSql)), (err: unknown) => {
      assert.ok(isTenantryError(err), String(err));
      assert.equal(err.code, 'database_busy');
      assert.equal(err.status, 503);
      assert.deepEqual(err.details, { retry_after: 1 });
      return true;
    });
    const refusedMs = performance.now() - t0;
    assert.ok(refusedMs < 800, `refused after ${refusedMs.toFixed(0)} ms`);
    assert.ok(refusedMs >= ACQUIRE_TIMEOUT_MS - 20, `refused after ${refusedMs.toFixed(0)} ms, before the acquire timeout`);

    // A busy tenant still gets its query through: it queues on its own pool, it is not refused.
    const again = touch(busy[0]!);

    // Over HTTP: 503, Retry-After, code database_busy.
    t0 = performance.now();
    const res = await stack.app.inject({
      method: 'GET', url: '/api/v1/tickets', headers: { host: `${httpTenant.tenant.slug}.localhost`, authorization: `Bearer ${token}` },
    });
    const httpMs = performance.now() - t0;
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.headers['retry-after'], '1');
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.equal(res.json().code, 'database_busy');
    assert.equal(res.json().retry_after, 1);
    assert.ok(httpMs < 800, `HTTP refused after ${httpMs.toFixed(0)} ms`);
    t.diagnostic(`11th tenant refused after ${refusedMs.toFixed(0)} ms; HTTP 503 after ${httpMs.toFixed(0)} ms`);

    const results = await within(10_000, holdsSettled, 'the busy transactions');
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 'fulfilled', `busy tenant ${busy[i]!.tenant.slug}: ${r.status === 'rejected' ? (r.reason as Error).message : ''}`);
      record(busy[i]!.tenant, (r as PromiseFulfilledResult<Seen[]>).value);
    }
    assert.equal((await again).length, 1, 'the busy tenant\'s later query went through');

    // Once the load is gone, the refused ones get through too.
    assert.equal((await touch(eleventh)).length, 1);
    const ok = await stack.app.inject({
      method: 'GET', url: '/api/v1/tickets', headers: { host: `${httpTenant.tenant.slug}.localhost`, authorization: `Bearer ${token}` },
    });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual((ok.json().data as { title: string }[]).map((x) => x.title), [titleOf(0)]);
    await sampler.sample();
    assert.ok(sampler.maxMine <= CAP, `saw ${sampler.maxMine} connections`);
    assert.ok(sampler.maxReserved <= CAP, `connectionsReserved reached ${sampler.maxReserved}`);
  });

  it('every tenant that ran saw only its own row, in its own database', async () => {
    assert.equal(seen.size, TENANTS, 'every tenant has results');
    for (const [i, s] of tenants.entries()) {
      const runs = seen.get(s.tenant.id) ?? [];
      for (const rows of runs) {
        assert.deepEqual(rows, [{ tenant_id: s.tenant.id, title: titleOf(i), db: tenantDatabase(s.tenant.id) }], `${s.tenant.slug}`);
      }
    }
  });
});
