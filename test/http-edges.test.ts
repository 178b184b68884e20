/**
 * The answers a server gives before any route runs — node:http's own (408, 431, 400 from its
 * parser, an HTTP/1.1 request without Host) and Fastify's router's (414, a bad URL) — are
 * problem+json with a code of the error catalog, like every other error. Spoken over raw sockets
 * to `npm start` (app/main.ts) as a real process: inject() never goes through node's parser.
 *
 * Red without the fix (checked with app/server.ts as it was): node answered a missing Host with
 * an empty 400, Fastify a 431 and a bad request with its own JSON (`{"error":"Bad Request",…}`)
 * and a 414 with code `FST_ERR_MAX_PARAM_LENGTH`, and a request whose headers never finished got
 * no answer in 10 s (node's default is 300 s, checked every 30 s): five of the six tests fail.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorCatalog, loadOptions, OptionsError, type ErrorCode } from '../src/index.js';
import { createTestDatabase, migrationsDir } from './helpers.js';
import { dropDemoPlacements, head, RawConnection, startServer, type RawResponse, type ServerProcess } from './server-process.js';

const REQUEST_TIMEOUT_MS = 500;

function assertProblem(r: RawResponse, status: number, code: ErrorCode): void {
  assert.equal(r.status, status, r.body);
  assert.match(r.headers['content-type'] ?? '', /^application\/problem\+json/, r.body);
  assert.equal(r.json?.code, code, r.body);
  assert.equal(r.json?.status, status);
  assert.equal(r.json?.title, errorCatalog[code].title);
  assert.equal(typeof r.json?.request_id, 'string');
}

describe('request timeout option', () => {
  const base = { databaseUrl: 'postgres://u@127.0.0.1:1/db', migrationsDir };
  it('TENANTRY_REQUEST_TIMEOUT_MS: 30000 by default, bad values refused naming the variable', () => {
    assert.equal(loadOptions(base, {}).requestTimeoutMs, 30_000);
    assert.equal(loadOptions(base, { TENANTRY_REQUEST_TIMEOUT_MS: '500' }).requestTimeoutMs, 500);
    for (const bad of ['0', '99', 'soon', '2.5', '3600001']) {
      assert.throws(() => loadOptions(base, { TENANTRY_REQUEST_TIMEOUT_MS: bad }),
        (e: unknown) => e instanceof OptionsError && /TENANTRY_REQUEST_TIMEOUT_MS/.test(e.message), bad);
    }
  });
});

describe('HTTP edges, over raw sockets to npm start', { timeout: 240_000 }, () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let server: ServerProcess;

  before(async () => {
    db = await createTestDatabase('edges');
    server = await startServer({ DATABASE_URL: db.url, TENANTRY_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
  });
  after(async () => {
    await server?.kill();
    await db?.drop();
    await dropDemoPlacements();
  });

  /**
   * Writes `data` on a new connection: the answer and, with `close`, whether the server closed
   * the connection after it (within a second).
   */
  async function send(data: string, close = false): Promise<RawResponse & { closed: boolean }> {
    const conn = await RawConnection.open(server.port);
    try {
      await conn.write(data);
      const r = await conn.response();
      const closed = close && await Promise.race([conn.closed.then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), 1_000))]);
      return { ...r, closed };
    } finally {
      conn.destroy();
    }
  }

  it('an HTTP/1.1 request without Host: 400 host_required, and the connection is closed', async () => {
    const r = await send('GET /api/v1/tickets HTTP/1.1\r\n\r\n', true);
    assertProblem(r, 400, 'host_required');
    assert.ok(r.closed);
    // HTTP/1.0 does not require Host: served.
    assert.equal((await send('GET /healthz HTTP/1.0\r\n\r\n')).status, 200);
  });

  it('a 20 KB header: 431 headers_too_large', async () => {
    const r = await send(head('GET', '/healthz', { host: 'localhost', 'x-padding': 'a'.repeat(20 * 1024) }), true);
    assertProblem(r, 431, 'headers_too_large');
    assert.ok(r.closed);
  });

  it('a path parameter of 1,000+ characters: 414 uri_too_long', async () => {
    for (const url of [`/api/v1/tickets/${'a'.repeat(1_000)}`, `/admin/api/tenants/${'7'.repeat(2_000)}`]) {
      assertProblem(await send(head('GET', url, { host: 'acme.localhost' })), 414, 'uri_too_long');
    }
  });

  it(`headers that never finish: 408 request_timeout after TENANTRY_REQUEST_TIMEOUT_MS (${REQUEST_TIMEOUT_MS} ms)`, async () => {
    const conn = await RawConnection.open(server.port);
    const started = Date.now();
    try {
      await conn.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
      const r = await conn.response(10_000);
      const waited = Date.now() - started;
      assertProblem(r, 408, 'request_timeout');
      // Checked every quarter of the timeout (at most every 1 s): answered one check after it.
      assert.ok(waited >= REQUEST_TIMEOUT_MS - 50 && waited < REQUEST_TIMEOUT_MS * 2 + 1_000, `answered after ${waited} ms`);
      await conn.closed;
    } finally {
      conn.destroy();
    }
  });

  it('requests node\'s parser refuses, and a URL with bad percent-encoding: 400 bad_request', async () => {
    const malformed = [
      'HELLO\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: localhost\r\nbad header\r\n\r\n',
      'POST /api/v1/tickets HTTP/1.1\r\nHost: acme.localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    ];
    for (const m of malformed) {
      const r = await send(m, true);
      assertProblem(r, 400, 'bad_request');
      assert.ok(r.closed, JSON.stringify(m));
    }
    assertProblem(await send(head('GET', '/api/v1/tickets/%E0%A4%A', { host: 'acme.localhost' })), 400, 'bad_request');
  });

  it('the server keeps serving after all that', async () => {
    const r = await send(head('GET', '/readyz', { host: 'localhost' }));
    assert.equal(r.status, 200, r.body);
  });
});
