/**
 * Tenant isolation over HTTP: every route and method of the helpdesk API under /api/v1, driven
 * through the real Fastify app (inject) on a real PostgreSQL (no mocks).
 *
 * - A tenant asking for another tenant's ids gets exactly the answer of an id that does not exist
 *   (404 not_found, same status, content type, headers and bytes apart from `instance` and
 *   `request_id`), in both directions, for reads, nested reads and writes; after each attempted
 *   write the whole database (superuser view) and the victim's own API show that nothing changed.
 * - Lists, pagination cursors and search only ever return the caller's rows (checked against the
 *   superuser's ground truth), while the same calls by the owner succeed (positive controls).
 * - Identification (subdomain, X-Tenant slug/id, JWT alone, API key) agrees, and every conflict
 *   between sources is refused with its own code; suspension refuses and resume restores.
 * - Many tenants (all three placements) interleaved with random delays only see their rows.
 *
 * The tenants: the demo fixtures (acme pooled, globex schema, initech database) and one more
 * tenant per placement, so every ordered pair of placements is tried, and each placement
 * against itself. Ground truth is read as the superuser wherever the tenant's rows live.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { demoTenants, fixtureId, fixtureTenant, type FixtureTenant } from '../app/fixtures.js';
import { encodeCursor } from '../app/pagination.js';
import { ADMIN_TOKEN, startTestStack, type TestStack } from './helpers.js';

const API = '/api/v1';
const PROBLEM = 'application/problem+json; charset=utf-8';
const [acme, globex, initech] = demoTenants as readonly [FixtureTenant, FixtureTenant, FixtureTenant];
/** A second tenant in each placement, for the same-placement pairs. */
const umbrella = fixtureTenant(4, 'umbrella', 'Umbrella', 'pro', 'pooled');
const hooli = fixtureTenant(5, 'hooli', 'Hooli', 'business', 'schema');
const stark = fixtureTenant(6, 'stark', 'Stark', 'enterprise', 'database');
const fixtures = [acme, globex, initech, umbrella, hooli, stark] as const;
/** Ordered pairs (self, other): every placement against every other, and against itself. */
const pairs: readonly (readonly [FixtureTenant, FixtureTenant])[] = [
  [acme, globex], [globex, acme], [acme, initech], [initech, acme], [globex, initech], [initech, globex],
  [acme, umbrella], [umbrella, acme], [globex, hooli], [hooli, globex], [initech, stark], [stark, initech],
];
const label = (f: FixtureTenant) => `${f.slug} (${f.isolation})`;
const statuses = ['open', 'pending', 'resolved', 'closed'] as const;

interface Ticket {
  id: string; title: string; description: string; status: string; priority: string;
  requester_id: string | null; assignee_id: string | null; created_at: string; updated_at: string;
}
interface User { id: string; email: string; name: string; role: string; created_at: string; updated_at: string }
interface Comment { id: string; ticket_id: string; author_id: string | null; body: string; created_at: string }
interface Page<T> { data: T[]; next_cursor: string | null }
interface ApiKey { id: string; tenantId: string; name: string; prefix: string; role: string; revokedAt: string | null; key?: string }
interface Me { user?: User; api_key?: { id: string; role: string }; tenant: { id: string; slug: string; name: string } }

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
interface Req {
  readonly method?: Method;
  /** Path under /api/v1, with query string. */
  readonly url: string;
  readonly token?: string;
  readonly apiKey?: string;
  readonly host?: string;
  readonly tenant?: string;
  readonly headers?: Record<string, string>;
  readonly payload?: Record<string, unknown>;
}
type Auth = Omit<Req, 'url' | 'method' | 'payload'>;

let stack: TestStack;

function send(r: Req): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...r.headers };
  if (r.token) headers.authorization = `Bearer ${r.token}`;
  if (r.apiKey) headers['x-api-key'] = r.apiKey;
  if (r.host) headers.host = r.host;
  if (r.tenant) headers['x-tenant'] = r.tenant;
  return stack.app.inject({ method: r.method ?? 'GET', url: API + r.url, headers, ...(r.payload ? { payload: r.payload } : {}) });
}

function adminApi(method: Method, url: string, payload?: Record<string, unknown>, token = ADMIN_TOKEN): Promise<LightMyRequestResponse> {
  return stack.app.inject({
    method, url: '/admin/api' + url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}),
  });
}

/** Asserts the status and returns the parsed JSON body (undefined for 204). */
function ok<T>(res: LightMyRequestResponse, status = 200): T {
  assert.equal(res.statusCode, status, `expected ${status}, got ${res.statusCode}: ${res.body}`);
  if (status === 204) {
    assert.equal(res.body, '');
    return undefined as T;
  }
  assert.match(String(res.headers['content-type']), /^application\/json/);
  return res.json() as T;
}

function expectProblem(res: LightMyRequestResponse, status: number, code: string): Record<string, unknown> {
  assert.equal(res.statusCode, status, `expected ${status} ${code}, got ${res.statusCode}: ${res.body}`);
  assert.equal(res.headers['content-type'], PROBLEM);
  const body = res.json() as Record<string, unknown>;
  assert.equal(body.code, code, res.body);
  assert.equal(body.status, status);
  return body;
}

/**
 * Everything a client can observe of a response, with only the two per-request values of a
 * problem (`instance`, `request_id`) blanked: status, content type, length, header names and the
 * exact bytes of the body.
 */
function observable(res: LightMyRequestResponse) {
  let body = res.body;
  if (res.headers['content-type'] === PROBLEM) {
    const p = res.json() as Record<string, unknown>;
    for (const key of ['instance', 'request_id'] as const) {
      assert.equal(typeof p[key], 'string', `problem without ${key}: ${res.body}`);
      const field = `"${key}":${JSON.stringify(p[key])}`;
      assert.ok(body.includes(field), `${field} not found verbatim in ${body}`);
      body = body.replace(field, `"${key}":"<${key}>"`);
    }
  }
  return {
    status: res.statusCode,
    contentType: res.headers['content-type'],
    contentLength: res.headers['content-length'],
    headerNames: Object.keys(res.headers).filter((h) => h !== 'date').sort(),
    body,
  };
}

/**
 * The request on a foreign id answers 404 not_found, indistinguishable from the same request on
 * a random id that exists nowhere.
 */
async function assertLikeUnknown(make: (id: string) => Req, foreignId: string, status = 404, code = 'not_found'): Promise<void> {
  const req = make(foreignId);
  const foreign = await send(req);
  const missing = await send(make(randomUUID()));
  const label = `${req.method ?? 'GET'} ${req.url}`;
  const body = expectProblem(foreign, status, code);
  expectProblem(missing, status, code);
  assert.equal(body.instance, API + req.url, label);
  assert.deepEqual(observable(foreign), observable(missing), label);
}

/**
 * The whole database as the superuser sees it (RLS does not apply): the rows of every place tenant
 * rows live (shared schema, tenant schemas, tenant databases), the API keys and the catalog.
 */
async function world(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const stores = await stack.stores();
  for (const table of ['users', 'tickets', 'comments']) {
    const rows: { k: string; j: string }[] = [];
    for (const s of stores) {
      rows.push(...await s.sql.query<{ k: string; j: string }>(
        `select tenant_id::text || '/' || id::text as k, to_jsonb(x)::text as j from ${s.table(table)} x`));
    }
    out[table] = rows.sort((a, b) => a.k.localeCompare(b.k)).map((r) => r.j);
  }
  // last_used_at is written in the background (batched, at most once a minute per key): not a change anyone made.
  out.api_keys = (await stack.admin.query<{ j: string }>("select (to_jsonb(k) - 'last_used_at')::text as j from tenantry.api_keys k order by id")).map((r) => r.j);
  out.tenants = (await stack.admin.query<{ j: string }>('select to_jsonb(t)::text as j from tenantry.tenants t order by id')).map((r) => r.j);
  return out;
}

/** Ground truth: ids of a tenant's rows where its placement keeps them, ascending. */
async function idsOf(table: 'users' | 'tickets' | 'comments', tenantId: string, and = '', params: string[] = []): Promise<string[]> {
  const s = await stack.storeOf(tenantId);
  const rows = await s.sql.query<{ id: string }>(
    `select id::text as id from ${s.table(table)} where tenant_id = $1 ${and} order by id`, [tenantId, ...params]);
  return rows.map((r) => r.id);
}

/** Every copy of row `id` in any place tenant rows live, with its tenant_id and requester (tickets). */
async function copiesOf(table: 'users' | 'tickets', id: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const s of await stack.stores()) {
    out.push(...await s.sql.query<Record<string, unknown>>(
      `select tenant_id::text as tenant_id${table === 'tickets' ? ', requester_id' : ''} from ${s.table(table)} where id = $1`, [id]));
  }
  return out;
}

/** Follows next_cursor to the end; returns every row seen. */
async function walk<T extends { id: string }>(url: string, auth: Auth, limit: number): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | null = null;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 200, 'pagination does not end');
    const sep = url.includes('?') ? '&' : '?';
    const page: Page<T> = ok<Page<T>>(await send({ ...auth, url: `${url}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}` }));
    assert.ok(page.data.length <= limit);
    all.push(...page.data);
    cursor = page.next_cursor;
    if (!cursor) return all;
    assert.equal(page.data.length, limit, 'a page with a next cursor is full');
  }
}

const sorted = (xs: readonly string[]) => [...xs].sort();
const tenantNumber = (f: FixtureTenant) => Number.parseInt(f.id.slice(4, 8), 16);
const commentIdOf = (f: FixtureTenant) => fixtureId(tenantNumber(f), 3, 1);
const jitter = () => sleep(Math.random() * 5);
/** A word no fixture contains. */
const nonsense = (n: number) => Array.from({ length: n }, () => 'qxzj'[Math.floor(Math.random() * 4)]).join('');

async function login(f: FixtureTenant, role: 'owner' | 'admin' | 'agent', via: Auth, password?: string): Promise<LightMyRequestResponse> {
  const u = f.users.find((x) => x.role === role)!;
  return send({ ...via, method: 'POST', url: '/auth/token', payload: { email: u.email, password: password ?? u.password } });
}

async function createKey(token: string, name: string, role: 'admin' | 'agent' = 'admin'): Promise<ApiKey & { key: string }> {
  const created = ok<ApiKey & { key: string }>(await send({ method: 'POST', url: '/api-keys', token, payload: { name, role } }), 201);
  assert.match(created.key, /^tk_[0-9a-f]{12}_[A-Za-z0-9_-]{32}$/);
  return created;
}

/** Whatever the other tenant sees of its own data through its own API. */
async function viewOf(f: FixtureTenant): Promise<unknown> {
  const token = await stack.token(f.slug);
  const tickets = ok<Page<Ticket>>(await send({ url: '/tickets?limit=100', token }));
  const users = ok<Page<User>>(await send({ url: '/users?limit=100', token }));
  const comments = [];
  for (const t of tickets.data) comments.push(ok<Page<Comment>>(await send({ url: `/tickets/${t.id}/comments?limit=100`, token })));
  const keys = ok<{ data: ApiKey[] }>(await send({ url: '/api-keys', token }));
  assert.ok(tickets.data.length >= 6 && users.data.length >= 3, 'the view is not empty');
  return { tickets, users, comments, keys };
}

describe('tenant isolation over HTTP', () => {
  // The stack drops every schema tenant's role and tenant database it created when it closes.
  before(async () => { stack = await startTestStack({}, fixtures); });
  after(async () => { await stack.close(); });

  for (const [self, other] of pairs) {
    describe(`${label(self)} against ${label(other)}`, () => {
      it(`GET /users/:id, /tickets/:id and /tickets/:id/comments on ${other.slug}'s ids answer exactly like an unknown id`, async () => {
        const otherToken = await stack.token(other.slug);
        for (const role of ['owner', 'admin', 'agent'] as const) {
          const token = await stack.token(self.slug, role);
          for (const u of other.users) await assertLikeUnknown((id) => ({ url: `/users/${id}`, token }), u.id);
          for (const t of other.tickets) {
            await assertLikeUnknown((id) => ({ url: `/tickets/${id}`, token }), t.id);
            await assertLikeUnknown((id) => ({ url: `/tickets/${id}/comments`, token }), t.id);
          }
          await assertLikeUnknown((id) => ({ url: `/tickets/${id}/comments?limit=1&cursor=${encodeCursor(commentIdOf(other))}`, token }), other.tickets[0]!.id);
          // Positive controls: the same reads on the caller's own ids succeed.
          for (const u of self.users) assert.equal(ok<User>(await send({ url: `/users/${u.id}`, token })).email, u.email);
          for (const t of self.tickets) assert.equal(ok<Ticket>(await send({ url: `/tickets/${t.id}`, token })).title, t.title);
          const comments = ok<Page<Comment>>(await send({ url: `/tickets/${self.tickets[0]!.id}/comments`, token }));
          assert.deepEqual(comments.data.map((c) => c.id), [commentIdOf(self)]);
        }
        // ... and the ids are real: their owner reads them.
        for (const u of other.users) assert.equal(ok<User>(await send({ url: `/users/${u.id}`, token: otherToken })).email, u.email);
        for (const t of other.tickets) assert.equal(ok<Ticket>(await send({ url: `/tickets/${t.id}`, token: otherToken })).title, t.title);
        const theirs = ok<Page<Comment>>(await send({ url: `/tickets/${other.tickets[0]!.id}/comments`, token: otherToken }));
        assert.deepEqual(theirs.data.map((c) => c.id), [commentIdOf(other)]);
      });

      it(`GET /users and GET /tickets (status=, limit=, cursor=) list exactly ${self.slug}'s rows`, async () => {
        const token = await stack.token(self.slug, 'agent');
        const auth = { token };
        const otherIds = new Set([...(await idsOf('users', other.id)), ...(await idsOf('tickets', other.id)), ...(await idsOf('comments', other.id))]);
        assert.ok(otherIds.size >= 10);

        const users = await idsOf('users', self.id);
        const tickets = await idsOf('tickets', self.id);
        assert.ok(users.length >= 3 && tickets.length >= 6);
        for (const limit of [1, 2, 25, 100]) {
          const seenUsers = (await walk<User>('/users', auth, limit)).map((u) => u.id);
          assert.deepEqual(seenUsers, users, `users, limit ${limit}`); // ascending, no duplicates, nothing foreign
          const seenTickets = (await walk<Ticket>('/tickets', auth, limit)).map((t) => t.id);
          assert.deepEqual(seenTickets, [...tickets].reverse(), `tickets, limit ${limit}`);
        }
        for (const status of statuses) {
          const expected = await idsOf('tickets', self.id, 'and status = $2', [status]);
          assert.ok(expected.length > 0, `fixtures have ${status} tickets`);
          const seen = await walk<Ticket>(`/tickets?status=${status}`, auth, 1);
          assert.deepEqual(seen.map((t) => t.id), [...expected].reverse(), status);
          assert.ok(seen.every((t) => t.status === status && t.title.startsWith(`[${self.name}]`)));
        }
        assert.deepEqual(ok<Page<User>>(await send({ url: '/users', token })).data.map((u) => u.email), self.users.map((u) => u.email));

        // Cursors naming the other tenant's rows (forged, or taken from the other tenant's pages)
        // only ever move within the caller's own rows.
        const otherToken = await stack.token(other.slug);
        const theirTicketCursor = ok<Page<Ticket>>(await send({ url: '/tickets?limit=2', token: otherToken })).next_cursor;
        const theirUserCursor = ok<Page<User>>(await send({ url: '/users?limit=1', token: otherToken })).next_cursor;
        assert.ok(theirTicketCursor && theirUserCursor);
        const ticketCursors = [theirTicketCursor, ...other.tickets.map((t) => encodeCursor(t.id))];
        const userCursors = [theirUserCursor, ...other.users.map((u) => encodeCursor(u.id))];
        for (const cursor of ticketCursors) {
          const page = ok<Page<Ticket>>(await send({ url: `/tickets?limit=100&cursor=${cursor}`, token }));
          const before = Buffer.from(cursor, 'base64url').toString();
          assert.deepEqual(page.data.map((t) => t.id), [...tickets].reverse().filter((id) => id < before));
          for (const status of statuses) {
            const filtered = ok<Page<Ticket>>(await send({ url: `/tickets?status=${status}&cursor=${cursor}`, token }));
            assert.ok(filtered.data.every((t) => tickets.includes(t.id) && t.status === status));
          }
        }
        for (const cursor of userCursors) {
          const page = ok<Page<User>>(await send({ url: `/users?cursor=${cursor}`, token }));
          const afterId = Buffer.from(cursor, 'base64url').toString();
          assert.deepEqual(page.data.map((u) => u.id), users.filter((id) => id > afterId));
        }
        const own = ok<Page<Comment>>(await send({ url: `/tickets/${self.tickets[0]!.id}/comments?cursor=${encodeCursor(commentIdOf(other))}`, token }));
        assert.ok(own.data.every((c) => c.ticket_id === self.tickets[0]!.id && !otherIds.has(c.id)));
      });

      it(`GET /tickets?q= a word found only in ${other.slug}'s titles finds nothing, exactly like a word nobody uses`, async () => {
        const token = await stack.token(self.slug, 'agent');
        const otherToken = await stack.token(other.slug, 'agent');
        const word = other.name; // "[Globex] …" titles only exist in globex
        for (const q of [word, word.toLowerCase(), word.toUpperCase(), `[${word}]`, `${word}] Export`]) {
          for (const extra of ['', '&status=open', '&limit=1', `&cursor=${encodeCursor('ffffffff-ffff-7fff-bfff-ffffffffffff')}`]) {
            const url = `/tickets?q=${encodeURIComponent(q)}${extra}`;
            const foreign = await send({ url, token });
            const nobody = await send({ url: `/tickets?q=${nonsense(q.length)}${extra}`, token });
            assert.deepEqual(ok<Page<Ticket>>(foreign), { data: [], next_cursor: null }, url);
            assert.deepEqual(observable(foreign), observable(nobody), url);
            // Positive control: the owner of those titles finds them with the very same query.
            if (extra === '') {
              const theirs = ok<Page<Ticket>>(await send({ url, token: otherToken }));
              assert.ok(theirs.data.length > 0 && theirs.data.every((t) => t.title.startsWith(`[${other.name}]`)), `${other.slug} finds ${q}`);
            }
          }
        }
        // The caller's own name finds all of its titles, and nothing else.
        const mine = await walk<Ticket>(`/tickets?q=${encodeURIComponent(self.name)}`, { token }, 2);
        assert.deepEqual(sorted(mine.map((t) => t.id)), await idsOf('tickets', self.id, 'and title ilike $2', [`%${self.name}%`]));
        assert.ok(mine.length >= 6);
        // A word in everybody's descriptions returns only the caller's tickets.
        const shared = ok<Page<Ticket>>(await send({ url: `/tickets?q=${encodeURIComponent('password')}&limit=100`, token }));
        assert.deepEqual(sorted(shared.data.map((t) => t.id)),
          await idsOf('tickets', self.id, `and (title ilike '%password%' or description ilike '%password%')`));
        assert.ok(shared.data.length >= 1);
        // LIKE metacharacters are literal: "%" finds the one description with a percent sign, ours.
        const percent = ok<Page<Ticket>>(await send({ url: `/tickets?q=${encodeURIComponent('%')}&limit=100`, token }));
        assert.deepEqual(percent.data.map((t) => t.id), [self.tickets[1]!.id]);
        const underscore = ok<Page<Ticket>>(await send({ url: `/tickets?q=_&limit=100`, token }));
        assert.deepEqual(underscore.data, []);
      });

      it(`PATCH/DELETE and POST comments on ${other.slug}'s ids answer exactly like an unknown id and change nothing`, async () => {
        const token = await stack.token(self.slug, 'owner');
        const agent = await stack.token(self.slug, 'agent');
        const otherToken = await stack.token(other.slug);
        const victimKey = await createKey(otherToken, `victim key ${randomUUID()}`);
        const worldBefore = await world();
        const viewBefore = await viewOf(other);

        for (const t of other.tickets) {
          await assertLikeUnknown((id) => ({ method: 'PATCH', url: `/tickets/${id}`, token, payload: { title: 'pwned', status: 'closed' } }), t.id);
          await assertLikeUnknown((id) => ({ method: 'PATCH', url: `/tickets/${id}`, token, payload: { assignee_id: null } }), t.id);
          await assertLikeUnknown((id) => ({ method: 'PATCH', url: `/tickets/${id}`, token: agent, payload: { priority: 'urgent' } }), t.id);
          await assertLikeUnknown((id) => ({ method: 'DELETE', url: `/tickets/${id}`, token }), t.id);
          await assertLikeUnknown((id) => ({ method: 'POST', url: `/tickets/${id}/comments`, token, payload: { body: 'pwned' } }), t.id);
          await assertLikeUnknown((id) => ({ method: 'POST', url: `/tickets/${id}/comments`, token: agent, payload: { body: 'pwned' } }), t.id);
          // An agent may not delete tickets at all: the 403 comes before any lookup, so it says
          // nothing about whether the id exists either.
          await assertLikeUnknown((id) => ({ method: 'DELETE', url: `/tickets/${id}`, token: agent }), t.id, 403, 'insufficient_role');
        }
        for (const u of other.users) {
          await assertLikeUnknown((id) => ({ method: 'PATCH', url: `/users/${id}`, token, payload: { name: 'pwned', role: 'agent' } }), u.id);
          await assertLikeUnknown((id) => ({ method: 'PATCH', url: `/users/${id}`, token, payload: { password: 'pwned-password-1' } }), u.id);
          await assertLikeUnknown((id) => ({ method: 'DELETE', url: `/users/${id}`, token }), u.id);
          await assertLikeUnknown((id) => ({ method: 'DELETE', url: `/users/${id}`, token: agent }), u.id, 403, 'insufficient_role');
        }
        await assertLikeUnknown((id) => ({ method: 'DELETE', url: `/api-keys/${id}`, token }), victimKey.id);

        // Nothing changed anywhere, as the superuser sees it ...
        assert.deepEqual(await world(), worldBefore);
        // ... nor as the other tenant sees it through its own API,
        assert.deepEqual(await viewOf(other), viewBefore);
        // its passwords still work (a fresh login, not a cached token) and its key is not revoked.
        for (const role of ['owner', 'admin', 'agent'] as const) {
          ok(await login(other, role, { tenant: other.slug }));
          expectProblem(await login(other, role, { tenant: other.slug }, 'pwned-password-1'), 401, 'invalid_credentials');
        }
        assert.equal(ok<Me>(await send({ url: '/me', apiKey: victimKey.key })).tenant.id, other.id);
        // Positive control: the owner revokes its own key (204); the attacker still could not.
        ok(await send({ method: 'DELETE', url: `/api-keys/${victimKey.id}`, token: otherToken }), 204);
        expectProblem(await send({ url: '/me', apiKey: victimKey.key }), 401, 'invalid_api_key');
      });

      it(`the same writes on ${self.slug}'s own rows succeed (positive controls) and land in ${self.slug} only`, async () => {
        const token = await stack.token(self.slug, 'owner');
        const agentUser = self.users.find((u) => u.role === 'agent')!;
        const otherWorld = async () => {
          const w = await world();
          return Object.fromEntries(Object.entries(w).filter(([k]) => k !== 'tenants' && k !== 'api_keys')
            .map(([k, rows]) => [k, rows.filter((r) => (JSON.parse(r) as { tenant_id: string }).tenant_id !== self.id)]));
        };
        const othersBefore = await otherWorld();

        const ticket = ok<Ticket>(await send({ method: 'POST', url: '/tickets', token, payload: { title: `[${self.name}] own write`, priority: 'high', assignee_id: agentUser.id } }), 201);
        assert.deepEqual(await copiesOf('tickets', ticket.id), [{ tenant_id: self.id, requester_id: self.users[0]!.id }]);
        assert.equal(ok<Ticket>(await send({ url: `/tickets/${ticket.id}`, token })).title, `[${self.name}] own write`);
        const patched = ok<Ticket>(await send({ method: 'PATCH', url: `/tickets/${ticket.id}`, token, payload: { status: 'pending', assignee_id: null } }));
        assert.equal(patched.status, 'pending');
        assert.equal(patched.assignee_id, null);
        const comment = ok<Comment>(await send({ method: 'POST', url: `/tickets/${ticket.id}/comments`, token, payload: { body: 'mine' } }), 201);
        assert.equal(comment.ticket_id, ticket.id);
        const comments = ok<Page<Comment>>(await send({ url: `/tickets/${ticket.id}/comments`, token }));
        assert.deepEqual(comments.data.map((c) => c.id), [comment.id]);
        ok(await send({ method: 'DELETE', url: `/tickets/${ticket.id}`, token }), 204);
        // Once deleted, the own id answers exactly like an id that never existed.
        await assertLikeUnknown((id) => ({ url: `/tickets/${id}`, token }), ticket.id);
        await assertLikeUnknown((id) => ({ url: `/tickets/${id}/comments`, token }), ticket.id);

        const email = `new-${randomUUID().slice(0, 8)}@${self.slug}.test`;
        const user = ok<User>(await send({ method: 'POST', url: '/users', token, payload: { email, name: 'New', password: 'new-user-password', role: 'agent' } }), 201);
        assert.deepEqual(await copiesOf('users', user.id), [{ tenant_id: self.id }]);
        assert.equal(ok<User>(await send({ url: `/users/${user.id}`, token })).email, email);
        assert.equal(ok<User>(await send({ method: 'PATCH', url: `/users/${user.id}`, token, payload: { name: 'Renamed', role: 'admin' } })).role, 'admin');
        ok(await send({ method: 'DELETE', url: `/users/${user.id}`, token }), 204);
        await assertLikeUnknown((id) => ({ url: `/users/${id}`, token }), user.id);

        const key = await createKey(token, 'own key');
        const [krow] = await stack.admin.query<{ tenant_id: string }>('select tenant_id::text as tenant_id from tenantry.api_keys where id = $1', [key.id]);
        assert.equal(krow?.tenant_id, self.id);
        ok(await send({ method: 'DELETE', url: `/api-keys/${key.id}`, token }), 204);

        assert.deepEqual(await otherWorld(), othersBefore, 'writes of one tenant touch no other tenant\'s rows');
      });

      it(`a reference to a user of ${other.slug} is refused exactly like an unknown user (422) and writes nothing`, async () => {
        const token = await stack.token(self.slug);
        const own = ok<Ticket>(await send({ method: 'POST', url: '/tickets', token, payload: { title: `[${self.name}] reference target` } }), 201);
        const worldBefore = await world();
        for (const u of other.users) {
          await assertLikeUnknown((id) => ({ method: 'POST', url: '/tickets', token, payload: { title: `[${self.name}] x`, assignee_id: id } }), u.id, 422, 'invalid_reference');
          await assertLikeUnknown((id) => ({ method: 'PATCH', url: `/tickets/${own.id}`, token, payload: { assignee_id: id } }), u.id, 422, 'invalid_reference');
        }
        assert.deepEqual(await world(), worldBefore);
        // Positive control: the caller's own user is a valid assignee.
        const agentUser = self.users.find((u) => u.role === 'agent')!;
        assert.equal(ok<Ticket>(await send({ method: 'PATCH', url: `/tickets/${own.id}`, token, payload: { assignee_id: agentUser.id } })).assignee_id, agentUser.id);
        ok(await send({ method: 'DELETE', url: `/tickets/${own.id}`, token }), 204);
      });

      it(`POST /users with an email that exists only in ${other.slug} succeeds: no existence oracle across tenants`, async () => {
        const token = await stack.token(self.slug);
        const victim = other.users.find((u) => u.role === 'agent')!;
        const victimBefore = ok<User>(await send({ url: `/users/${victim.id}`, token: await stack.token(other.slug) }));
        const created = ok<User>(await send({ method: 'POST', url: '/users', token, payload: { email: victim.email, name: 'Same email', password: 'same-email-password', role: 'agent' } }), 201);
        try {
          assert.notEqual(created.id, victim.id);
          // Positive control: the same email twice in one tenant is a conflict.
          expectProblem(await send({ method: 'POST', url: '/users', token, payload: { email: victim.email, name: 'Again', password: 'same-email-password', role: 'agent' } }), 409, 'email_taken');
          // Each tenant's login resolves its own user with its own password.
          const mine = ok<{ access_token: string }>(await send({ method: 'POST', url: '/auth/token', tenant: self.slug, payload: { email: victim.email, password: 'same-email-password' } }));
          const me = ok<Me>(await send({ url: '/me', token: mine.access_token }));
          assert.equal(me.user?.id, created.id);
          assert.equal(me.tenant.id, self.id);
          expectProblem(await send({ method: 'POST', url: '/auth/token', tenant: other.slug, payload: { email: victim.email, password: 'same-email-password' } }), 401, 'invalid_credentials');
          assert.deepEqual(ok<User>(await send({ url: `/users/${victim.id}`, token: await stack.token(other.slug) })), victimBefore);
        } finally {
          ok(await send({ method: 'DELETE', url: `/users/${created.id}`, token }), 204);
        }
      });

      it(`a token of ${self.slug} edited to name ${other.slug} is refused (401 invalid_token)`, async () => {
        const token = await stack.token(self.slug);
        const [h, p, s] = token.split('.') as [string, string, string];
        const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
        assert.equal(claims.tid, self.id);
        const forged = [h, Buffer.from(JSON.stringify({ ...claims, tid: other.id })).toString('base64url'), s].join('.');
        for (const auth of [{}, { tenant: other.slug }, { host: `${other.slug}.localhost` }] as Auth[]) {
          expectProblem(await send({ ...auth, url: '/tickets', token: forged }), 401, 'invalid_token');
          expectProblem(await send({ ...auth, url: '/me', token: forged }), 401, 'invalid_token');
        }
        assert.equal(ok<Me>(await send({ url: '/me', token })).tenant.id, self.id);
      });
    });
  }

  describe('tenant identification', () => {
    it('subdomain, X-Tenant (slug and id) and the JWT alone name the same tenant', async () => {
      for (const f of demoTenants) {
        const token = await stack.token(f.slug, 'agent');
        const variants: Auth[] = [
          { token },
          { token, host: `${f.slug}.localhost` },
          { token, host: `${f.slug.toUpperCase()}.LocalHost:8080` },
          { token, tenant: f.slug },
          { token, tenant: f.slug.toUpperCase() },
          { token, tenant: f.id },
          { token, tenant: f.id.toUpperCase() },
          { token, host: `${f.slug}.localhost`, tenant: f.id },
        ];
        const mes = [];
        const lists = [];
        for (const v of variants) {
          const me = ok<Me>(await send({ ...v, url: '/me' }));
          assert.equal(me.tenant.id, f.id, JSON.stringify(v));
          assert.equal(me.tenant.slug, f.slug);
          assert.equal(me.user?.email, `agent@${f.slug}.test`);
          mes.push(me);
          const list = ok<Page<Ticket>>(await send({ ...v, url: '/tickets?limit=100' }));
          assert.ok(list.data.length >= 6 && list.data.every((t) => t.title.startsWith(`[${f.name}]`)));
          lists.push(list);
        }
        for (const [i, me] of mes.entries()) assert.deepEqual(me, mes[0], `variant ${i}`);
        for (const [i, list] of lists.entries()) assert.deepEqual(list, lists[0], `variant ${i}`);

        // Login by each identifying source gives a token for the same user and tenant.
        for (const via of [{ host: `${f.slug}.localhost` }, { tenant: f.slug }, { tenant: f.id }] as Auth[]) {
          const { access_token } = ok<{ access_token: string }>(await login(f, 'agent', via));
          assert.deepEqual(ok<Me>(await send({ url: '/me', token: access_token })), mes[0]);
        }
      }
    });

    it('a user of one tenant cannot log in to another: same answer as an unknown email', async () => {
      for (const [self, other] of [[acme, globex], [globex, acme]] as const) {
        for (const via of [{ host: `${other.slug}.localhost` }, { tenant: other.slug }, { tenant: other.id }] as Auth[]) {
          const foreign = await login(self, 'owner', via);
          expectProblem(foreign, 401, 'invalid_credentials');
          const unknown = await send({ ...via, method: 'POST', url: '/auth/token', payload: { email: `zz-${randomUUID().slice(0, 4)}@${self.slug}.test`, password: self.users[0]!.password } });
          assert.deepEqual(observable(foreign), observable(unknown));
        }
        ok(await login(self, 'owner', { host: `${self.slug}.localhost` }));
      }
    });

    it('a credential of one tenant on another tenant\'s subdomain or X-Tenant is 403 tenant_mismatch, and writes nothing', async () => {
      const before = await world();
      for (const [self, other] of [[acme, globex], [globex, acme]] as const) {
        const token = await stack.token(self.slug);
        for (const via of [{ host: `${other.slug}.localhost` }, { tenant: other.slug }, { tenant: other.id }, { host: `${other.slug}.localhost`, tenant: other.id }] as Auth[]) {
          for (const r of [
            { url: '/me' }, { url: '/tickets' }, { url: `/tickets/${other.tickets[0]!.id}` }, { url: `/users/${other.users[0]!.id}` },
            { url: `/tickets/${other.tickets[0]!.id}/comments` }, { url: '/users' }, { url: '/api-keys' },
            { method: 'POST', url: '/tickets', payload: { title: 'pwned' } },
            { method: 'PATCH', url: `/tickets/${other.tickets[0]!.id}`, payload: { title: 'pwned' } },
            { method: 'DELETE', url: `/tickets/${other.tickets[1]!.id}` },
            { method: 'POST', url: `/tickets/${other.tickets[0]!.id}/comments`, payload: { body: 'pwned' } },
            { method: 'POST', url: '/users', payload: { email: 'pwned@x.test', name: 'p', password: 'pwned-password', role: 'owner' } },
            { method: 'PATCH', url: `/users/${other.users[1]!.id}`, payload: { role: 'owner' } },
            { method: 'DELETE', url: `/users/${other.users[2]!.id}` },
            { method: 'POST', url: '/api-keys', payload: { name: 'pwned' } },
            { method: 'DELETE', url: `/api-keys/${randomUUID()}` },
          ] as Req[]) {
            const body = expectProblem(await send({ ...r, ...via, token }), 403, 'tenant_mismatch');
            assert.ok(!JSON.stringify(body).includes(other.name), 'the refusal reveals nothing of the other tenant');
          }
        }
        // Positive control: the same token on its own subdomain / header works.
        assert.equal(ok<Me>(await send({ url: '/me', token, host: `${self.slug}.localhost` })).tenant.id, self.id);
        assert.equal(ok<Me>(await send({ url: '/me', token, tenant: self.id })).tenant.id, self.id);
      }
      assert.deepEqual(await world(), before);
    });

    it('two identifying sources naming different tenants are 400 tenant_ambiguous', async () => {
      const token = await stack.token(acme.slug);
      for (const auth of [
        { host: 'acme.localhost', tenant: 'globex' },
        { host: 'acme.localhost', tenant: globex.id },
        { host: 'globex.localhost', tenant: 'acme' },
        { host: 'acme.localhost', tenant: 'globex', token },
        { host: 'globex.localhost', tenant: acme.id, token },
        { host: 'acme.localhost', tenant: 'no-such-tenant' },
      ] as Auth[]) {
        expectProblem(await send({ ...auth, url: '/tickets' }), 400, 'tenant_ambiguous');
        expectProblem(await send({ ...auth, method: 'POST', url: '/auth/token', payload: { email: acme.users[0]!.email, password: acme.users[0]!.password } }), 400, 'tenant_ambiguous');
      }
      // Positive control: both sources naming the same tenant is fine.
      assert.equal(ok<Me>(await send({ url: '/me', host: 'acme.localhost', tenant: 'acme', token })).tenant.id, acme.id);
    });

    it('an unknown tenant is 404 tenant_not_found, with or without a credential', async () => {
      const token = await stack.token(acme.slug);
      for (const auth of [
        { host: 'nosuchtenant.localhost' },
        { host: 'nosuchtenant.localhost', token },
        { tenant: 'nosuchtenant' },
        { tenant: 'nosuchtenant', token },
        { tenant: randomUUID() },
        { tenant: randomUUID(), token },
      ] as Auth[]) {
        expectProblem(await send({ ...auth, url: '/tickets' }), 404, 'tenant_not_found');
        expectProblem(await send({ ...auth, method: 'POST', url: '/auth/token', payload: { email: acme.users[0]!.email, password: acme.users[0]!.password } }), 404, 'tenant_not_found');
      }
      // The refusal names nothing of any existing tenant.
      const body = expectProblem(await send({ url: '/me', host: 'nosuchtenant.localhost', token }), 404, 'tenant_not_found');
      assert.ok(!JSON.stringify(body).includes(acme.name) && !JSON.stringify(body).includes(acme.id));
      assert.ok(ok<Page<Ticket>>(await send({ url: '/tickets', token })).data.length >= 6);
    });

    it('no tenant at all is 400 tenant_required; a tenant without a credential is 401', async () => {
      for (const host of [undefined, 'localhost', '127.0.0.1:3000', 'a.b.localhost']) {
        const auth: Auth = host ? { host } : {};
        expectProblem(await send({ ...auth, url: '/tickets' }), 400, 'tenant_required');
        expectProblem(await send({ ...auth, url: `/tickets/${acme.tickets[0]!.id}` }), 400, 'tenant_required');
        expectProblem(await send({ ...auth, url: '/me' }), 400, 'tenant_required');
        expectProblem(await send({ ...auth, method: 'POST', url: '/auth/token', payload: { email: acme.users[0]!.email, password: acme.users[0]!.password } }), 400, 'tenant_required');
      }
      for (const auth of [{ host: 'acme.localhost' }, { tenant: 'acme' }, { tenant: acme.id }] as Auth[]) {
        expectProblem(await send({ ...auth, url: '/tickets' }), 401, 'authentication_required');
        expectProblem(await send({ ...auth, url: `/tickets/${acme.tickets[0]!.id}` }), 401, 'authentication_required');
        expectProblem(await send({ ...auth, method: 'DELETE', url: `/tickets/${acme.tickets[0]!.id}` }), 401, 'authentication_required');
        // Positive control: the token endpoint needs only the tenant.
        ok(await login(acme, 'agent', auth));
      }
      assert.ok(await idsOf('tickets', acme.id).then((ids) => ids.includes(acme.tickets[0]!.id)));
    });

    it('a suspended tenant is 403 tenant_suspended for every source; after resume it works again', async () => {
      const f = initech;
      const token = await stack.token(f.slug);
      const key = await createKey(token, 'suspension key');
      const ways: Auth[] = [
        { token }, { token, host: `${f.slug}.localhost` }, { token, tenant: f.slug }, { token, tenant: f.id },
        { apiKey: key.key }, { apiKey: key.key, host: `${f.slug}.localhost` },
      ];
      for (const w of ways) assert.equal(ok<Me>(await send({ ...w, url: '/me' })).tenant.id, f.id);

      // Without the admin token nothing is suspended.
      expectProblem(await adminApi('POST', `/tenants/${f.id}/suspend`, undefined, 'wrong-admin-token-0123456789'), 401, 'admin_token_invalid');
      expectProblem(await stack.app.inject({ method: 'POST', url: `/admin/api/tenants/${f.id}/suspend` }), 401, 'admin_token_invalid');
      expectProblem(await adminApi('POST', `/tenants/${f.id}/suspend`, undefined, token), 401, 'admin_token_invalid');
      ok(await send({ url: '/me', token }));

      const ticketsBefore = await idsOf('tickets', f.id);
      assert.equal(ok<{ status: string }>(await adminApi('POST', `/tenants/${f.id}/suspend`)).status, 'suspended');
      try {
        const [row] = await stack.admin.query<{ status: string }>('select status from tenantry.tenants where id = $1', [f.id]);
        assert.equal(row?.status, 'suspended');
        for (const w of ways) {
          expectProblem(await send({ ...w, url: '/me' }), 403, 'tenant_suspended');
          expectProblem(await send({ ...w, url: '/tickets' }), 403, 'tenant_suspended');
          expectProblem(await send({ ...w, url: `/tickets/${f.tickets[0]!.id}` }), 403, 'tenant_suspended');
          expectProblem(await send({ ...w, method: 'POST', url: '/tickets', payload: { title: 'while suspended' } }), 403, 'tenant_suspended');
        }
        expectProblem(await login(f, 'owner', { host: `${f.slug}.localhost` }), 403, 'tenant_suspended');
        expectProblem(await login(f, 'owner', { tenant: f.id }), 403, 'tenant_suspended');
        assert.deepEqual(await idsOf('tickets', f.id), ticketsBefore);
        // Other tenants are not affected.
        assert.equal(ok<Me>(await send({ url: '/me', token: await stack.token(acme.slug) })).tenant.id, acme.id);
        assert.equal(ok<Me>(await send({ url: '/me', host: 'globex.localhost', token: await stack.token(globex.slug) })).tenant.id, globex.id);
      } finally {
        assert.equal(ok<{ status: string }>(await adminApi('POST', `/tenants/${f.id}/resume`)).status, 'active');
      }
      for (const w of ways) {
        assert.equal(ok<Me>(await send({ ...w, url: '/me' })).tenant.id, f.id);
        assert.ok(ok<Page<Ticket>>(await send({ ...w, url: '/tickets' })).data.every((t) => t.title.startsWith(`[${f.name}]`)));
      }
      ok(await login(f, 'owner', { host: `${f.slug}.localhost` }));
      ok(await send({ method: 'DELETE', url: `/api-keys/${key.id}`, token }), 204);
    });
  });

  describe('API keys', () => {
    for (const [self, other] of pairs.slice(0, 6)) {
      it(`an API key of ${self.slug} works alone, only for ${self.slug}, is invisible to ${other.slug}, and stops working once revoked`, async () => {
        const token = await stack.token(self.slug);
        const otherToken = await stack.token(other.slug);
        const created = await createKey(token, `${self.slug} integration`, 'admin');
        assert.equal(created.tenantId, self.id);
        const key = created.key;

        // Listed, without the secret, by its own tenant only.
        const mine = ok<{ data: ApiKey[] }>(await send({ url: '/api-keys', token }));
        const listed = mine.data.find((k) => k.id === created.id);
        assert.ok(listed && !('key' in listed) && !JSON.stringify(mine).includes(key.slice(16)));
        assert.ok(mine.data.every((k) => k.tenantId === self.id));
        const theirs = ok<{ data: ApiKey[] }>(await send({ url: '/api-keys', token: otherToken }));
        assert.ok(theirs.data.every((k) => k.tenantId === other.id && k.id !== created.id));

        // The key alone names the tenant and authenticates; by header or as a bearer token.
        for (const auth of [{ apiKey: key }, { headers: { authorization: `Bearer ${key}` } }, { apiKey: key, host: `${self.slug}.localhost` }, { apiKey: key, tenant: self.id }] as Auth[]) {
          const me = ok<Me>(await send({ ...auth, url: '/me' }));
          assert.deepEqual([me.tenant.id, me.api_key?.id, me.api_key?.role], [self.id, created.id, 'admin']);
          const list = await walk<Ticket>('/tickets', auth, 100);
          assert.deepEqual(list.map((t) => t.id), [...(await idsOf('tickets', self.id))].reverse());
          await assertLikeUnknown((id) => ({ ...auth, url: `/tickets/${id}` }), other.tickets[0]!.id);
          await assertLikeUnknown((id) => ({ ...auth, url: `/users/${id}` }), other.users[0]!.id);
          await assertLikeUnknown((id) => ({ ...auth, method: 'POST', url: `/tickets/${id}/comments`, payload: { body: 'via key' } }), other.tickets[0]!.id);
        }
        const viaKey = ok<Ticket>(await send({ method: 'POST', url: '/tickets', apiKey: key, payload: { title: `[${self.name}] via key` } }), 201);
        assert.deepEqual(await copiesOf('tickets', viaKey.id), [{ tenant_id: self.id, requester_id: null }]);
        ok(await send({ method: 'DELETE', url: `/tickets/${viaKey.id}`, apiKey: key }), 204);

        // On the other tenant's host or header, or together with the other tenant's JWT: refused.
        for (const auth of [{ apiKey: key, host: `${other.slug}.localhost` }, { apiKey: key, tenant: other.slug }, { apiKey: key, tenant: other.id }, { apiKey: key, token: otherToken }] as Auth[]) {
          expectProblem(await send({ ...auth, url: '/me' }), 403, 'tenant_mismatch');
          expectProblem(await send({ ...auth, url: '/tickets' }), 403, 'tenant_mismatch');
          expectProblem(await send({ ...auth, method: 'POST', url: '/tickets', payload: { title: 'pwned' } }), 403, 'tenant_mismatch');
        }

        // The other tenant can neither revoke it nor tell it exists.
        const before = await world();
        await assertLikeUnknown((id) => ({ method: 'DELETE', url: `/api-keys/${id}`, token: otherToken }), created.id);
        assert.deepEqual(await world(), before);
        assert.equal(ok<Me>(await send({ url: '/me', apiKey: key })).tenant.id, self.id);

        // Revoked by its owner: 401 invalid_api_key, wherever it is sent.
        ok(await send({ method: 'DELETE', url: `/api-keys/${created.id}`, token }), 204);
        const [krow] = await stack.admin.query<{ revoked: boolean }>('select revoked_at is not null as revoked from tenantry.api_keys where id = $1', [created.id]);
        assert.equal(krow?.revoked, true);
        for (const auth of [{ apiKey: key }, { headers: { authorization: `Bearer ${key}` } }, { apiKey: key, host: `${self.slug}.localhost` }, { apiKey: key, host: `${other.slug}.localhost` }] as Auth[]) {
          expectProblem(await send({ ...auth, url: '/me' }), 401, 'invalid_api_key');
          expectProblem(await send({ ...auth, url: '/tickets' }), 401, 'invalid_api_key');
        }
        const revoked = ok<{ data: ApiKey[] }>(await send({ url: '/api-keys', token })).data.find((k) => k.id === created.id);
        assert.ok(revoked?.revokedAt);
        // A made-up key in the right format is refused the same way.
        expectProblem(await send({ url: '/me', apiKey: `tk_${'0'.repeat(12)}_${'A'.repeat(32)}` }), 401, 'invalid_api_key');
      });
    }
  });

  describe('interleaving', () => {
    it('200 concurrent requests of 16 tenants (all three placements), with random delays, each see only their own rows', async () => {
      interface Party { id: string; slug: string; name: string; isolation: string; token: string; apiKey: string; created: string[] }
      const parties: Party[] = [];
      for (const f of fixtures) {
        const token = await stack.token(f.slug);
        parties.push({ id: f.id, slug: f.slug, name: f.name, isolation: f.isolation, token, apiKey: (await createKey(token, 'interleave')).key, created: [] });
      }
      const run = randomUUID().slice(0, 6);
      // Ten more tenants through the admin API, each with its owner, in all three placements.
      await Promise.all(Array.from({ length: 10 }, async (_, i) => {
        const slug = `par${i}-${run}`;
        const isolation = (['pooled', 'schema', 'database'] as const)[i % 3]!;
        const res = await adminApi('POST', '/tenants', {
          slug, name: `Par ${i} ${run}`, isolation, owner: { email: `owner@${slug}.test`, password: `${slug}-password`, name: `Owner ${i}` },
        });
        const tenant = ok<{ id: string; slug: string; status: string; isolation: string }>(res, 201);
        assert.equal(tenant.status, 'active');
        assert.equal(tenant.isolation, isolation);
        const auth = ok<{ access_token: string }>(await send({ method: 'POST', url: '/auth/token', host: `${slug}.localhost`, payload: { email: `owner@${slug}.test`, password: `${slug}-password` } }));
        const token = auth.access_token;
        parties.push({ id: tenant.id, slug, name: `Par ${i} ${run}`, isolation, token, apiKey: (await createKey(token, 'interleave')).key, created: [] });
      }));
      assert.equal(parties.length, 16);
      const marker = (p: Party) => `[${p.name}]`;
      const byTicket = new Map<string, Party>();

      const ways = (p: Party): Auth[] => [
        { token: p.token }, { token: p.token, host: `${p.slug}.localhost` }, { token: p.token, tenant: p.slug },
        { token: p.token, tenant: p.id }, { apiKey: p.apiKey }, { apiKey: p.apiKey, host: `${p.slug}.localhost` },
      ];
      const failures: string[] = [];
      const check = (cond: boolean, what: string) => { if (!cond) failures.push(what); };

      await Promise.all(Array.from({ length: 200 }, async (_, k) => {
        const p = parties[k % parties.length]!;
        const w = ways(p);
        const auth = () => w[Math.floor(Math.random() * w.length)]!;
        await jitter();
        const title = `${marker(p)} concurrent ${k}`;
        const created = await send({ ...auth(), method: 'POST', url: '/tickets', payload: { title, description: `task ${k}` } });
        check(created.statusCode === 201, `create ${k}: ${created.statusCode} ${created.body}`);
        if (created.statusCode !== 201) return;
        const ticket = created.json() as Ticket;
        p.created.push(ticket.id);
        byTicket.set(ticket.id, p);
        await jitter();

        const got = await send({ ...auth(), url: `/tickets/${ticket.id}` });
        check(got.statusCode === 200 && (got.json() as Ticket).title === title, `get ${k}: ${got.statusCode} ${got.body}`);
        await jitter();

        // Everybody's tickets say "concurrent": the search must return only ours.
        for (const url of ['/tickets?limit=100', '/tickets?q=concurrent&limit=100', '/tickets?status=open&limit=100']) {
          const list = await send({ ...auth(), url });
          const data = list.statusCode === 200 ? (list.json() as Page<Ticket>).data : [];
          check(list.statusCode === 200, `list ${k} ${url}: ${list.statusCode}`);
          check(data.every((t) => t.title.startsWith(marker(p))), `list ${k} ${url} saw a foreign title: ${data.map((t) => t.title).find((x) => !x.startsWith(marker(p)))}`);
          check(data.some((t) => t.id === ticket.id), `list ${k} ${url} misses its own new ticket`);
          await jitter();
        }

        const users = await send({ ...auth(), url: '/users?limit=100' });
        check(users.statusCode === 200 && (users.json() as Page<User>).data.every((u) => u.email.endsWith(`@${p.slug}.test`)), `users ${k}: ${users.body.slice(0, 200)}`);
        await jitter();

        const comment = await send({ ...auth(), method: 'POST', url: `/tickets/${ticket.id}/comments`, payload: { body: `comment ${k}` } });
        check(comment.statusCode === 201, `comment ${k}: ${comment.statusCode} ${comment.body}`);
        await jitter();
        const comments = await send({ ...auth(), url: `/tickets/${ticket.id}/comments` });
        check(comments.statusCode === 200 && JSON.stringify((comments.json() as Page<Comment>).data.map((c) => c.body)) === JSON.stringify([`comment ${k}`]),
          `comments ${k}: ${comments.body}`);
        await jitter();

        // Tickets other tenants created a moment ago: not found, not writable.
        const foreign = [...byTicket.entries()].filter(([, owner]) => owner !== p).map(([id]) => id);
        const target = foreign[Math.floor(Math.random() * foreign.length)];
        if (target) {
          for (const r of [
            { url: `/tickets/${target}` },
            { url: `/tickets/${target}/comments` },
            { method: 'PATCH', url: `/tickets/${target}`, payload: { title: 'pwned' } },
            { method: 'POST', url: `/tickets/${target}/comments`, payload: { body: 'pwned' } },
          ] as Req[]) {
            const res = await send({ ...auth(), ...r });
            check(res.statusCode === 404 && (res.json() as { code: string }).code === 'not_found', `${k} ${r.method ?? 'GET'} foreign ${r.url}: ${res.statusCode} ${res.body}`);
            await jitter();
          }
        }
      }));
      assert.deepEqual(failures, []);

      // Ground truth, per placement, as the superuser sees it.
      const all = new Map<string, string>();
      for (const p of parties) {
        const store = await stack.storeOf(p.id);
        const inPlace = await store.sql.query<{ id: string; tenant_id: string; title: string }>(
          `select id::text as id, tenant_id::text as tenant_id, title from ${store.table('tickets')} where title like '%concurrent%'`);
        // A tenant schema or database holds its tenant's rows only; the shared schema holds many.
        if (p.isolation !== 'pooled') assert.ok(inPlace.every((r) => r.tenant_id === p.id), `${p.slug}'s ${p.isolation} holds rows of another tenant`);
        const rows = inPlace.filter((r) => r.tenant_id === p.id);
        for (const r of rows) {
          assert.ok(r.title.startsWith(marker(p)), `${p.slug} holds ${r.title}`);
          assert.ok(!all.has(r.id));
          all.set(r.id, p.id);
        }
        assert.deepEqual(sorted(rows.map((r) => r.id)), sorted(p.created), p.slug);
        const comments = await store.sql.query<{ n: number }>(
          `select count(*)::int as n from ${store.table('comments')} c where tenant_id = $1 and ticket_id = any($2::uuid[])`, [p.id, p.created]);
        assert.equal(comments[0]?.n, p.created.length);
        // And the tenant's own API lists exactly its rows.
        const listed = await walk<Ticket>('/tickets?q=concurrent', { token: p.token }, 7);
        assert.deepEqual(sorted(listed.map((t) => t.id)), sorted(p.created));
      }
      assert.equal(all.size, 200);
      // Nothing of a schema or database tenant leaked into the shared schema: it has no strays.
      const [stray] = await stack.admin.query<{ n: number }>(
        `select count(*)::int as n from app.tickets where title like '%concurrent%' and tenant_id <> all($1::uuid[])`,
        [parties.filter((p) => p.isolation === 'pooled').map((p) => p.id)]);
      assert.equal(stray?.n, 0);
      for (const store of await stack.stores()) {
        const [pwned] = await store.sql.query<{ n: number }>(`select count(*)::int as n from ${store.table('tickets')} where title = 'pwned'`);
        assert.equal(pwned?.n, 0);
      }
    });
  });
});
