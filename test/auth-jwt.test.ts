import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { SignJWT, decodeProtectedHeader, type JWTPayload } from 'jose';
import { errorCatalog, type ErrorCode } from '../src/errors.js';
import { demoTenants, fixtureId, type FixtureTenant } from '../app/fixtures.js';
import { ADMIN_TOKEN, JWT_SECRET, pooledDemoTenants, startTestStack, type TestStack } from './helpers.js';

/**
 * Acme and Globex of the demo data, both pooled: what is checked here does not depend on the
 * placement, and a pooled tenant lives in the test's own database only (a database-per-tenant
 * fixture with a fixed id would share its database across test runs on the same cluster).
 */
const fixtures = pooledDemoTenants.filter((t) => t.slug === 'acme' || t.slug === 'globex');
const acme = fixtures.find((t) => t.slug === 'acme')!;
const globex = fixtures.find((t) => t.slug === 'globex')!;
const user = (t: typeof acme, role: 'owner' | 'admin' | 'agent') => t.users.find((u) => u.role === role)!;
const PROBLEM_KEYS = new Set(['type', 'title', 'status', 'code', 'detail', 'instance', 'request_id', 'errors', 'retry_after']);
const hsKey = new TextEncoder().encode(JWT_SECRET);
const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A problem+json answer with this status and code, consistent with the error catalog, and nothing else. */
function assertProblem(res: LightMyRequestResponse, status: number, code: ErrorCode, label = ''): Record<string, unknown> {
  assert.equal(res.statusCode, status, `${label}: expected ${status} ${code}, got ${res.statusCode} ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/, label);
  const body = res.json() as Record<string, unknown>;
  assert.equal(body.code, code, `${label}: ${res.body}`);
  assert.equal(body.status, status, label);
  assert.equal(errorCatalog[code].status, status, label);
  assert.equal(body.type, `urn:tenantry:problem:${code}`, label);
  for (const key of Object.keys(body)) assert.ok(PROBLEM_KEYS.has(key), `${label}: unexpected key "${key}" in ${res.body}`);
  return body;
}

/** Claims of a valid acme owner token, with overrides; `undefined` removes a claim. */
function claims(over: Record<string, unknown> = {}): JWTPayload {
  const base: Record<string, unknown> = {
    sub: user(acme, 'owner').id, tid: acme.id, role: 'owner', iss: 'tenantry', aud: 'tenantry-api',
    iat: now(), exp: now() + 600,
  };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base as JWTPayload;
}

function sign(payload: JWTPayload, key: Uint8Array | KeyObject = hsKey, alg = 'HS256'): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).sign(key);
}

function unsigned(payload: JWTPayload): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
}

describe('bearer tokens, roles and the admin API (HS256 server)', () => {
  let stack: TestStack;
  before(async () => { stack = await startTestStack({}, fixtures); });
  after(async () => { await stack.close(); });

  const tickets = (headers: Record<string, string>) => stack.app.inject({ url: '/api/v1/tickets', headers });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  it('positive control: a forged token with the right key, claims and tenant lists the tenant\'s tickets', async () => {
    const res = await tickets(bearer(await sign(claims())));
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as { data: { title: string }[] };
    assert.equal(body.data.length, 6);
    assert.ok(body.data.every((t) => t.title.startsWith('[Acme]')));
  });

  it('positive control: a token from POST /auth/token works, with and without a matching X-Tenant', async () => {
    const token = await stack.token('acme', 'agent');
    assert.equal((await tickets(bearer(token))).statusCode, 200);
    assert.equal((await tickets({ ...bearer(token), 'x-tenant': 'acme' })).statusCode, 200);
    assert.equal((await tickets({ ...bearer(token), host: 'acme.localhost' })).statusCode, 200);
  });

  const rejected: [string, () => Promise<string>][] = [
    ['alg "none" with valid-looking claims', async () => unsigned(claims())],
    ['alg "none" header on a validly signed token', async () => {
      const [, payload, signature] = (await sign(claims())).split('.');
      return `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.${signature}`;
    }],
    ['payload altered after signing (agent → owner)', async () => {
      const [header, , signature] = (await sign(claims({ sub: user(acme, 'agent').id, role: 'agent' }))).split('.');
      return `${header}.${b64(claims({ sub: user(acme, 'agent').id, role: 'owner' }))}.${signature}`;
    }],
    ['signed with the wrong HS256 key', () => sign(claims(), new TextEncoder().encode('another-secret-that-is-long-enough-0123456789'))],
    ['signed with the right key but HS512', () => sign(claims(), hsKey, 'HS512')],
    ['expired an hour ago', () => sign(claims({ iat: now() - 7200, exp: now() - 3600 }))],
    ['expired a minute ago (beyond the clock tolerance)', () => sign(claims({ iat: now() - 600, exp: now() - 60 }))],
    ['not valid before an hour from now', () => sign(claims({ nbf: now() + 3600 }))],
    ['no exp claim (would never expire)', () => sign(claims({ exp: undefined }))],
    ['no iat claim', () => sign(claims({ iat: undefined }))],
    ['wrong audience', () => sign(claims({ aud: 'someone-else' }))],
    ['no audience', () => sign(claims({ aud: undefined }))],
    ['wrong issuer', () => sign(claims({ iss: 'evil' }))],
    ['no issuer', () => sign(claims({ iss: undefined }))],
    ['missing sub', () => sign(claims({ sub: undefined }))],
    ['missing tid', () => sign(claims({ tid: undefined }))],
    ['missing role', () => sign(claims({ role: undefined }))],
    ['tid is not a uuid', () => sign(claims({ tid: 'acme' }))],
    ['tid is a number', () => sign(claims({ tid: 1 }))],
    ['role "superuser"', () => sign(claims({ role: 'superuser' }))],
    ['role "Owner" (case matters)', () => sign(claims({ role: 'Owner' }))],
    ['role as an array', () => sign(claims({ role: ['owner'] }))],
    ['garbage', async () => 'garbage'],
    ['three garbage segments', async () => 'abc.def.ghi'],
    ['a JWT header and nothing else', async () => `${b64({ alg: 'HS256', typ: 'JWT' })}..`],
  ];
  for (const [name, make] of rejected) {
    it(`401 invalid_token: ${name}`, async () => {
      const token = await make();
      for (const extra of [{}, { 'x-tenant': 'acme' }, { host: 'acme.localhost' }] as Record<string, string>[]) {
        const res = await tickets({ ...bearer(token), ...extra });
        const body = assertProblem(res, 401, 'invalid_token', `${name} ${JSON.stringify(extra)}`);
        assert.equal(body.data, undefined);
      }
    });
  }

  it('a signed token naming a tenant that does not exist: 401 invalid_token alone, 403 against acme', async () => {
    const token = await sign(claims({ tid: fixtureId(99, 0, 0) }));
    const body = assertProblem(await tickets(bearer(token)), 401, 'invalid_token', 'alone');
    assert.equal(body.data, undefined);
    assertProblem(await tickets({ ...bearer(token), 'x-tenant': 'acme' }), 403, 'tenant_mismatch', 'with x-tenant');
  });

  it('403 tenant_mismatch: a valid globex token on acme\'s host or with X-Tenant: acme', async () => {
    const forged = await sign(claims({ sub: user(globex, 'owner').id, tid: globex.id }));
    const issued = await stack.token('globex', 'owner');
    for (const token of [forged, issued]) {
      assertProblem(await tickets({ ...bearer(token), host: 'acme.localhost' }), 403, 'tenant_mismatch', 'host');
      assertProblem(await tickets({ ...bearer(token), 'x-tenant': 'acme' }), 403, 'tenant_mismatch', 'x-tenant slug');
      assertProblem(await tickets({ ...bearer(token), 'x-tenant': acme.id }), 403, 'tenant_mismatch', 'x-tenant id');
      // Control: the same token on its own tenant's host works and sees only globex.
      const own = await tickets({ ...bearer(token), host: 'globex.localhost' });
      assert.equal(own.statusCode, 200, own.body);
      assert.ok((own.json() as { data: { title: string }[] }).data.every((t) => t.title.startsWith('[Globex]')));
    }
  });

  it('401 authentication_required: no Authorization on /tickets with a tenant named', async () => {
    assertProblem(await tickets({ 'x-tenant': 'acme' }), 401, 'authentication_required', 'x-tenant');
    assertProblem(await tickets({ host: 'acme.localhost' }), 401, 'authentication_required', 'host');
    assertProblem(await tickets({ 'x-tenant': 'acme', authorization: 'Basic b3duZXI6cGFzc3dvcmQ=' }), 401, 'authentication_required', 'basic');
  });

  it('401 invalid_credentials: wrong password and unknown email answer the same', async () => {
    const login = (email: string, password: string) => stack.app.inject({
      method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': 'acme' }, payload: { email, password },
    });
    const owner = user(acme, 'owner');
    const wrongPassword = assertProblem(await login(owner.email, 'not-the-password'), 401, 'invalid_credentials', 'wrong password');
    const unknownEmail = assertProblem(await login('nobody@acme.test', 'not-the-password'), 401, 'invalid_credentials', 'unknown email');
    // Another tenant's user logging in on acme is an unknown email too.
    const otherTenant = assertProblem(await login(user(globex, 'owner').email, user(globex, 'owner').password), 401, 'invalid_credentials', 'other tenant');
    const shape = (b: Record<string, unknown>) => {
      const { instance: _i, request_id: _r, ...rest } = b;
      return { keys: Object.keys(b).sort(), rest };
    };
    assert.deepEqual(shape(unknownEmail), shape(wrongPassword));
    assert.deepEqual(shape(otherTenant), shape(wrongPassword));
    assert.equal(wrongPassword.access_token, undefined);
    // Control: the right password works.
    assert.equal((await login(owner.email, owner.password)).statusCode, 200);
  });

  it('403 insufficient_role: an agent cannot create users or delete tickets', async () => {
    const agent = bearer(await stack.token('acme', 'agent'));
    const usersBefore = await stack.admin.query<{ n: number }>('select count(*)::int as n from app.users');
    const create = await stack.app.inject({
      method: 'POST', url: '/api/v1/users', headers: agent,
      payload: { email: 'new-agent@acme.test', name: 'New', password: 'password-123', role: 'agent' },
    });
    assertProblem(create, 403, 'insufficient_role', 'agent POST /users');
    const ticketId = acme.tickets[0]!.id;
    assertProblem(await stack.app.inject({ method: 'DELETE', url: `/api/v1/tickets/${ticketId}`, headers: agent }), 403, 'insufficient_role', 'agent DELETE ticket');
    assertProblem(await stack.app.inject({
      method: 'PATCH', url: `/api/v1/users/${user(acme, 'agent').id}`, headers: agent, payload: { role: 'owner' },
    }), 403, 'insufficient_role', 'agent promotes itself');
    const usersAfter = await stack.admin.query<{ n: number }>('select count(*)::int as n from app.users');
    assert.equal(usersAfter[0]!.n, usersBefore[0]!.n);
    const still = await stack.admin.query('select 1 from app.tickets where id = $1', [ticketId]);
    assert.equal(still.length, 1, 'the ticket an agent tried to delete is gone');
    const role = await stack.admin.query<{ role: string }>('select role from app.users where id = $1', [user(acme, 'agent').id]);
    assert.equal(role[0]!.role, 'agent');
  });

  it('403 insufficient_role: an admin cannot create an owner, but can create an agent', async () => {
    const admin = bearer(await stack.token('acme', 'admin'));
    const owner = await stack.app.inject({
      method: 'POST', url: '/api/v1/users', headers: admin,
      payload: { email: 'second-owner@acme.test', name: 'Second Owner', password: 'password-123', role: 'owner' },
    });
    assertProblem(owner, 403, 'insufficient_role', 'admin creates owner');
    const none = await stack.admin.query("select 1 from app.users where email = 'second-owner@acme.test'");
    assert.equal(none.length, 0);
    assertProblem(await stack.app.inject({
      method: 'PATCH', url: `/api/v1/users/${user(acme, 'owner').id}`, headers: admin, payload: { name: 'Renamed' },
    }), 403, 'insufficient_role', 'admin edits owner');
    const agent = await stack.app.inject({
      method: 'POST', url: '/api/v1/users', headers: admin,
      payload: { email: 'hired-agent@acme.test', name: 'Hired', password: 'password-123', role: 'agent' },
    });
    assert.equal(agent.statusCode, 201, agent.body);
  });

  describe('admin API', () => {
    const adminReq = (method: 'GET' | 'POST', url: string, headers: Record<string, string>, payload?: unknown) =>
      stack.app.inject({ method, url: `/admin/api${url}`, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
    const good = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const tenantBody = (slug: string, extra: Record<string, unknown> = {}) => ({
      slug, name: `Tenant ${slug}`, owner: { email: `owner@${slug}.test`, password: 'password-123', name: 'Owner' }, ...extra,
    });
    const tenantCount = async () => (await stack.admin.query<{ n: number }>('select count(*)::int as n from tenantry.tenants'))[0]!.n;

    it('401 admin_token_invalid: missing, wrong, or a tenant token', async () => {
      const tenantToken = await stack.token('acme', 'owner');
      const bad: [string, Record<string, string>][] = [
        ['missing', {}],
        ['wrong', { authorization: 'Bearer wrong-admin-token-0123456789' }],
        ['right token plus a suffix', { authorization: `Bearer ${ADMIN_TOKEN}x` }],
        ['right token without the last character', { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` }],
        ['not a bearer', { authorization: ADMIN_TOKEN }],
        ['basic', { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` }],
        ['a tenant owner JWT', { authorization: `Bearer ${tenantToken}` }],
      ];
      const before = await tenantCount();
      for (const [name, headers] of bad) {
        const list = assertProblem(await adminReq('GET', '/tenants', headers), 401, 'admin_token_invalid', `GET ${name}`);
        assert.equal(list.data, undefined);
        assertProblem(await adminReq('POST', '/tenants', headers, tenantBody('sneaky')), 401, 'admin_token_invalid', `POST ${name}`);
        assertProblem(await adminReq('GET', `/tenants/${acme.id}`, headers), 401, 'admin_token_invalid', `GET one ${name}`);
        assertProblem(await adminReq('POST', `/tenants/${acme.id}/suspend`, headers), 401, 'admin_token_invalid', `suspend ${name}`);
      }
      assert.equal(await tenantCount(), before);
      const status = await stack.admin.query<{ status: string }>('select status from tenantry.tenants where id = $1', [acme.id]);
      assert.equal(status[0]!.status, 'active');
      // Control: the right token lists the tenants.
      const ok = await adminReq('GET', '/tenants', good);
      assert.equal(ok.statusCode, 200, ok.body);
      assert.ok((ok.json() as { data: { slug: string }[] }).data.some((t) => t.slug === 'acme'));
    });

    it('GET /tenants pages with an opaque cursor through every tenant, in id order, once each', async () => {
      const ids = (await stack.admin.query<{ id: string }>('select id::text as id from tenantry.tenants order by id')).map((r) => r.id);
      assert.ok(ids.length >= 2);
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages <= ids.length; pages++) {
        const res = await adminReq('GET', `/tenants?limit=1${cursor ? `&cursor=${cursor}` : ''}`, good);
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json() as { data: { id: string }[]; next_cursor: string | null };
        seen.push(...body.data.map((t) => t.id));
        cursor = body.next_cursor;
        if (!cursor) break;
        assert.ok(!ids.includes(cursor), 'the cursor is opaque, not a raw id');
      }
      assert.deepEqual(seen, ids);
      assertProblem(await adminReq('GET', `/tenants?cursor=${ids[0]}`, good), 400, 'invalid_cursor', 'a raw id');
    });

    it('400: reserved and malformed slugs, nothing created', async () => {
      const before = await tenantCount();
      for (const slug of ['www', 'api', 'admin', 'Acme', 'ACME', 'ab', '-abc', 'abc-', 'a--b', 'ab_c', 'a.bc', 'x'.repeat(64), '']) {
        const body = assertProblem(await adminReq('POST', '/tenants', good, tenantBody(slug)), 400, 'validation_failed', `slug ${JSON.stringify(slug)}`);
        assert.equal(body.id, undefined);
      }
      assert.equal(await tenantCount(), before);
    });

    it('409 tenant_slug_taken: a duplicate slug changes nothing', async () => {
      const before = await tenantCount();
      const users = await stack.admin.query<{ n: number }>('select count(*)::int as n from app.users where tenant_id = $1', [acme.id]);
      assertProblem(await adminReq('POST', '/tenants', good, tenantBody('acme')), 409, 'tenant_slug_taken', 'duplicate');
      assert.equal(await tenantCount(), before);
      const usersAfter = await stack.admin.query<{ n: number }>('select count(*)::int as n from app.users where tenant_id = $1', [acme.id]);
      assert.equal(usersAfter[0]!.n, users[0]!.n);
    });

    it('isolation "schema": 422 isolation_unavailable, or 201 with a consistent tenant', async () => {
      const before = await tenantCount();
      const res = await adminReq('POST', '/tenants', good, tenantBody('schemaco', { isolation: 'schema' }));
      const rows = await stack.admin.query<{ isolation: string; status: string }>(
        "select isolation, status from tenantry.tenants where slug = 'schemaco'");
      if (res.statusCode === 422) {
        assertProblem(res, 422, 'isolation_unavailable', 'schema isolation');
        assert.equal(rows.length, 0);
        assert.equal(await tenantCount(), before);
      } else {
        assert.equal(res.statusCode, 201, res.body);
        assert.match(String(res.headers['content-type']), /^application\/json/);
        const body = res.json() as { id: string; slug: string; isolation: string; status: string; owner: { email: string } };
        assert.equal(body.slug, 'schemaco');
        assert.equal(body.isolation, 'schema');
        assert.equal(body.status, 'active');
        assert.equal(body.owner.email, 'owner@schemaco.test');
        assert.deepEqual([...rows], [{ isolation: 'schema', status: 'active' }]);
        assert.equal(await tenantCount(), before + 1);
        // The owner can log in to the new tenant and sees an empty helpdesk.
        const login = await stack.app.inject({
          method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': 'schemaco' },
          payload: { email: 'owner@schemaco.test', password: 'password-123' },
        });
        assert.equal(login.statusCode, 200, login.body);
        const list = await tickets(bearer((login.json() as { access_token: string }).access_token));
        assert.equal(list.statusCode, 200, list.body);
        assert.deepEqual((list.json() as { data: unknown[] }).data, []);
      }
    });
  });

  // Last: it takes the catalog away from this stack (and gives it back).
  it('503 catalog_unavailable, never 404, when the catalog cannot be reached', async () => {
    const [{ db }] = await stack.admin.query<{ db: string }>('select current_database() as db') as [{ db: string }];
    const ident = `"${db.replace(/"/g, '""')}"`;
    // The driver may hold a query back while it waits to reconnect: fail clearly rather than hang.
    const bounded = async (what: string, p: Promise<LightMyRequestResponse>) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within 30 s during the catalog outage`)), 30_000);
      });
      try {
        return await Promise.race([p, timeout]);
      } finally {
        clearTimeout(timer);
      }
    };
    // Control: while the catalog is up, an unknown slug is a 404.
    assertProblem(await tickets({ 'x-tenant': 'never-seen-before' }), 404, 'tenant_not_found', 'before the outage');
    // Only this test database: the platform role may no longer connect to it, and its sessions end.
    await stack.admin.query(`revoke connect on database ${ident} from public, tenantry_platform`);
    try {
      await stack.admin.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where usename = 'tenantry_platform' and datname = current_database()");
      const res = await bounded('x-tenant', tickets({ 'x-tenant': 'never-seen-before' }));
      const body = assertProblem(res, 503, 'catalog_unavailable', 'x-tenant during the outage');
      assert.equal(body.detail, undefined, '5xx details are not sent');
      assertProblem(await bounded('subdomain', tickets({ host: 'no-such-tenant.localhost' })), 503, 'catalog_unavailable', 'subdomain during the outage');
      assertProblem(await bounded('login', stack.app.inject({
        method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': 'another-unknown' },
        payload: { email: 'owner@acme.test', password: 'whatever' },
      })), 503, 'catalog_unavailable', 'login during the outage');
    } finally {
      await stack.admin.query(`grant connect on database ${ident} to public, tenantry_platform`);
    }
    // Recovered: the pool reconnects (a connection killed above may fail once more) and the unknown
    // slug is a 404 again. Until then the answer is a 503, never a 404 or a 500.
    const deadline = Date.now() + 30_000;
    let last: LightMyRequestResponse;
    for (;;) {
      last = await tickets({ 'x-tenant': 'never-seen-before' });
      if (last.statusCode !== 503 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assertProblem(last, 404, 'tenant_not_found', 'after the outage');
  });
});

describe('bearer tokens on a server with an Ed25519 key pair', () => {
  let stack: TestStack;
  const pair = generateKeyPairSync('ed25519');
  const privatePem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const publicDer = pair.publicKey.export({ type: 'spki', format: 'der' });
  before(async () => {
    stack = await startTestStack({
      jwt: { privateKey: privatePem, publicKey: publicPem, issuer: 'tenantry', audience: 'tenantry-api', ttlSeconds: 3600 },
    }, fixtures);
  });
  after(async () => { await stack.close(); });

  const tickets = (token: string, extra: Record<string, string> = {}) =>
    stack.app.inject({ url: '/api/v1/tickets', headers: { authorization: `Bearer ${token}`, ...extra } });

  it('positive control: the server issues EdDSA tokens and accepts them', async () => {
    const token = await stack.token('acme', 'agent');
    assert.equal(decodeProtectedHeader(token).alg, 'EdDSA');
    const res = await tickets(token);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((res.json() as { data: unknown[] }).data.length, 6);
  });

  it('positive control: an EdDSA token signed with the configured private key is accepted', async () => {
    const res = await tickets(await sign(claims(), pair.privateKey, 'EdDSA'), { 'x-tenant': 'acme' });
    assert.equal(res.statusCode, 200, res.body);
  });

  const rejected: [string, () => Promise<string>][] = [
    ['HS256 signed with the PEM public key text as the secret (algorithm confusion)', () => sign(claims(), new TextEncoder().encode(publicPem))],
    ['HS256 signed with the trimmed PEM public key text', () => sign(claims(), new TextEncoder().encode(publicPem.trim()))],
    ['HS256 signed with the DER public key as the secret', () => sign(claims(), new Uint8Array(publicDer))],
    ['HS256 signed with the HS256 test secret', () => sign(claims())],
    ['EdDSA signed with another Ed25519 key', () => sign(claims(), generateKeyPairSync('ed25519').privateKey, 'EdDSA')],
    ['alg "none"', async () => unsigned(claims())],
    ['EdDSA, expired', () => sign(claims({ iat: now() - 7200, exp: now() - 3600 }), pair.privateKey, 'EdDSA')],
    ['EdDSA, wrong audience', () => sign(claims({ aud: 'other' }), pair.privateKey, 'EdDSA')],
    ['EdDSA, role not in owner/admin/agent', () => sign(claims({ role: 'root' }), pair.privateKey, 'EdDSA')],
  ];
  for (const [name, make] of rejected) {
    it(`401 invalid_token: ${name}`, async () => {
      const token = await make();
      for (const extra of [{}, { 'x-tenant': 'acme' }] as Record<string, string>[]) {
        const body = assertProblem(await tickets(token, extra), 401, 'invalid_token', `${name} ${JSON.stringify(extra)}`);
        assert.equal(body.data, undefined);
      }
    });
  }

  it('403 tenant_mismatch: a valid EdDSA globex token against acme', async () => {
    const token = await sign(claims({ sub: user(globex, 'owner').id, tid: globex.id }), pair.privateKey, 'EdDSA');
    assertProblem(await tickets(token, { host: 'acme.localhost' }), 403, 'tenant_mismatch', 'host');
    assert.equal((await tickets(token, { host: 'globex.localhost' })).statusCode, 200);
  });
});
