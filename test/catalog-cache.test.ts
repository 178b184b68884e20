/**
 * The catalog cache: changes reach every process at once, and a catalog that does not answer is an outage (503), not a hang and never a 404: here the
 * tenants table is held under an ACCESS EXCLUSIVE lock (as a careless migration would), so
 * every uncached lookup blocks inside PostgreSQL until the deadline.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Tenantry, withPlatformScope } from '../src/index.js';
import { buildServer } from '../app/server.js';
import { ADMIN_TOKEN, pooledDemoTenants, startTestStack, startTestTenantry, type TestStack } from './helpers.js';

const TIMEOUT_MS = 400;

describe('catalog deadline', () => {
  let stack: TestStack;
  before(async () => { stack = await startTestStack({ catalogTimeoutMs: TIMEOUT_MS }, pooledDemoTenants.slice(0, 1)); });
  after(async () => { await stack.close(); });

  const tickets = (tenant: string) => stack.app.inject({ method: 'GET', url: '/api/v1/tickets', headers: { 'x-tenant': tenant } });

  it(`a lookup blocked by a lock answers 503 catalog_unavailable after ~${TIMEOUT_MS} ms, then 404 once the lock is gone`, { timeout: 30_000 }, async () => {
    // Control: the catalog answers, so an unknown tenant is a 404.
    assert.equal((await tickets('never-seen-1')).statusCode, 404);
    const locker = await stack.admin.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table tenantry.tenants in access exclusive mode');
      const started = Date.now();
      const res = await tickets('never-seen-2');
      const took = Date.now() - started;
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.equal((res.json() as { code: string }).code, 'catalog_unavailable');
      assert.ok(took >= TIMEOUT_MS - 50, `answered after ${took} ms: before the deadline, so not the deadline`);
      assert.ok(took < TIMEOUT_MS + 5_000, `answered after ${took} ms`);
    } finally {
      await locker.query('rollback');
      locker.release();
    }
    assert.equal((await tickets('never-seen-3')).statusCode, 404);
  });

  it('a suspension made by another process, or by hand in SQL, reaches this process at once (LISTEN/NOTIFY), not after the TTL', { timeout: 60_000 }, async () => {
    // A second process on the same database, with a cache that would hold entries for 10 minutes.
    const other = await startTestTenantry(stack.databaseUrl, { catalogCache: { max: 100, ttlMs: 600_000 } });
    const otherApp = await buildServer({ tenantry: other, adminToken: ADMIN_TOKEN });
    const acme = pooledDemoTenants[0]!;
    const statusIn = async (t: Tenantry) => (await t.catalog.findBySlug(acme.slug))?.status;
    /** Polls until `t` sees `status`; returns how long that took, or fails after 5 s. */
    const seen = async (t: Tenantry, status: string) => {
      const started = Date.now();
      while ((await statusIn(t)) !== status) {
        assert.ok(Date.now() - started < 5_000, `still not ${status} after 5 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return Date.now() - started;
    };
    const me = (app: typeof otherApp) => app.inject({ method: 'GET', url: '/api/v1/me', headers: { 'x-tenant': acme.slug } });
    try {
      // Both caches hold acme, active.
      assert.equal(await statusIn(other), 'active');
      assert.equal((await me(otherApp)).statusCode, 401); // known tenant, no credential
      // Suspended through the toolkit in this process: the other one follows.
      await withPlatformScope({ actor: 'test', reason: 'cache invalidation' }, () => stack.tenantry.setTenantStatus(acme.id, 'suspended'));
      const took = await seen(other, 'suspended');
      assert.ok(took < 5_000);
      const refused = await me(otherApp);
      assert.equal(refused.statusCode, 403);
      assert.equal((refused.json() as { code: string }).code, 'tenant_suspended');
      // Resumed by hand in SQL, as an operator would: both processes follow.
      await stack.admin.query(`update tenantry.tenants set status = 'active' where id = $1`, [acme.id]);
      await seen(other, 'active');
      await seen(stack.tenantry, 'active');
      assert.equal((await me(otherApp)).statusCode, 401);
    } finally {
      await stack.admin.query(`update tenantry.tenants set status = 'active' where id = $1`, [acme.id]);
      await otherApp.close();
      await other.close();
    }
  });
});
