/**
 * Logs and traces of a tenant request: every log line of the request — Fastify's own "incoming
 * request" and "request completed" included — carries tenant_id, tenant and request_id; a valid
 * X-Request-Id is kept, anything else replaced, and every answer (200, 404, 401, 429 and the
 * others) returns it; spans through @opentelemetry/api, nested under the request's server span,
 * carry tenant.id — and with no SDK registered, nothing breaks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildServer } from '../app/server.js';
import { ADMIN_TOKEN, startTestStack, type TestStack } from './helpers.js';

type Line = Record<string, unknown> & { msg?: string; request_id?: string; tenant_id?: string; tenant?: string };

describe('logs and traces', () => {
  let stack: TestStack;
  let app: FastifyInstance;
  const lines: Line[] = [];
  let acme: { id: string; slug: string; isolation: string };
  let token: string;

  before(async () => {
    stack = await startTestStack();
    const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as Line); } });
    app = await buildServer({ tenantry: stack.tenantry, adminToken: ADMIN_TOKEN, loggerInstance: logger });
    acme = stack.tenants.find((t) => t.slug === 'acme')!;
    token = await stack.token('acme');
  });
  after(async () => {
    await app?.close();
    await stack?.close();
  });

  const get = (url: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url, headers: { 'x-tenant': 'acme', authorization: `Bearer ${token}`, ...headers } });

  it('every line of a tenant request carries tenant_id, tenant and request_id, Fastify\'s own included', async () => {
    const res = await get('/api/v1/tickets?limit=1', { 'x-request-id': 'edge-7f3a:42' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-request-id'], 'edge-7f3a:42');
    const mine = lines.filter((l) => l.request_id === 'edge-7f3a:42');
    const msgs = mine.map((l) => l.msg);
    assert.ok(msgs.includes('incoming request'), JSON.stringify(msgs));
    assert.ok(msgs.includes('request completed'), JSON.stringify(msgs));
    assert.ok(msgs.indexOf('incoming request') < msgs.indexOf('request completed'));
    for (const l of mine) {
      assert.equal(l.tenant_id, acme.id, `${l.msg}: tenant_id`);
      assert.equal(l.tenant, 'acme', `${l.msg}: tenant`);
    }
    // A request refused after resolution (404 of the route) has them too; one whose tenant is unknown has its id only.
    const missing = await get('/api/v1/tickets/01900001-0000-7000-8000-00000000dead', { 'x-request-id': 'r-404' });
    assert.equal(missing.statusCode, 404);
    const done404 = lines.find((l) => l.request_id === 'r-404' && l.msg === 'request completed');
    assert.equal(done404?.tenant, 'acme');
    const unknown = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { 'x-tenant': 'nobody-here', 'x-request-id': 'r-unknown' } });
    assert.equal(unknown.statusCode, 404);
    const u = lines.filter((l) => l.request_id === 'r-unknown').map((l) => l.msg);
    assert.deepEqual(u.filter((m) => m === 'incoming request' || m === 'request completed'), ['incoming request', 'request completed']);
  });

  it('X-Request-Id: kept when valid, replaced otherwise, returned on every answer', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    assert.equal((await get('/api/v1/me', { 'x-request-id': 'a'.repeat(128) })).headers['x-request-id'], 'a'.repeat(128));
    // (inject hands the header to the server as it is: a newline arrives too.)
    for (const bad of ['a'.repeat(500), 'has space', 'line\nbreak', 'semi;colon', 'quote"d', '']) {
      const res = await get('/api/v1/me', { 'x-request-id': bad });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['x-request-id']), uuid, `replaced: ${JSON.stringify(bad.slice(0, 20))}`);
    }
    // Every kind of answer carries it; the problem answers' request_id is the same.
    const answers = [
      await get('/api/v1/me'),
      await app.inject({ method: 'GET', url: '/no/such/route' }),
      await app.inject({ method: 'GET', url: '/api/v1/me', headers: { 'x-tenant': 'acme' } }),
      await app.inject({ method: 'GET', url: '/api/v1/me', headers: { 'x-tenant': 'nobody-here' } }),
      await app.inject({ method: 'GET', url: '/healthz' }),
    ];
    assert.deepEqual(answers.map((r) => r.statusCode), [200, 404, 401, 404, 200]);
    for (const r of answers) {
      assert.match(String(r.headers['x-request-id']), uuid);
      if (r.statusCode >= 400) assert.equal(r.json().request_id, r.headers['x-request-id']);
    }
    // 429.
    const globex = stack.tenants.find((t) => t.slug === 'globex')!;
    const patch = await app.inject({ method: 'PATCH', url: `/admin/api/tenants/${globex.id}/limits`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, payload: { requests_per_second: 1, burst: 1 } });
    assert.equal(patch.statusCode, 200);
    const gToken = await stack.token('globex');
    const burst = await Promise.all(Array.from({ length: 4 }, (_, i) => app.inject({
      method: 'GET', url: '/api/v1/me', headers: { 'x-tenant': 'globex', authorization: `Bearer ${gToken}`, 'x-request-id': `burst-${i}` },
    })));
    const refused = burst.filter((r) => r.statusCode === 429);
    assert.ok(refused.length >= 2);
    for (const r of burst) assert.match(String(r.headers['x-request-id']), /^burst-\d$/);
    // The 429's lines carry the tenant (it was resolved before it was refused).
    const id429 = String(refused[0]!.headers['x-request-id']);
    const done429 = lines.find((l) => l.request_id === id429 && l.msg === 'request completed');
    assert.equal(done429?.tenant, 'globex');
  });

  it('without an OpenTelemetry SDK nothing is recorded and nothing breaks', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/tickets', headers: { 'x-tenant': 'acme', authorization: `Bearer ${token}` }, payload: { title: 'no sdk' } });
    assert.equal(res.statusCode, 201);
    assert.equal(trace.getSpan(context.active()), undefined);
  });

  it('with an SDK: a server span per request, resolution and data-plane spans nested under it, with tenant.id', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    assert.ok(context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable()));
    assert.ok(trace.setGlobalTracerProvider(provider));
    try {
      // A read (no body) and a write (a body read from the socket: the context must survive it).
      assert.equal((await get('/api/v1/tickets?limit=1')).statusCode, 200);
      // Over a real socket: inject would hand the body over in the request's own async context.
      await app.listen({ port: 0, host: '127.0.0.1' });
      const port = (app.server.address() as { port: number }).port;
      const created = await fetch(`http://127.0.0.1:${port}/api/v1/tickets`, {
        method: 'POST', headers: { 'x-tenant': 'acme', authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ title: 'traced' }),
      });
      assert.equal(created.status, 201);
      const spans = exporter.getFinishedSpans();
      const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
      for (const [method, route] of [['GET', '/api/v1/tickets'], ['POST', '/api/v1/tickets']] as const) {
        const server = spans.find((s) => s.name === `HTTP ${method} ${route}`);
        assert.ok(server, `a span HTTP ${method} ${route}: ${spans.map((s) => s.name).join(', ')}`);
        assert.equal(server.attributes['tenant.id'], acme.id);
        assert.equal(server.attributes['tenant.slug'], 'acme');
        assert.equal(server.attributes['tenantry.isolation'], 'pooled');
        assert.equal(server.attributes['http.route'], route);
        assert.equal(server.attributes['http.response.status_code'], method === 'GET' ? 200 : 201);
        const children = spans.filter((s) => parentOf(s) === server.spanContext().spanId);
        const resolve = children.find((s) => s.name === 'tenantry.resolve');
        assert.ok(resolve, `${method}: a resolution span under the request's`);
        assert.equal(resolve.attributes['tenant.id'], acme.id);
        const db = children.filter((s) => s.name === 'tenantry.query' || s.name === 'tenantry.transaction');
        assert.ok(db.length >= 1, `${method}: data-plane spans under the request's: ${children.map((s) => s.name).join(', ')}`);
        for (const s of db) {
          assert.equal(s.attributes['tenant.id'], acme.id);
          assert.equal(s.attributes['db.system'], 'postgresql');
          assert.equal(s.spanContext().traceId, server.spanContext().traceId);
        }
      }
    } finally {
      trace.disable();
      context.disable();
      await provider.shutdown();
    }
  });
});
