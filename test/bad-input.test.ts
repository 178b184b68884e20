import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorCatalog, type ErrorCode } from '../src/errors.js';
import { demoTenants, type FixtureTenant } from '../app/fixtures.js';
import { ADMIN_TOKEN, pooledDemoTenants, startTestStack, type TestStack } from './helpers.js';

/**
 * Every route that takes a body, a query or path parameters, fed wrong types, unknown fields,
 * bad ids and cursors, oversized, malformed and non-JSON bodies: each answer is a 4xx
 * problem+json with a code of the error catalog, and nothing is written.
 */

// Acme and Globex, pooled: every row these requests could write lives in this test's database.
const fixtures = pooledDemoTenants.filter((t) => t.slug === 'acme' || t.slug === 'globex');
const acme = fixtures.find((t) => t.slug === 'acme')!;
const globex = fixtures.find((t) => t.slug === 'globex')!;
const TICKET = acme.tickets[0]!.id;
const AGENT = acme.users.find((u) => u.role === 'agent')!.id;
const URN = `urn:uuid:${TICKET}`;

type Who = 'owner' | 'login' | 'admin';
interface Case {
  readonly name: string;
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  readonly url: string;
  /** Raw request body; sent with `type` (default application/json). */
  readonly body?: string;
  readonly type?: string;
  readonly who: Who;
  readonly status: number;
  readonly code: ErrorCode;
}

const j = (v: unknown) => JSON.stringify(v);
const huge = (base: Record<string, unknown>) => j({ ...base, padding: 'x'.repeat(70 * 1024) });
const BAD_JSON = '{"a": 1,';

/** Body cases every JSON route shares: not an object, malformed, empty, not JSON, too large. */
function bodyShapes(name: string, method: Case['method'], url: string, who: Who, valid: Record<string, unknown>): Case[] {
  const c = (label: string, body: string, status: number, code: ErrorCode, type?: string): Case =>
    ({ name: `${name}: ${label}`, method, url, body, who, status, code, ...(type ? { type } : {}) });
  return [
    c('array body', j([valid]), 400, 'validation_failed'),
    c('null body', 'null', 400, 'validation_failed'),
    c('string body', j('hello'), 400, 'validation_failed'),
    c('number body', '42', 400, 'validation_failed'),
    c('unknown field', j({ ...valid, unexpected: true }), 400, 'validation_failed'),
    c('tenant_id smuggled in', j({ ...valid, tenant_id: globex.id }), 400, 'validation_failed'),
    c('malformed JSON', BAD_JSON, 400, 'malformed_json'),
    c('truncated JSON', j(valid).slice(0, -1), 400, 'malformed_json'),
    c('empty JSON body', '', 400, 'malformed_json'),
    c('__proto__ key', `{"__proto__": {"role": "owner"}, ${j(valid).slice(1)}`, 400, 'malformed_json'),
    c('text/plain', j(valid), 415, 'unsupported_media_type', 'text/plain'),
    c('form-urlencoded', 'a=1&b=2', 415, 'unsupported_media_type', 'application/x-www-form-urlencoded'),
    c('xml', '<a/>', 415, 'unsupported_media_type', 'application/xml'),
    c('body over 64 KiB', huge(valid), 413, 'payload_too_large'),
  ];
}

/** Query cases of a page query (limit and cursor). */
function pageQuery(name: string, url: string, who: Who, cursorCode: ErrorCode = 'invalid_cursor', maxLimit = 100): Case[] {
  const sep = url.includes('?') ? '&' : '?';
  const c = (label: string, qs: string, code: ErrorCode = 'validation_failed'): Case =>
    ({ name: `${name}: ${label}`, method: 'GET', url: `${url}${sep}${qs}`, who, status: 400, code });
  return [
    c('limit=abc', 'limit=abc'),
    c('limit=0', 'limit=0'),
    c('limit=-1', 'limit=-1'),
    c(`limit=${maxLimit + 1}`, `limit=${maxLimit + 1}`),
    c('limit=1.5', 'limit=1.5'),
    c('limit empty', 'limit='),
    c('limit twice (array)', 'limit=1&limit=2'),
    c('limit=1e400', 'limit=1e400'),
    c('cursor=!!!', 'cursor=!!!', cursorCode),
    c('cursor of a non-uuid', `cursor=${Buffer.from('not-a-uuid').toString('base64url')}`, cursorCode),
    c('cursor too long', `cursor=${'A'.repeat(65)}`),
    c('cursor empty', 'cursor=', cursorCode === 'invalid_cursor' ? 'validation_failed' : cursorCode),
    c('unknown parameter', 'unexpected=1'),
  ];
}

/** Path cases of an :id route. */
function badIds(name: string, method: Case['method'], pattern: string, who: Who, body?: Record<string, unknown>): Case[] {
  return ['not-a-uuid', '123', URN, `${TICKET}x`, TICKET.replace(/-/g, ''), `{${TICKET}}`].map((id) => ({
    name: `${name}: id ${JSON.stringify(id)}`, method, url: pattern.replace(':id', encodeURIComponent(id)), who,
    status: 400, code: 'validation_failed' as const, ...(body ? { body: j(body) } : {}),
  }));
}

const validUser = { email: 'new-user@acme.test', name: 'New User', password: 'password-123', role: 'agent' };
const validTicket = { title: 'A new ticket' };
const validComment = { body: 'A new comment' };
const validKey = { name: 'ci key' };
const validTenant = { slug: 'newco', name: 'NewCo', owner: { email: 'owner@newco.test', password: 'password-123', name: 'Owner' } };
const login = { email: 'owner@acme.test', password: 'acme-owner-password' };

function v(name: string, method: Case['method'], url: string, who: Who, body: unknown): Case {
  return { name, method, url, who, body: j(body), status: 400, code: 'validation_failed' };
}

const cases: Case[] = [
  // POST /auth/token
  v('token: email is a number', 'POST', '/api/v1/auth/token', 'login', { ...login, email: 5 }),
  v('token: password is a number', 'POST', '/api/v1/auth/token', 'login', { ...login, password: 12345678 }),
  v('token: password is null', 'POST', '/api/v1/auth/token', 'login', { ...login, password: null }),
  v('token: email is an array', 'POST', '/api/v1/auth/token', 'login', { ...login, email: [login.email] }),
  v('token: email is not an email', 'POST', '/api/v1/auth/token', 'login', { ...login, email: 'owner' }),
  v('token: password missing', 'POST', '/api/v1/auth/token', 'login', { email: login.email }),
  v('token: empty object', 'POST', '/api/v1/auth/token', 'login', {}),
  v('token: NUL in the password', 'POST', '/api/v1/auth/token', 'login', { ...login, password: 'acme\u0000' }),
  ...bodyShapes('token', 'POST', '/api/v1/auth/token', 'login', login),

  // POST /users
  v('create user: name is a number', 'POST', '/api/v1/users', 'owner', { ...validUser, name: 42 }),
  v('create user: role is not a role', 'POST', '/api/v1/users', 'owner', { ...validUser, role: 'superuser' }),
  v('create user: role is null', 'POST', '/api/v1/users', 'owner', { ...validUser, role: null }),
  v('create user: email is an array', 'POST', '/api/v1/users', 'owner', { ...validUser, email: [validUser.email] }),
  v('create user: email is not an email', 'POST', '/api/v1/users', 'owner', { ...validUser, email: 'new-user' }),
  v('create user: password too short', 'POST', '/api/v1/users', 'owner', { ...validUser, password: 'short' }),
  v('create user: password is a number', 'POST', '/api/v1/users', 'owner', { ...validUser, password: 1234567890 }),
  v('create user: role missing', 'POST', '/api/v1/users', 'owner', { ...validUser, role: undefined }),
  v('create user: empty name', 'POST', '/api/v1/users', 'owner', { ...validUser, name: '' }),
  v('create user: id smuggled in', 'POST', '/api/v1/users', 'owner', { ...validUser, id: AGENT }),
  v('create user: NUL in the name', 'POST', '/api/v1/users', 'owner', { ...validUser, name: 'New\u0000User' }),
  ...bodyShapes('create user', 'POST', '/api/v1/users', 'owner', validUser),

  // GET /users, /users/:id, PATCH and DELETE /users/:id
  ...pageQuery('list users', '/api/v1/users', 'owner'),
  ...badIds('get user', 'GET', '/api/v1/users/:id', 'owner'),
  ...badIds('delete user', 'DELETE', '/api/v1/users/:id', 'owner'),
  ...badIds('update user', 'PATCH', '/api/v1/users/:id', 'owner', { name: 'Renamed' }),
  v('update user: empty body {}', 'PATCH', `/api/v1/users/${AGENT}`, 'owner', {}),
  v('update user: name is a number', 'PATCH', `/api/v1/users/${AGENT}`, 'owner', { name: 5 }),
  v('update user: name is null', 'PATCH', `/api/v1/users/${AGENT}`, 'owner', { name: null }),
  v('update user: role is not a role', 'PATCH', `/api/v1/users/${AGENT}`, 'owner', { role: 'root' }),
  v('update user: password too short', 'PATCH', `/api/v1/users/${AGENT}`, 'owner', { password: 'short' }),
  v('update user: email is not updatable', 'PATCH', `/api/v1/users/${AGENT}`, 'owner', { email: 'other@acme.test' }),
  v('update user: valid name with an unknown field', 'PATCH', `/api/v1/users/${AGENT}`, 'owner', { name: 'Renamed', admin: true }),
  ...bodyShapes('update user', 'PATCH', `/api/v1/users/${AGENT}`, 'owner', { name: 'Renamed' }),

  // GET /tickets
  ...pageQuery('list tickets', '/api/v1/tickets', 'owner'),
  ...pageQuery('list tickets with a status', '/api/v1/tickets?status=open', 'owner'),
  ...[
    ['status=bogus', 'status=bogus'],
    ['status twice', 'status=open&status=closed'],
    ['q empty', 'q='],
    ['q over 200 characters', `q=${'x'.repeat(201)}`],
    ['q with a NUL', 'q=a%00b'],
  ].map(([label, qs]): Case => ({ name: `list tickets: ${label}`, method: 'GET', url: `/api/v1/tickets?${qs}`, who: 'owner', status: 400, code: 'validation_failed' })),

  // POST /tickets
  v('create ticket: title is a number', 'POST', '/api/v1/tickets', 'owner', { title: 1 }),
  v('create ticket: title is null', 'POST', '/api/v1/tickets', 'owner', { title: null }),
  v('create ticket: title is empty', 'POST', '/api/v1/tickets', 'owner', { title: '' }),
  v('create ticket: title over 200 characters', 'POST', '/api/v1/tickets', 'owner', { title: 'x'.repeat(201) }),
  v('create ticket: title missing', 'POST', '/api/v1/tickets', 'owner', { description: 'no title' }),
  v('create ticket: description is an array', 'POST', '/api/v1/tickets', 'owner', { ...validTicket, description: ['a'] }),
  v('create ticket: description over 20000 characters', 'POST', '/api/v1/tickets', 'owner', { ...validTicket, description: 'x'.repeat(20_001) }),
  v('create ticket: priority is not a priority', 'POST', '/api/v1/tickets', 'owner', { ...validTicket, priority: 'asap' }),
  v('create ticket: assignee_id is not a uuid', 'POST', '/api/v1/tickets', 'owner', { ...validTicket, assignee_id: 'bob' }),
  v('create ticket: assignee_id is a urn:uuid', 'POST', '/api/v1/tickets', 'owner', { ...validTicket, assignee_id: `urn:uuid:${AGENT}` }),
  v('create ticket: assignee_id is a number', 'POST', '/api/v1/tickets', 'owner', { ...validTicket, assignee_id: 7 }),
  v('create ticket: status is not settable', 'POST', '/api/v1/tickets', 'owner', { ...validTicket, status: 'closed' }),
  v('create ticket: requester_id is not settable', 'POST', '/api/v1/tickets', 'owner', { ...validTicket, requester_id: AGENT }),
  v('create ticket: NUL in the title', 'POST', '/api/v1/tickets', 'owner', { title: 'a\u0000b' }),
  ...bodyShapes('create ticket', 'POST', '/api/v1/tickets', 'owner', validTicket),

  // GET, PATCH, DELETE /tickets/:id
  ...badIds('get ticket', 'GET', '/api/v1/tickets/:id', 'owner'),
  ...badIds('delete ticket', 'DELETE', '/api/v1/tickets/:id', 'owner'),
  ...badIds('update ticket', 'PATCH', '/api/v1/tickets/:id', 'owner', { status: 'closed' }),
  v('update ticket: empty body {}', 'PATCH', `/api/v1/tickets/${TICKET}`, 'owner', {}),
  v('update ticket: status is not a status', 'PATCH', `/api/v1/tickets/${TICKET}`, 'owner', { status: 'done' }),
  v('update ticket: title is a number', 'PATCH', `/api/v1/tickets/${TICKET}`, 'owner', { title: 3 }),
  v('update ticket: title is null', 'PATCH', `/api/v1/tickets/${TICKET}`, 'owner', { title: null }),
  v('update ticket: priority is an array', 'PATCH', `/api/v1/tickets/${TICKET}`, 'owner', { priority: ['high'] }),
  v('update ticket: assignee_id is not a uuid', 'PATCH', `/api/v1/tickets/${TICKET}`, 'owner', { assignee_id: 'nobody' }),
  v('update ticket: id is not updatable', 'PATCH', `/api/v1/tickets/${TICKET}`, 'owner', { id: AGENT }),
  v('update ticket: valid status with an unknown field', 'PATCH', `/api/v1/tickets/${TICKET}`, 'owner', { status: 'closed', deleted: true }),
  ...bodyShapes('update ticket', 'PATCH', `/api/v1/tickets/${TICKET}`, 'owner', { status: 'closed' }),

  // GET and POST /tickets/:id/comments
  ...badIds('list comments', 'GET', '/api/v1/tickets/:id/comments', 'owner'),
  ...pageQuery('list comments', `/api/v1/tickets/${TICKET}/comments`, 'owner'),
  ...badIds('comment', 'POST', '/api/v1/tickets/:id/comments', 'owner', validComment),
  v('comment: body is a number', 'POST', `/api/v1/tickets/${TICKET}/comments`, 'owner', { body: 1 }),
  v('comment: body is null', 'POST', `/api/v1/tickets/${TICKET}/comments`, 'owner', { body: null }),
  v('comment: body is empty', 'POST', `/api/v1/tickets/${TICKET}/comments`, 'owner', { body: '' }),
  v('comment: body is an object', 'POST', `/api/v1/tickets/${TICKET}/comments`, 'owner', { body: { text: 'x' } }),
  v('comment: body missing', 'POST', `/api/v1/tickets/${TICKET}/comments`, 'owner', { text: 'x' }),
  v('comment: author_id is not settable', 'POST', `/api/v1/tickets/${TICKET}/comments`, 'owner', { ...validComment, author_id: AGENT }),
  v('comment: NUL in the body', 'POST', `/api/v1/tickets/${TICKET}/comments`, 'owner', { body: '\u0000' }),
  ...bodyShapes('comment', 'POST', `/api/v1/tickets/${TICKET}/comments`, 'owner', validComment),

  // POST and DELETE /api-keys
  v('api key: name is a number', 'POST', '/api/v1/api-keys', 'owner', { name: 1 }),
  v('api key: name is null', 'POST', '/api/v1/api-keys', 'owner', { name: null }),
  v('api key: name is empty', 'POST', '/api/v1/api-keys', 'owner', { name: '' }),
  v('api key: name over 100 characters', 'POST', '/api/v1/api-keys', 'owner', { name: 'x'.repeat(101) }),
  v('api key: name missing', 'POST', '/api/v1/api-keys', 'owner', { role: 'agent' }),
  v('api key: role owner is not allowed', 'POST', '/api/v1/api-keys', 'owner', { ...validKey, role: 'owner' }),
  v('api key: role is not a role', 'POST', '/api/v1/api-keys', 'owner', { ...validKey, role: 'root' }),
  v('api key: tenantId (camel case) smuggled in', 'POST', '/api/v1/api-keys', 'owner', { ...validKey, tenantId: globex.id }),
  v('api key: NUL in the name', 'POST', '/api/v1/api-keys', 'owner', { name: 'ci\u0000' }),
  ...bodyShapes('api key', 'POST', '/api/v1/api-keys', 'owner', validKey),
  ...badIds('revoke api key', 'DELETE', '/api/v1/api-keys/:id', 'owner'),

  // POST /admin/api/tenants
  v('create tenant: slug is a number', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, slug: 123 }),
  v('create tenant: slug upper-case', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, slug: 'NewCo' }),
  v('create tenant: slug of 2 characters', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, slug: 'nc' }),
  v('create tenant: slug with a leading hyphen', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, slug: '-newco' }),
  v('create tenant: reserved slug', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, slug: 'www' }),
  v('create tenant: name is null', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, name: null }),
  v('create tenant: name is empty', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, name: '' }),
  v('create tenant: plan with upper case and punctuation', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, plan: 'Pro!' }),
  v('create tenant: isolation unknown', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, isolation: 'shared' }),
  v('create tenant: id smuggled in', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, id: globex.id }),
  v('create tenant: status smuggled in', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, status: 'active' }),
  v('create tenant: owner missing', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, owner: undefined }),
  v('create tenant: owner is a string', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, owner: 'owner@newco.test' }),
  v('create tenant: owner email not an email', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, owner: { ...validTenant.owner, email: 'owner' } }),
  v('create tenant: owner password too short', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, owner: { ...validTenant.owner, password: 'short' } }),
  v('create tenant: owner with an unknown field', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, owner: { ...validTenant.owner, role: 'admin' } }),
  v('create tenant: NUL in the name', 'POST', '/admin/api/tenants', 'admin', { ...validTenant, name: 'New\u0000Co' }),
  ...bodyShapes('create tenant', 'POST', '/admin/api/tenants', 'admin', validTenant),

  // GET /admin/api/tenants (its cursor is a tenant id, so a bad one is a validation error)
  ...pageQuery('list tenants', '/admin/api/tenants', 'admin', 'invalid_cursor', 500),
  { name: 'list tenants: cursor is a urn:uuid', method: 'GET', url: `/admin/api/tenants?cursor=${encodeURIComponent(`urn:uuid:${acme.id}`)}`, who: 'admin', status: 400, code: 'invalid_cursor' },

  // GET /admin/api/tenants/:id, suspend, resume
  ...badIds('show tenant', 'GET', '/admin/api/tenants/:id', 'admin'),
  ...badIds('suspend tenant', 'POST', '/admin/api/tenants/:id/suspend', 'admin'),
  ...badIds('resume tenant', 'POST', '/admin/api/tenants/:id/resume', 'admin'),
];

const PROBLEM_KEYS = new Set(['type', 'title', 'status', 'code', 'detail', 'instance', 'request_id', 'errors', 'retry_after']);
const TABLES = ['app.users', 'app.tickets', 'app.comments', 'tenantry.tenants', 'tenantry.api_keys'] as const;

describe('bad input: every route answers 4xx problem+json and writes nothing', () => {
  let stack: TestStack;
  let headers: Record<Who, Record<string, string>>;
  let before0: Record<string, { n: number; digest: string | null }>;

  /** Row count and a digest of every row of the tables a request could write. */
  async function snapshot(): Promise<Record<string, { n: number; digest: string | null }>> {
    const out: Record<string, { n: number; digest: string | null }> = {};
    for (const table of TABLES) {
      const [row] = await stack.admin.query<{ n: number; digest: string | null }>(
        `select count(*)::int as n, md5(string_agg(t::text, '|' order by t::text)) as digest from ${table} t`);
      out[table] = { n: row!.n, digest: row!.digest };
    }
    return out;
  }

  before(async () => {
    stack = await startTestStack({}, fixtures);
    headers = {
      owner: { authorization: `Bearer ${await stack.token('acme', 'owner')}` },
      login: { 'x-tenant': 'acme' },
      admin: { authorization: `Bearer ${ADMIN_TOKEN}` },
    };
    before0 = await snapshot();
  });
  after(async () => { await stack.close(); });

  it('the table covers every route with a body, query or params', () => {
    const literal = new Set(['api', 'v1', 'auth', 'token', 'users', 'tickets', 'comments', 'api-keys', 'admin', 'tenants', 'suspend', 'resume']);
    const routeOf = (c: Case) => `${c.method} ${c.url.split('?')[0]!.split('/').map((seg) => (!seg || literal.has(seg) ? seg : ':id')).join('/')}`;
    const routes = new Set(cases.map(routeOf));
    for (const r of [
      'POST /api/v1/auth/token', 'POST /api/v1/users', 'GET /api/v1/users', 'GET /api/v1/users/:id', 'PATCH /api/v1/users/:id',
      'DELETE /api/v1/users/:id', 'GET /api/v1/tickets', 'POST /api/v1/tickets', 'GET /api/v1/tickets/:id', 'PATCH /api/v1/tickets/:id',
      'DELETE /api/v1/tickets/:id', 'GET /api/v1/tickets/:id/comments', 'POST /api/v1/tickets/:id/comments', 'POST /api/v1/api-keys',
      'DELETE /api/v1/api-keys/:id', 'POST /admin/api/tenants', 'GET /admin/api/tenants', 'GET /admin/api/tenants/:id',
      'POST /admin/api/tenants/:id/suspend', 'POST /admin/api/tenants/:id/resume',
    ]) assert.ok(routes.has(r), `no case for ${r}`);
    assert.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'two cases have the same name');
  });

  for (const c of cases) {
    it(`${c.status} ${c.code}: ${c.method} ${c.name}`, async () => {
      const res = await stack.app.inject({
        method: c.method,
        url: c.url,
        headers: { ...headers[c.who], ...(c.body !== undefined ? { 'content-type': c.type ?? 'application/json' } : {}) },
        ...(c.body !== undefined ? { payload: c.body } : {}),
      });
      assert.equal(res.statusCode, c.status, `expected ${c.status} ${c.code}, got ${res.statusCode} ${res.body.slice(0, 300)}`);
      assert.ok(res.statusCode >= 400 && res.statusCode < 500);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const body = res.json() as Record<string, unknown>;
      assert.equal(body.code, c.code, res.body.slice(0, 300));
      assert.ok(typeof body.code === 'string' && body.code in errorCatalog, `unknown code ${String(body.code)}`);
      assert.equal(body.status, res.statusCode);
      assert.equal(errorCatalog[c.code].status, res.statusCode);
      assert.equal(body.type, `urn:tenantry:problem:${c.code}`);
      assert.equal(body.title, errorCatalog[c.code].title);
      for (const key of Object.keys(body)) assert.ok(PROBLEM_KEYS.has(key), `unexpected key "${key}" in ${res.body.slice(0, 300)}`);
    });
  }

  it('nothing was written by the whole batch', async () => {
    assert.deepEqual(await snapshot(), before0);
  });

  // Run last: shows the snapshot sees a write, and that the valid twin of a refused request passes.
  it('control: valid requests on the same routes succeed and change the snapshot', async () => {
    const send = (method: Case['method'], url: string, who: Who, body: unknown) => stack.app.inject({
      method, url, headers: { ...headers[who], 'content-type': 'application/json' }, payload: j(body),
    });
    const ticket = await send('POST', '/api/v1/tickets', 'owner', validTicket);
    assert.equal(ticket.statusCode, 201, ticket.body);
    const comment = await send('POST', `/api/v1/tickets/${TICKET}/comments`, 'owner', validComment);
    assert.equal(comment.statusCode, 201, comment.body);
    const patch = await send('PATCH', `/api/v1/users/${AGENT}`, 'owner', { name: 'Renamed' });
    assert.equal(patch.statusCode, 200, patch.body);
    const key = await send('POST', '/api/v1/api-keys', 'owner', validKey);
    assert.equal(key.statusCode, 201, key.body);
    const token = await send('POST', '/api/v1/auth/token', 'login', login);
    assert.equal(token.statusCode, 200, token.body);
    const list = await stack.app.inject({ url: '/api/v1/tickets?limit=1', headers: headers.owner });
    assert.equal(list.statusCode, 200, list.body);
    const next = (list.json() as { next_cursor: string }).next_cursor;
    const page2 = await stack.app.inject({ url: `/api/v1/tickets?limit=1&cursor=${next}`, headers: headers.owner });
    assert.equal(page2.statusCode, 200, page2.body);
    const after1 = await snapshot();
    for (const table of ['app.users', 'app.tickets', 'app.comments', 'tenantry.api_keys']) {
      assert.notDeepEqual(after1[table], before0[table], `${table} should have changed`);
    }
    assert.equal(after1['app.tickets']!.n, before0['app.tickets']!.n + 1);
    assert.equal(after1['app.comments']!.n, before0['app.comments']!.n + 1);
    assert.equal(after1['app.users']!.n, before0['app.users']!.n);
  });
});
