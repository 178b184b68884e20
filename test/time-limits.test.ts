/**
 * Time limits over HTTP, shown with a PATCH that waits on a row lock held by the test:
 * - a request whose client goes away has its running statement cancelled on the server (the data
 *   plane gets a cancel signal from the tenancy plugin with the tenant context): the waiting
 *   statement must leave pg_stat_activity while the lock is still held;
 * - a statement past TENANTRY_STATEMENT_TIMEOUT_MS is cancelled and answered 503 query_timeout,
 *   problem+json, and writes nothing.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pooledDemoTenants, startTestStack, type TestStack } from './helpers.js';

describe('client gone', () => {
  let stack: TestStack;
  let port: number;

  before(async () => {
    // No statement timeout: only the hang-up can end the wait.
    stack = await startTestStack({ statementTimeoutMs: 0 }, pooledDemoTenants);
    await stack.app.listen({ port: 0, host: '127.0.0.1' });
    port = (stack.app.server.address() as { port: number }).port;
  });
  after(async () => { await stack?.close(); });

  const waiting = async () => {
    const [row] = await stack.admin.query<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where application_name = 'tenantry-app' and state = 'active' and wait_event_type = 'Lock'");
    return row?.n ?? 0;
  };

  it('a statement waiting on a lock is cancelled when the client hangs up', async () => {
    const acme = stack.tenants.find((t) => t.slug === 'acme')!;
    const token = await stack.token('acme', 'owner');
    const [ticket] = await stack.admin.query<{ id: string }>('select id from app.tickets where tenant_id = $1 limit 1', [acme.id]);
    const locker = await stack.admin.connect();
    try {
      await locker.query('begin');
      await locker.query('select 1 from app.tickets where id = $1 for update', [ticket!.id]);
      const req = http.request({
        host: '127.0.0.1', port, method: 'PATCH', path: `/api/v1/tickets/${ticket!.id}`,
        headers: { 'x-tenant': 'acme', authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      });
      req.on('error', () => {});
      req.end(JSON.stringify({ status: 'pending' }));
      let seen = 0;
      for (let i = 0; i < 100 && !seen; i++) {
        await sleep(20);
        seen = await waiting();
      }
      assert.equal(seen, 1, 'the PATCH waits on the row lock');
      req.destroy();
      let left = seen;
      for (let i = 0; i < 100 && left; i++) {
        await sleep(20);
        left = await waiting();
      }
      assert.equal(left, 0, 'the waiting statement was cancelled while the lock is still held');
    } finally {
      await locker.query('rollback').catch(() => {});
      locker.release();
    }
    const [still] = await stack.admin.query<{ status: string }>('select status from app.tickets where id = $1', [ticket!.id]);
    assert.notEqual(still?.status, 'pending', 'the cancelled update wrote nothing');
  });
});

describe('statement timeout over HTTP', () => {
  let stack: TestStack;

  before(async () => { stack = await startTestStack({ statementTimeoutMs: 300 }, pooledDemoTenants); });
  after(async () => { await stack?.close(); });

  it('a statement past the timeout is answered 503 query_timeout (problem+json) and writes nothing', async () => {
    const acme = stack.tenants.find((t) => t.slug === 'acme')!;
    const token = await stack.token('acme', 'owner');
    const [ticket] = await stack.admin.query<{ id: string; status: string }>('select id, status from app.tickets where tenant_id = $1 limit 1', [acme.id]);
    const target = ticket!.status === 'pending' ? 'open' : 'pending';
    const locker = await stack.admin.connect();
    try {
      await locker.query('begin');
      await locker.query('select 1 from app.tickets where id = $1 for update', [ticket!.id]);
      const started = Date.now();
      const res = await stack.app.inject({
        method: 'PATCH', url: `/api/v1/tickets/${ticket!.id}`,
        headers: { 'x-tenant': 'acme', authorization: `Bearer ${token}` }, payload: { status: target },
      });
      const took = Date.now() - started;
      assert.equal(res.statusCode, 503, res.body);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(res.json().code, 'query_timeout');
      assert.ok(took >= 250 && took < 3_000, `cancelled at the 300 ms limit, took ${took} ms`);
    } finally {
      await locker.query('rollback').catch(() => {});
      locker.release();
    }
    const [after] = await stack.admin.query<{ status: string }>('select status from app.tickets where id = $1', [ticket!.id]);
    assert.equal(after?.status, ticket!.status, 'the timed-out update wrote nothing');
  });
});
