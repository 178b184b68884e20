/**
 * API keys: they record who created them, carry scopes that are enforced, cannot create keys, die
 * when their creator is deleted or loses the right to create them (also when the two race, and when
 * another process still believes the creator's revoked token), and have their last use recorded
 * without a write per request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Tenantry } from '../src/index.js';
import { buildServer } from '../app/server.js';
import { ADMIN_TOKEN, startTestStack, startTestTenantry, type TestStack } from './helpers.js';

const ITERATIONS = Number(process.env.RACE_ITERATIONS ?? 40);

let stack: TestStack;
before(async () => { stack = await startTestStack(); });
after(async () => { await stack?.close(); });

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
interface Auth { token?: string; key?: string }
function call(slug: string, auth: Auth, method: Method, url: string, payload?: object, app: FastifyInstance = stack.app) {
  const headers: Record<string, string> = { 'x-tenant': slug };
  if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  if (auth.key) headers['x-api-key'] = auth.key;
  return app.inject({ method, url: `/api/v1${url}`, headers, ...(payload ? { payload } : {}) });
}

function expectProblem(res: { statusCode: number; body: string; json: () => { code?: string } }, status: number, code: string, label = ''): void {
  assert.equal(res.statusCode, status, `${label} ${res.body}`);
  assert.equal(res.json().code, code, `${label} ${res.body}`);
}

let n = 0;
async function newUser(slug: string, role: 'owner' | 'admin' | 'agent') {
  const email = `keys-${role}-${n++}@${slug}.test`;
  const password = 'keys-password-123';
  const created = await call(slug, { token: await stack.token(slug, 'owner') }, 'POST', '/users', { email, name: 'Keys', role, password });
  assert.equal(created.statusCode, 201, created.body);
  const login = await call(slug, {}, 'POST', '/auth/token', { email, password });
  assert.equal(login.statusCode, 200, login.body);
  return { id: created.json().id as string, email, password, token: login.json().access_token as string };
}

async function createKey(slug: string, token: string, body: object = { name: 'k', role: 'admin' }, app?: FastifyInstance) {
  return call(slug, { token }, 'POST', '/api-keys', body, app);
}

describe('API keys: creator, scopes, creation', () => {
  it('a key records who created it and, by default, may read and write (as every key could before scopes)', async () => {
    const admin = await newUser('acme', 'admin');
    const res = await createKey('acme', admin.token, { name: 'default' });
    assert.equal(res.statusCode, 201, res.body);
    const key = res.json();
    assert.equal(key.createdBy, admin.id);
    assert.deepEqual(key.scopes, ['read', 'write']);
    assert.equal(key.role, 'agent');
    for (const field of ['id', 'tenantId', 'name', 'prefix', 'role', 'createdAt', 'lastUsedAt', 'revokedAt', 'key']) assert.ok(field in key, field);
    assert.equal((await call('acme', { key: key.key }, 'POST', '/tickets', { title: 'via a default key' })).statusCode, 201);
    const listed = (await call('acme', { token: admin.token }, 'GET', '/api-keys')).json().data.find((k: { id: string }) => k.id === key.id);
    assert.equal(listed.createdBy, admin.id);
  });

  it('a read-only key reads, and every write answers 403 insufficient_scope; a write-only key cannot read', async () => {
    const owner = await stack.token('globex', 'owner');
    const ro = (await createKey('globex', owner, { name: 'ro', role: 'admin', scopes: ['read'] })).json();
    assert.deepEqual(ro.scopes, ['read']);
    assert.equal((await call('globex', { key: ro.key }, 'GET', '/tickets')).statusCode, 200);
    const me = await call('globex', { key: ro.key }, 'GET', '/me');
    assert.equal(me.statusCode, 200, me.body);
    assert.deepEqual(me.json().api_key.scopes, ['read']);
    const ticket = (await call('globex', { key: ro.key }, 'GET', '/tickets?limit=1')).json().data[0];
    expectProblem(await call('globex', { key: ro.key }, 'POST', '/tickets', { title: 'no' }), 403, 'insufficient_scope', 'POST');
    expectProblem(await call('globex', { key: ro.key }, 'PATCH', `/tickets/${ticket.id}`, { title: 'no' }), 403, 'insufficient_scope', 'PATCH');
    expectProblem(await call('globex', { key: ro.key }, 'DELETE', `/tickets/${ticket.id}`), 403, 'insufficient_scope', 'DELETE');
    expectProblem(await call('globex', { key: ro.key }, 'POST', '/users', { email: 'x@globex.test', name: 'X', role: 'agent', password: 'password-123' }), 403, 'insufficient_scope', 'POST /users');
    // Nothing was written.
    assert.equal((await call('globex', { key: ro.key }, 'GET', `/tickets/${ticket.id}`)).json().title, ticket.title);

    const wo = (await createKey('globex', owner, { name: 'wo', role: 'agent', scopes: ['write'] })).json();
    expectProblem(await call('globex', { key: wo.key }, 'GET', '/tickets'), 403, 'insufficient_scope', 'GET with write only');
    assert.equal((await call('globex', { key: wo.key }, 'POST', '/tickets', { title: 'written' })).statusCode, 201);
  });

  it('scopes are validated: unknown, empty or repeated scopes are 400 validation_failed', async () => {
    const owner = await stack.token('acme', 'owner');
    for (const scopes of [['admin'], [], ['read', 'read'], 'read']) {
      expectProblem(await createKey('acme', owner, { name: 'bad', scopes }), 400, 'validation_failed', JSON.stringify(scopes));
    }
  });

  it('an API key cannot create API keys: 403 (insufficient_scope for an admin key, insufficient_role for an agent key)', async () => {
    const owner = await stack.token('initech', 'owner');
    const adminKey = (await createKey('initech', owner, { name: 'admin key', role: 'admin' })).json();
    const agentKey = (await createKey('initech', owner, { name: 'agent key', role: 'agent' })).json();
    const before = (await call('initech', { token: owner }, 'GET', '/api-keys')).json().data.length;
    expectProblem(await call('initech', { key: adminKey.key }, 'POST', '/api-keys', { name: 'child', role: 'admin' }), 403, 'insufficient_scope', 'admin key');
    expectProblem(await call('initech', { key: agentKey.key }, 'POST', '/api-keys', { name: 'child' }), 403, 'insufficient_role', 'agent key');
    assert.equal((await call('initech', { token: owner }, 'GET', '/api-keys')).json().data.length, before);
  });
});

describe('API keys die with their creator\'s right to create them', () => {
  for (const slug of ['acme', 'globex', 'initech']) {
    it(`${slug}: deleting the creator, or demoting them to agent, revokes their keys; other changes do not`, async () => {
      const owner = await stack.token(slug, 'owner');
      const deleted = await newUser(slug, 'admin');
      const demoted = await newUser(slug, 'admin');
      const repassworded = await newUser(slug, 'admin');
      const promoted = await newUser(slug, 'admin');
      const keyOf = async (u: { token: string }) => (await createKey(slug, u.token)).json() as { id: string; key: string };
      const keys = { deleted: await keyOf(deleted), demoted: await keyOf(demoted), repassworded: await keyOf(repassworded), promoted: await keyOf(promoted) };
      for (const k of Object.values(keys)) assert.equal((await call(slug, { key: k.key }, 'GET', '/me')).statusCode, 200);

      assert.equal((await call(slug, { token: owner }, 'DELETE', `/users/${deleted.id}`)).statusCode, 204);
      assert.equal((await call(slug, { token: owner }, 'PATCH', `/users/${demoted.id}`, { role: 'agent' })).statusCode, 200);
      assert.equal((await call(slug, { token: owner }, 'PATCH', `/users/${repassworded.id}`, { password: 'another-password-1' })).statusCode, 200);
      assert.equal((await call(slug, { token: owner }, 'PATCH', `/users/${promoted.id}`, { role: 'owner' })).statusCode, 200);

      for (const k of [keys.deleted, keys.demoted]) {
        expectProblem(await call(slug, { key: k.key }, 'GET', '/me'), 401, 'invalid_api_key');
        expectProblem(await call(slug, { key: k.key }, 'POST', '/tickets', { title: 'zombie' }), 401, 'invalid_api_key');
      }
      for (const k of [keys.repassworded, keys.promoted]) assert.equal((await call(slug, { key: k.key }, 'GET', '/me')).statusCode, 200);
      const listed = (await call(slug, { token: owner }, 'GET', '/api-keys')).json().data as { id: string; revokedAt: string | null }[];
      const revoked = (id: string) => listed.find((k) => k.id === id)?.revokedAt;
      assert.ok(revoked(keys.deleted.id) && revoked(keys.demoted.id));
      assert.equal(revoked(keys.repassworded.id), null);
    });
  }

  it(`creating keys while being demoted: every key the demoted user created is dead afterwards (${ITERATIONS} rounds × 8 creation loops)`, { timeout: 600_000 }, async (t) => {
    const slugs = ['acme', 'globex', 'initech'];
    let created = 0;
    const survivors: string[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const slug = slugs[i % slugs.length]!;
      const u = await newUser(slug, 'admin');
      let stop = false;
      const mine: { id: string; key: string }[] = [];
      const loop = async () => {
        while (!stop) {
          const res = await createKey(slug, u.token, { name: `race ${i}` });
          if (res.statusCode === 201) mine.push(res.json());
          else if (res.statusCode === 401) return;
          else assert.fail(`unexpected ${res.statusCode} ${res.body}`);
        }
      };
      const loops = Array.from({ length: 8 }, loop);
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
      const demote = await call(slug, { token: await stack.token(slug, 'owner') }, 'PATCH', `/users/${u.id}`, { role: 'agent' });
      assert.equal(demote.statusCode, 200, demote.body);
      stop = true;
      await Promise.all(loops);
      created += mine.length;
      for (const k of mine) {
        const res = await call(slug, { key: k.key }, 'GET', '/tickets?limit=1');
        if (res.statusCode !== 401) survivors.push(`round ${i} (${slug}): key ${k.id} answers ${res.statusCode}`);
      }
    }
    t.diagnostic(`${created} keys created by users being demoted`);
    assert.ok(created > 0);
    assert.deepEqual(survivors, []);
  });

  it('another process that has not yet heard of the revocation cannot create a key with the revoked token', async () => {
    // No LISTEN: this process learns of revocations only by its 5 s poll.
    const tenantry: Tenantry = await startTestTenantry(stack.databaseUrl, { catalogListen: false });
    const app = await buildServer({ tenantry, adminToken: ADMIN_TOKEN });
    try {
      // Its 5 s poll may land between the demotion and the attempt: then it knew, and the round proves
      // nothing; try again.
      let proved = false;
      for (let attempt = 0; attempt < 5 && !proved; attempt++) {
        const u = await newUser('acme', 'admin');
        assert.equal((await call('acme', { token: u.token }, 'GET', '/api-keys', undefined, app)).statusCode, 200);
        assert.equal((await call('acme', { token: await stack.token('acme', 'owner') }, 'PATCH', `/users/${u.id}`, { role: 'agent' })).statusCode, 200);
        // The other process still takes the old admin token for reads ...
        const stale = (await call('acme', { token: u.token }, 'GET', '/api-keys', undefined, app)).statusCode === 200;
        // ... but creating a key asks the catalog, which knows.
        expectProblem(await createKey('acme', u.token, { name: `late ${attempt}` }, app), 401, 'invalid_token');
        const keys = (await call('acme', { token: await stack.token('acme', 'owner') }, 'GET', '/api-keys')).json().data as { name: string }[];
        assert.ok(!keys.some((k) => k.name === `late ${attempt}`));
        proved = stale;
      }
      assert.ok(proved, 'the other process always knew of the revocation already');
    } finally {
      await app.close();
      await tenantry.close();
    }
  });
});

describe('last_used_at', () => {
  it('is recorded in batches, at most once a minute per key: no write per request', async () => {
    const owner = await stack.token('acme', 'owner');
    const keys = await Promise.all([1, 2, 3].map(async (i) => (await createKey('acme', owner, { name: `used ${i}` })).json() as { id: string; key: string }));
    const lastUsed = async () => (await stack.admin.query<{ id: string; at: string | null }>(
      `select id::text, to_json(last_used_at) #>> '{}' as at from tenantry.api_keys where id = any($1::uuid[]) order by id`, [keys.map((k) => k.id)]));
    assert.ok((await lastUsed()).every((r) => r.at === null));
    const apiKeys = stack.tenantry.apiKeys;
    await apiKeys.flushLastUsed();
    const writes0 = apiKeys.lastUsedWrites;

    // 3 keys × 20 requests: one statement for all of them.
    for (let i = 0; i < 20; i++) for (const k of keys) assert.equal((await call('acme', { key: k.key }, 'GET', '/tickets?limit=1')).statusCode, 200);
    await apiKeys.flushLastUsed();
    assert.equal(apiKeys.lastUsedWrites - writes0, 1);
    const first = await lastUsed();
    assert.ok(first.every((r) => r.at !== null), JSON.stringify(first));
    const listed = (await call('acme', { token: owner }, 'GET', '/api-keys')).json().data as { id: string; lastUsedAt: string | null }[];
    assert.ok(keys.every((k) => listed.find((l) => l.id === k.id)?.lastUsedAt));

    // Used again within the minute: nothing is written.
    for (let i = 0; i < 20; i++) for (const k of keys) await call('acme', { key: k.key }, 'GET', '/tickets?limit=1');
    await apiKeys.flushLastUsed();
    assert.equal(apiKeys.lastUsedWrites - writes0, 1);
    assert.deepEqual(await lastUsed(), first);

    // Another process, which has not written these keys itself, sees the recent last_used_at in
    // the row and does not write either.
    const other = await startTestTenantry(stack.databaseUrl);
    const app = await buildServer({ tenantry: other, adminToken: ADMIN_TOKEN });
    try {
      for (const k of keys) assert.equal((await call('acme', { key: k.key }, 'GET', '/tickets?limit=1', undefined, app)).statusCode, 200);
      await other.apiKeys.flushLastUsed();
      assert.equal(other.apiKeys.lastUsedWrites, 0);
    } finally {
      await app.close();
      await other.close();
    }
  });
});
