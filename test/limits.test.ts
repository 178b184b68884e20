/**
 * Limits per plan and per tenant, in one process (the in-process store): the admin API and its
 * sources, admission (429 rate_limited / concurrency_limited with Retry-After and the IETF
 * RateLimit fields, decided before any work), the tenant's share of the shared pool (a tenant
 * whose transactions wait on locks cannot take the pool from another), the plan's statement
 * timeout, and quotas (403 quota_exceeded, nothing written, also under concurrent creations).
 * Across instances and with Redis: test/limits-instances.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_TOKEN, callAs, startTestStack, type TestStack } from './helpers.js';

describe('limits per plan and per tenant (in-process)', () => {
  let stack: TestStack;
  const id = (slug: string) => stack.tenants.find((t) => t.slug === slug)!.id;
  const admin = (method: 'GET' | 'PATCH', url: string, payload?: object) => stack.app.inject({
    method, url, headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, ...(payload ? { payload } : {}),
  });
  const setLimits = async (slug: string, patch: object) => {
    const res = await admin('PATCH', `/admin/api/tenants/${id(slug)}/limits`, patch);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const resetLimits = (slug: string) => setLimits(slug, {
    requests_per_second: null, burst: null, concurrent_requests: null, db_connections: null, statement_timeout_ms: null,
    quotas: { users: null, tickets: null, storage_bytes: null },
  });
  const count = async (table: string, slug: string) => {
    const schema = slug === 'globex' ? `t_${id(slug).replace(/-/g, '')}` : 'app';
    const [r] = await stack.admin.query<{ n: number }>(`select count(*)::int as n from ${schema}.${table} where tenant_id = $1`, [id(slug)]);
    return r!.n;
  };

  before(async () => {
    // Two of the demo tenants share the pool: acme (pooled, pro) and globex (schema, business).
    stack = await startTestStack({ poolMax: 4, dbQueueTimeoutMs: 10_000, plans: {} }, (await import('../app/fixtures.js')).demoTenants.slice(0, 2));
  });
  after(async () => { await stack?.close(); });

  it('GET /admin/api/plans lists the built-in plans with the application\'s quotas', async () => {
    const res = await admin('GET', '/admin/api/plans');
    assert.equal(res.statusCode, 200);
    const plans = res.json().data as { name: string; requests_per_second: number; quotas: Record<string, number | null> }[];
    assert.deepEqual(plans.map((p) => p.name).sort(), ['business', 'enterprise', 'free', 'pro']);
    const free = plans.find((p) => p.name === 'free')!;
    assert.deepEqual(Object.keys(free.quotas).sort(), ['storage_bytes', 'tickets', 'users']);
    assert.equal(plans.find((p) => p.name === 'enterprise')!.quotas.tickets, null);
  });

  it('GET/PATCH /admin/api/tenants/:id/limits: effective values, their sources, null resets to the plan', async () => {
    const before = (await admin('GET', `/admin/api/tenants/${id('acme')}/limits`)).json();
    assert.equal(before.plan, 'pro');
    assert.equal(before.sources.burst, 'plan');
    const changed = await setLimits('acme', { burst: 7, quotas: { users: 3 } });
    assert.equal(changed.limits.burst, 7);
    assert.equal(changed.sources.burst, 'tenant');
    assert.equal(changed.limits.quotas.users, 3);
    assert.equal(changed.sources.quotas.users, 'tenant');
    assert.equal(changed.sources.quotas.tickets, 'plan');
    assert.deepEqual(changed.overrides, { burst: 7, quotas: { users: 3 } });
    const reset = await setLimits('acme', { burst: null, quotas: { users: null } });
    assert.equal(reset.limits.burst, before.limits.burst);
    assert.deepEqual(reset.overrides, {});
    for (const bad of [{}, { burst: 0 }, { burst: 1.5 }, { requests_per_second: -1 }, { quotas: { seats: 1 } }, { color: 'red' }, { quotas: { users: -1 } }]) {
      const res = await admin('PATCH', `/admin/api/tenants/${id('acme')}/limits`, bad);
      assert.equal(res.statusCode, 400, JSON.stringify(bad));
      assert.equal(res.json().code, 'validation_failed');
    }
    assert.deepEqual((await admin('GET', `/admin/api/tenants/${id('acme')}/limits`)).json().overrides, {});
    const missing = await admin('GET', '/admin/api/tenants/01900000-0000-7000-8000-000000000000/limits');
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'tenant_not_found');
  });

  it('a tenant over its rate gets 429 rate_limited with Retry-After and RateLimit fields; another tenant does not', async () => {
    // The tokens first: a login is a request of the tenant too.
    const token = await stack.token('acme', 'agent');
    const globexToken = await stack.token('globex', 'agent');
    await setLimits('acme', { requests_per_second: 2, burst: 5 });
    try {
      const answers = [];
      for (let i = 0; i < 12; i++) answers.push(await callAs(stack, 'acme', token, 'GET', '/api/v1/tickets?limit=1'));
      const ok = answers.filter((r) => r.statusCode === 200);
      const limited = answers.filter((r) => r.statusCode === 429);
      assert.ok(ok.length >= 5 && ok.length <= 6, `5 (the burst, + at most one refilled) allowed, got ${ok.length}`);
      assert.equal(ok.length + limited.length, 12);
      for (const r of ok) {
        assert.equal(r.headers['ratelimit-policy'], '"tenant";q=5;w=3');
        assert.match(String(r.headers.ratelimit), /^"tenant";r=\d+;t=\d+$/);
      }
      assert.equal(ok[0]!.headers.ratelimit, '"tenant";r=4;t=1');
      const refusal = limited[0]!;
      assert.equal(refusal.json().code, 'rate_limited');
      assert.match(String(refusal.headers['content-type']), /^application\/problem\+json/);
      assert.ok(Number(refusal.headers['retry-after']) >= 1);
      assert.match(String(refusal.headers.ratelimit), /^"tenant";r=0;t=\d+$/);
      // globex has a bucket of its own.
      const globex = await callAs(stack, 'globex', globexToken, 'GET', '/api/v1/tickets?limit=1');
      assert.equal(globex.statusCode, 200);
      // A refused write does no work: nothing is written.
      const tickets = await count('tickets', 'acme');
      const post = await callAs(stack, 'acme', token, 'POST', '/api/v1/tickets', { title: 'refused' });
      assert.equal(post.statusCode, 429);
      assert.equal(await count('tickets', 'acme'), tickets);
      // After Retry-After, it is admitted again.
      await sleep(Number(refusal.headers['retry-after']) * 1000);
      assert.equal((await callAs(stack, 'acme', token, 'GET', '/api/v1/tickets?limit=1')).statusCode, 200);
    } finally {
      await resetLimits('acme');
    }
  });

  /** Holds a lock on one of the tenant's tickets: PATCHes of it wait (in the database) until release. */
  async function lockTicket(slug: string) {
    const schema = slug === 'globex' ? `t_${id(slug).replace(/-/g, '')}` : 'app';
    const [ticket] = await stack.admin.query<{ id: string }>(`select id from ${schema}.tickets where tenant_id = $1 order by id limit 1`, [id(slug)]);
    const locker = await stack.admin.connect();
    await locker.query('begin');
    await locker.query(`select 1 from ${schema}.tickets where id = $1 for update`, [ticket!.id]);
    return { ticketId: ticket!.id, release: async () => { await locker.query('rollback'); locker.release(); } };
  }

  it('a tenant at its concurrent requests gets 429 concurrency_limited; its requests finishing frees the slots', async () => {
    const token = await stack.token('acme', 'agent');
    await setLimits('acme', { concurrent_requests: 2 });
    const lock = await lockTicket('acme');
    try {
      const held = [1, 2].map(() => callAs(stack, 'acme', token, 'PATCH', `/api/v1/tickets/${lock.ticketId}`, { priority: 'high' }));
      await sleep(300);
      const third = await callAs(stack, 'acme', token, 'GET', '/api/v1/tickets?limit=1');
      assert.equal(third.statusCode, 429, `${third.body} ${JSON.stringify(third.headers)}`);
      assert.equal(third.json().code, 'concurrency_limited');
      assert.equal(third.headers['retry-after'], '1');
      await lock.release();
      assert.deepEqual((await Promise.all(held)).map((r) => r.statusCode), [200, 200]);
      assert.equal((await callAs(stack, 'acme', token, 'GET', '/api/v1/tickets?limit=1')).statusCode, 200);
    } finally {
      await lock.release().catch(() => {});
      await resetLimits('acme');
    }
  });

  it('a tenant never holds more than its share of the shared pool: another tenant is served while it waits', async () => {
    // Pool of 4; acme may hold 2. Eight acme writes wait on a lock: two hold connections, six wait
    // in acme's own queue, and globex (same pool) still gets a connection at once.
    await setLimits('acme', { db_connections: 2, concurrent_requests: 50 });
    const lock = await lockTicket('acme');
    try {
      const token = await stack.token('acme', 'agent');
      const held = Array.from({ length: 8 }, () => callAs(stack, 'acme', token, 'PATCH', `/api/v1/tickets/${lock.ticketId}`, { priority: 'low' }));
      await sleep(500);
      const [waiting] = await stack.admin.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where application_name = 'tenantry-app' and wait_event_type = 'Lock'");
      assert.equal(waiting!.n, 2, 'two acme transactions hold connections, the rest wait for acme\'s share');
      const globexToken = await stack.token('globex', 'agent');
      const t0 = performance.now();
      const globex = await callAs(stack, 'globex', globexToken, 'GET', '/api/v1/tickets?limit=5');
      const ms = performance.now() - t0;
      assert.equal(globex.statusCode, 200);
      assert.ok(ms < 2_000, `globex answered in ${ms.toFixed(0)} ms while acme waited`);
      await lock.release();
      assert.deepEqual((await Promise.all(held)).map((r) => r.statusCode), Array(8).fill(200));
    } finally {
      await lock.release().catch(() => {});
      await resetLimits('acme');
    }
  });

  it('the plan\'s statement timeout applies to the tenant\'s transactions (503 query_timeout), not to others', async () => {
    await setLimits('acme', { statement_timeout_ms: 200 });
    const lock = await lockTicket('acme');
    try {
      const token = await stack.token('acme', 'agent');
      const t0 = performance.now();
      const res = await callAs(stack, 'acme', token, 'PATCH', `/api/v1/tickets/${lock.ticketId}`, { priority: 'urgent' });
      const ms = performance.now() - t0;
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().code, 'query_timeout');
      assert.ok(ms < 2_000, `cancelled after ${ms.toFixed(0)} ms`);
    } finally {
      await lock.release();
      await resetLimits('acme');
    }
    const limits = (await admin('GET', `/admin/api/tenants/${id('globex')}/limits`)).json();
    assert.equal(limits.limits.statement_timeout_ms, 10_000);
  });

  it('quotas: 403 quota_exceeded naming the quota, nothing written — also when many creations race', async () => {
    const token = await stack.token('acme', 'owner');
    for (let round = 0; round < 5; round++) {
      const have = await count('tickets', 'acme');
      await setLimits('acme', { quotas: { tickets: have + 3 } });
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) =>
        callAs(stack, 'acme', token, 'POST', '/api/v1/tickets', { title: `quota race ${round}.${i}` })));
      const created = answers.filter((r) => r.statusCode === 201).length;
      const refused = answers.filter((r) => r.statusCode === 403);
      assert.equal(created, 3, `round ${round}: exactly the 3 left are created`);
      assert.equal(refused.length, 9);
      const problem = refused[0]!.json();
      assert.equal(problem.code, 'quota_exceeded');
      assert.equal(problem.quota, 'tickets');
      assert.equal(problem.limit, have + 3);
      assert.equal(await count('tickets', 'acme'), have + 3);
    }
    const users = await count('users', 'acme');
    await setLimits('acme', { quotas: { users } });
    const res = await callAs(stack, 'acme', token, 'POST', '/api/v1/users', { email: 'one.more@acme.test', name: 'One More', password: 'one-more-password', role: 'agent' });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().quota, 'users');
    assert.equal(await count('users', 'acme'), users);
    await resetLimits('acme');
    assert.equal((await callAs(stack, 'acme', token, 'POST', '/api/v1/users', { email: 'one.more@acme.test', name: 'One More', password: 'one-more-password', role: 'agent' })).statusCode, 201);
  });

  it('the storage quota refuses writes once the tenant\'s measured storage reaches it', async () => {
    const token = await stack.token('globex', 'owner');
    await setLimits('globex', { quotas: { storage_bytes: 1 } });
    try {
      const have = await count('tickets', 'globex');
      const res = await callAs(stack, 'globex', token, 'POST', '/api/v1/tickets', { title: 'over storage' });
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().quota, 'storage_bytes');
      assert.ok(res.json().used > 1);
      assert.equal(await count('tickets', 'globex'), have);
      // Reads go on.
      assert.equal((await callAs(stack, 'globex', token, 'GET', '/api/v1/tickets?limit=1')).statusCode, 200);
    } finally {
      await resetLimits('globex');
    }
  });

  it('creating a tenant on a plan that does not exist is 422 unknown_plan', async () => {
    const res = await stack.app.inject({
      method: 'POST', url: '/admin/api/tenants', headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      payload: { slug: 'no-such-plan', name: 'Nope', plan: 'platinum', owner: { email: 'o@nope.test', name: 'O', password: 'owner-password-1' } },
    });
    assert.equal(res.statusCode, 422, res.body);
    assert.equal(res.json().code, 'unknown_plan');
  });
});
