/**
 * A catalog that does not answer is an outage (503), not a hang and never a 404: here the
 * tenants table is held under an ACCESS EXCLUSIVE lock (as a careless migration would), so
 * every uncached lookup blocks inside PostgreSQL until the deadline.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pooledDemoTenants, startTestStack, type TestStack } from './helpers.js';

const TIMEOUT_MS = 400;

describe('catalog deadline', () => {
  let stack: TestStack;
  before(async () => { stack = await startTestStack({ catalogTimeoutMs: TIMEOUT_MS }, pooledDemoTenants.slice(0, 1)); });
  after(async () => { await stack.close(); });

  const tickets = (tenant: string) => stack.app.inject({ method: 'GET', url: '/api/v1/tickets', headers: { 'x-tenant': tenant } });

  it(`a lookup blocked by a lock answers 503 catalog_unavailable after ~${TIMEOUT_MS} ms, then 404 once the lock is gone`, { timeout: 30_000 }, async () => {
    // Control: the catalog answers, so an unknown tenant is a 404.
    assert.equal((await tickets('never-seen-1')).statusCode, 404);
    const locker = await stack.admin.reserve();
    try {
      await locker.unsafe('begin');
      await locker.unsafe('lock table tenantry.tenants in access exclusive mode');
      const started = Date.now();
      const res = await tickets('never-seen-2');
      const took = Date.now() - started;
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.equal((res.json() as { code: string }).code, 'catalog_unavailable');
      assert.ok(took >= TIMEOUT_MS - 50, `answered after ${took} ms: before the deadline, so not the deadline`);
      assert.ok(took < TIMEOUT_MS + 5_000, `answered after ${took} ms`);
    } finally {
      await locker.unsafe('rollback');
      locker.release();
    }
    assert.equal((await tickets('never-seen-3')).statusCode, 404);
  });
});
