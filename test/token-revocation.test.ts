/**
 * A signed JWT stops working when its user is deleted, or their role or password changes: the
 * toolkit keeps the tenant's token revocations in memory (no lookup per request) and every process
 * hears of a new one at once (NOTIFY). In every placement: the process that made the change
 * refuses the old token at once, another process within moments, a process started later too;
 * a fresh login gets a token with the new role; an unrelated change (the name) revokes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { Tenantry } from '../src/index.js';
import { buildServer } from '../app/server.js';
import { ADMIN_TOKEN, startTestStack, startTestTenantry, type TestStack } from './helpers.js';

let stack: TestStack;
/** A second process, as far as the toolkit goes: its own Tenantry (catalog, caches, LISTEN). */
let other: { tenantry: Tenantry; app: FastifyInstance } | undefined;

const startOther = async () => {
  const tenantry = await startTestTenantry(stack.databaseUrl);
  return { tenantry, app: await buildServer({ tenantry, adminToken: ADMIN_TOKEN }) };
};

before(async () => {
  stack = await startTestStack();
  other = await startOther();
});
after(async () => {
  await other?.app.close();
  await other?.tenantry.close();
  await stack?.close();
});

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
async function call(app: FastifyInstance, slug: string, token: string, method: Method, url: string, payload?: object) {
  return app.inject({ method, url, headers: { 'x-tenant': slug, authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
}

async function login(slug: string, email: string, password: string): Promise<string> {
  const res = await stack.app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': slug }, payload: { email, password } });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().access_token as string;
}

async function newUser(slug: string, role: 'admin' | 'agent', tag: string) {
  const owner = await stack.token(slug, 'owner');
  const email = `${tag}-${role}@${slug}.test`;
  const password = `${tag}-password-123`;
  const res = await call(stack.app, slug, owner, 'POST', '/api/v1/users', { email, name: tag, role, password });
  assert.equal(res.statusCode, 201, res.body);
  return { id: res.json().id as string, email, password, token: await login(slug, email, password), owner };
}

function assertRevoked(res: { statusCode: number; body: string; json: () => { code: string } }, what: string) {
  assert.equal(res.statusCode, 401, `${what}: ${res.body}`);
  assert.equal(res.json().code, 'invalid_token', what);
}

/** Polls `app` until the token is refused; fails after 3 s. */
async function refusedSoon(app: FastifyInstance, slug: string, token: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    const res = await call(app, slug, token, 'GET', '/api/v1/tickets');
    if (res.statusCode === 401) {
      assertRevoked(res, 'other process');
      return Date.now() - started;
    }
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(Date.now() - started < 3_000, 'another process still accepts the token after 3 s');
    await sleep(20);
  }
}

describe('token revocation', () => {
  for (const slug of ['acme', 'globex', 'initech']) {
    it(`${slug}: a deleted user's token is refused at once here, moments later in another process, and by a process started later`, async (t) => {
      const u = await newUser(slug, 'agent', 'gone');
      for (const app of [stack.app, other!.app]) assert.equal((await call(app, slug, u.token, 'GET', '/api/v1/tickets')).statusCode, 200);
      const del = await call(stack.app, slug, u.owner, 'DELETE', `/api/v1/users/${u.id}`);
      assert.equal(del.statusCode, 204, del.body);
      for (const url of ['/api/v1/tickets', '/api/v1/me', '/api/v1/users']) assertRevoked(await call(stack.app, slug, u.token, 'GET', url), url);
      assertRevoked(await call(stack.app, slug, u.token, 'POST', '/api/v1/tickets', { title: 'from beyond' }), 'POST /tickets');
      t.diagnostic(`another process refused it after ${await refusedSoon(other!.app, slug, u.token)} ms`);
      // The owner's own token is untouched.
      assert.equal((await call(stack.app, slug, u.owner, 'GET', '/api/v1/tickets')).statusCode, 200);
    });

    it(`${slug}: a demoted admin's token is refused; a new login carries the new role`, async () => {
      const u = await newUser(slug, 'admin', 'demoted');
      const ok = await call(stack.app, slug, u.token, 'POST', '/api/v1/users', { email: `a-${slug}@x.test`, name: 'A', role: 'agent', password: 'password-1234' });
      assert.equal(ok.statusCode, 201, ok.body);
      const patch = await call(stack.app, slug, u.owner, 'PATCH', `/api/v1/users/${u.id}`, { role: 'agent' });
      assert.equal(patch.statusCode, 200, patch.body);
      assertRevoked(await call(stack.app, slug, u.token, 'POST', '/api/v1/users', { email: `b-${slug}@x.test`, name: 'B', role: 'agent', password: 'password-1234' }), 'old token');
      await refusedSoon(other!.app, slug, u.token);
      // Logging in again right away works, as an agent.
      const fresh = await login(slug, u.email, u.password);
      const me = await call(stack.app, slug, fresh, 'GET', '/api/v1/me');
      assert.equal(me.statusCode, 200, me.body);
      assert.equal(me.json().user.role, 'agent');
      const denied = await call(stack.app, slug, fresh, 'POST', '/api/v1/users', { email: `c-${slug}@x.test`, name: 'C', role: 'agent', password: 'password-1234' });
      assert.equal(denied.statusCode, 403, denied.body);
      assert.equal(denied.json().code, 'insufficient_role');
      assert.equal((await call(other!.app, slug, fresh, 'GET', '/api/v1/me')).statusCode, 200);
    });

    it(`${slug}: a new password ends the old sessions; a new name ends nothing`, async () => {
      const u = await newUser(slug, 'agent', 'renamed');
      const rename = await call(stack.app, slug, u.owner, 'PATCH', `/api/v1/users/${u.id}`, { name: 'Renamed' });
      assert.equal(rename.statusCode, 200, rename.body);
      // Same role given again: no change, no revocation.
      assert.equal((await call(stack.app, slug, u.owner, 'PATCH', `/api/v1/users/${u.id}`, { role: 'agent' })).statusCode, 200);
      assert.equal((await call(stack.app, slug, u.token, 'GET', '/api/v1/tickets')).statusCode, 200);
      const repass = await call(stack.app, slug, u.owner, 'PATCH', `/api/v1/users/${u.id}`, { password: 'a-brand-new-password' });
      assert.equal(repass.statusCode, 200, repass.body);
      assertRevoked(await call(stack.app, slug, u.token, 'GET', '/api/v1/tickets'), 'after the password change');
      const fresh = await login(slug, u.email, 'a-brand-new-password');
      assert.equal((await call(stack.app, slug, fresh, 'GET', '/api/v1/tickets')).statusCode, 200);
    });
  }

  it('without LISTEN (TENANTRY_CATALOG_LISTEN=0, behind a transaction pooler) a process reloads revocations within 5 s', { timeout: 30_000 }, async (t) => {
    const listening = async () => (await stack.admin.query<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where datname = current_database() and query ilike 'listen%'"))[0]!.n;
    const before = await listening();
    assert.ok(before >= 2, `the stack and the other process listen (${before})`);
    const tenantry = await startTestTenantry(stack.databaseUrl, { catalogListen: false });
    const app = await buildServer({ tenantry, adminToken: ADMIN_TOKEN });
    try {
      assert.equal(await listening(), before, 'this process opened no LISTEN session');
      const u = await newUser('globex', 'agent', 'polled');
      assert.equal((await call(app, 'globex', u.token, 'GET', '/api/v1/tickets')).statusCode, 200);
      assert.equal((await call(stack.app, 'globex', u.owner, 'DELETE', `/api/v1/users/${u.id}`)).statusCode, 204);
      const started = Date.now();
      for (;;) {
        const res = await call(app, 'globex', u.token, 'GET', '/api/v1/tickets');
        if (res.statusCode === 401) break;
        assert.equal(res.statusCode, 200, res.body);
        assert.ok(Date.now() - started < 7_000, 'still accepted after 7 s');
        await sleep(100);
      }
      t.diagnostic(`refused after ${Date.now() - started} ms, without notifications`);
    } finally {
      await app.close();
      await tenantry.close();
    }
  });

  it('revocations outlive the processes: one started afterwards refuses the old tokens too', async () => {
    const u = await newUser('acme', 'agent', 'restart');
    assert.equal((await call(stack.app, 'acme', u.owner, 'DELETE', `/api/v1/users/${u.id}`)).statusCode, 204);
    const later = await startOther();
    try {
      assertRevoked(await call(later.app, 'acme', u.token, 'GET', '/api/v1/tickets'), 'process started after the revocation');
    } finally {
      await later.app.close();
      await later.tenantry.close();
    }
  });
});
