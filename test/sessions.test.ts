/**
 * A signed JWT is not enough: the user must still exist, and the role that counts is the one the
 * users table has now. In every placement: a deleted user's token is refused at once (401
 * invalid_token) by the process that deleted it, a demoted admin loses admin rights at once, and
 * another process (its own cache) follows within its TTL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../app/server.js';
import { ADMIN_TOKEN, startTestStack, type TestStack } from './helpers.js';

let stack: TestStack;
let other: FastifyInstance;
const OTHER_TTL_MS = 400;

before(async () => {
  stack = await startTestStack();
  // A second server process, as far as caches go: its own sessions cache, a short TTL.
  other = await buildServer({ tenantry: stack.tenantry, adminToken: ADMIN_TOKEN, sessionTtlMs: OTHER_TTL_MS });
});
after(async () => {
  await other?.close();
  await stack?.close();
});

async function call(app: FastifyInstance, slug: string, token: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) {
  return app.inject({ method, url, headers: { 'x-tenant': slug, authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
}

async function newUser(slug: string, role: 'admin' | 'agent', tag: string) {
  const owner = await stack.token(slug, 'owner');
  const email = `${tag}-${role}@${slug}.test`;
  const password = `${tag}-password-123`;
  const res = await call(stack.app, slug, owner, 'POST', '/api/v1/users', { email, name: tag, role, password });
  assert.equal(res.statusCode, 201, res.body);
  const login = await stack.app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': slug }, payload: { email, password } });
  assert.equal(login.statusCode, 200, login.body);
  return { id: res.json().id as string, token: login.json().access_token as string, owner };
}

describe('tokens follow the users table', () => {
  for (const slug of ['acme', 'globex', 'initech']) {
    it(`${slug}: a deleted user's token is refused at once here, and after the TTL elsewhere`, async () => {
      const u = await newUser(slug, 'agent', 'gone');
      for (const app of [stack.app, other]) assert.equal((await call(app, slug, u.token, 'GET', '/api/v1/tickets')).statusCode, 200);
      const del = await call(stack.app, slug, u.owner, 'DELETE', `/api/v1/users/${u.id}`);
      assert.equal(del.statusCode, 204, del.body);
      for (const url of ['/api/v1/tickets', '/api/v1/me', '/api/v1/users']) {
        const res = await call(stack.app, slug, u.token, 'GET', url);
        assert.equal(res.statusCode, 401, `${url}: ${res.body}`);
        assert.equal(res.json().code, 'invalid_token');
      }
      const write = await call(stack.app, slug, u.token, 'POST', '/api/v1/tickets', { title: 'from beyond' });
      assert.equal(write.statusCode, 401, write.body);
      await sleep(OTHER_TTL_MS + 100);
      const res = await call(other, slug, u.token, 'GET', '/api/v1/tickets');
      assert.equal(res.statusCode, 401, res.body);
      assert.equal(res.json().code, 'invalid_token');
    });

    it(`${slug}: a demoted admin loses admin rights with the token it already has`, async () => {
      const u = await newUser(slug, 'admin', 'demoted');
      const before = await call(stack.app, slug, u.token, 'POST', '/api/v1/users', { email: `a-${slug}@x.test`, name: 'A', role: 'agent', password: 'password-1234' });
      assert.equal(before.statusCode, 201, before.body);
      const patch = await call(stack.app, slug, u.owner, 'PATCH', `/api/v1/users/${u.id}`, { role: 'agent' });
      assert.equal(patch.statusCode, 200, patch.body);
      const res = await call(stack.app, slug, u.token, 'POST', '/api/v1/users', { email: `b-${slug}@x.test`, name: 'B', role: 'agent', password: 'password-1234' });
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().code, 'insufficient_role');
      // Reads go on: the user exists, as an agent.
      const me = await call(stack.app, slug, u.token, 'GET', '/api/v1/me');
      assert.equal(me.statusCode, 200, me.body);
      assert.equal(me.json().user.role, 'agent', me.body);
    });
  }
});
