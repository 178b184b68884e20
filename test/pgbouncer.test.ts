/**
 * Behind PgBouncer 1.18 in transaction mode (the pooler of every Debian/Ubuntu LTS of its time):
 * - the outside finding reproduced: with named prepared statements, concurrent scoped reads through
 *   PgBouncer fail (a statement parsed on one server connection is executed on another) — which
 *   also proves these tests really go through PgBouncer;
 * - with TENANTRY_POOLER=transaction (no named statements) the same load succeeds, every read sees
 *   exactly its tenant, and a read is still one round trip and one Sync.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runWithTenant, type Tenant } from '../src/index.js';
import { DataPlane } from '../src/data/data-plane.js';
import { PooledPlacement } from '../src/data/pooled/pooled-placement.js';
import { createPool, withEndpoint, type Sql } from '../src/data/driver/index.js';
import { FlightProxy } from './flight-proxy.js';
import { pooledDemoTenants, runThroughPgBouncer, startTestStack, type TestStack } from './helpers.js';
import { runtimeUrl, tenantById } from './isolation-probes.js';

await runThroughPgBouncer(async () => {
  describe('data plane through PgBouncer (transaction mode)', () => {
    let stack: TestStack;
    let tenants: Tenant[];
    const viaBouncer = () => withEndpoint(runtimeUrl(stack), process.env.TEST_PGBOUNCER_URL!);
    const text = "select tenant_id, current_setting('app.tenant_id') as ctx from tickets order by id";

    before(async () => {
      stack = await startTestStack({}, pooledDemoTenants);
      tenants = await Promise.all(stack.tenants.map((t) => tenantById(stack, t.id)));
    });
    after(async () => { await stack?.close(); });

    /** 200 concurrent scoped reads over a client pool of 40 (PgBouncer shares 20 server connections). */
    const load = async (pool: Sql) => {
      const db = new DataPlane([new PooledPlacement(pool, stack.admin)]);
      const failures: string[] = [];
      try {
        await Promise.all(Array.from({ length: 200 }, async (_, i) => {
          const tenant = tenants[i % tenants.length]!;
          try {
            const rows = await runWithTenant(tenant, () => db.query<{ tenant_id: string; ctx: string }>(text));
            if (!rows.length || rows.some((r) => r.tenant_id !== tenant.id || r.ctx !== tenant.id)) failures.push(`${i}: foreign or no rows`);
          } catch (err) {
            failures.push(`${i}: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
          }
        }));
      } finally {
        await db.close();
      }
      return failures;
    };

    it('named prepared statements fail through PgBouncer 1.18 (the outside finding)', async () => {
      const failures = await load(createPool(viaBouncer(), { max: 40, prepare: true }));
      assert.ok(failures.length > 0, 'with named statements some reads must fail behind a transaction pooler');
      assert.ok(failures.every((f) => /prepared statement|26000|42P05|08P01/.test(f)), failures.slice(0, 3).join('; '));
    });

    it('without named statements (TENANTRY_POOLER=transaction) 200 concurrent reads all succeed, each in its tenant', async () => {
      assert.deepEqual(await load(createPool(viaBouncer(), { max: 40, prepare: false })), []);
    });

    it('a read through PgBouncer is still one round trip and one Sync', async () => {
      const proxy = await FlightProxy.start(process.env.TEST_PGBOUNCER_URL!);
      const db = new DataPlane([new PooledPlacement(createPool(proxy.url(viaBouncer()), { max: 1, prepare: false }), stack.admin)]);
      try {
        await runWithTenant(tenants[0]!, () => db.query(text));
        for (const t of tenants) {
          const flights = proxy.flights;
          const syncs = proxy.syncs;
          const rows = await runWithTenant(t, () => db.query<{ tenant_id: string }>(text));
          assert.ok(rows.length > 0 && rows.every((r) => r.tenant_id === t.id));
          assert.equal(proxy.flights - flights, 1, `${t.slug}: one flight`);
          assert.equal(proxy.syncs - syncs, 1, `${t.slug}: one Sync`);
        }
      } finally {
        await db.close();
        await proxy.close();
      }
    });

    it('the toolkit started with pooler=transaction serves every tenant through it', async () => {
      assert.equal(stack.tenantry.options.pooler, 'transaction');
      assert.ok(stack.tenantry.options.runtimeUrl?.includes(String(new URL(process.env.TEST_PGBOUNCER_URL!).port)));
      for (const t of tenants) {
        const rows = await runWithTenant(t, () => stack.tenantry.db.query<{ tenant_id: string }>(text));
        assert.ok(rows.length > 0 && rows.every((r) => r.tenant_id === t.id));
      }
    });
  });
});
