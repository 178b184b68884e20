/**
 * GET /metrics (docs/metrics.md): fails closed without its token; after traffic the named series
 * are there with the route pattern (never the raw URL) and the tenant and plan; a 429 is counted;
 * and the tenant label is bounded — with 300 tenants at most N+1 tenant values ("other"
 * included), the busiest with their own, totals exact, and when the load moves to other tenants
 * the newly busy get series of their own, the old ones' are removed, and the totals still add up.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { withPlatformScope, type Tenant } from '../src/index.js';
import { buildServer } from '../app/server.js';
import { ADMIN_TOKEN, callAs, startTestStack, type TestStack } from './helpers.js';

interface Sample { readonly name: string; readonly labels: Record<string, string>; readonly value: number }

/** The samples of a Prometheus text exposition. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const matches = (s: Sample, name: string, labels: Record<string, string>) =>
  s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
const sum = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => matches(s, name, labels)).reduce((a, s) => a + s.value, 0);

async function scrape(app: FastifyInstance, token = ADMIN_TOKEN): Promise<Sample[]> {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200, res.body);
  return parse(res.body);
}

describe('GET /metrics', () => {
  let stack: TestStack;
  before(async () => { stack = await startTestStack(); });
  after(async () => { await stack?.close(); });

  it('needs the token: 401 metrics_token_invalid without it or with another, and nothing of the metrics', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: `Basic ${ADMIN_TOKEN}` }]) {
      const res = await stack.app.inject({ method: 'GET', url: '/metrics', headers });
      assert.equal(res.statusCode, 401);
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
      assert.equal(res.json().code, 'metrics_token_invalid');
      assert.doesNotMatch(res.body, /tenantry_/);
    }
    const res = await stack.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  });

  it('counts requests by tenant, plan, route pattern, method and status; transactions, tenants, pools, catalog lookups', async () => {
    const token = await stack.token('acme');
    // Acme's next lookup misses the catalog cache whatever ran before (the cache keeps it 5 s):
    // the miss asserted below does not depend on how fast the suite got here.
    stack.tenantry.catalog.invalidate({ id: stack.tenants.find((t) => t.slug === 'acme')!.id, slug: 'acme' });
    const list = await callAs(stack, 'acme', token, 'GET', '/api/v1/tickets?limit=2');
    assert.equal(list.statusCode, 200);
    const id = list.json().data[0].id as string;
    for (let i = 0; i < 3; i++) assert.equal((await callAs(stack, 'acme', token, 'GET', `/api/v1/tickets/${id}`)).statusCode, 200);
    assert.equal((await callAs(stack, 'acme', token, 'GET', `/api/v1/tickets/${randomUUID()}`)).statusCode, 404);
    assert.equal((await stack.app.inject({ method: 'GET', url: `/no/such/route/${id}` })).statusCode, 404);
    const acme = stack.tenants.find((t) => t.slug === 'acme')!;

    const m = await scrape(stack.app);
    const own = { tenant: 'acme', plan: acme.plan };
    assert.equal(sum(m, 'tenantry_http_requests_total', { ...own, route: '/api/v1/tickets/:id', method: 'GET', status: '200' }), 3);
    assert.equal(sum(m, 'tenantry_http_requests_total', { ...own, route: '/api/v1/tickets/:id', method: 'GET', status: '404' }), 1);
    assert.equal(sum(m, 'tenantry_http_requests_total', { tenant: '', plan: '', route: 'unmatched', method: 'GET', status: '404' }), 1);
    // The route is the pattern: no id and no query string in any label value.
    for (const s of m) for (const v of Object.values(s.labels)) assert.ok(!v.includes(id) && !v.includes('?'), `${s.name} ${JSON.stringify(s.labels)}`);
    assert.equal(sum(m, 'tenantry_http_request_duration_seconds_count', { ...own, route: '/api/v1/tickets/:id' }), 4);
    assert.equal(sum(m, 'tenantry_http_request_duration_seconds_bucket', { ...own, route: '/api/v1/tickets/:id', le: '+Inf' }), 4);
    assert.ok(sum(m, 'tenantry_db_transaction_duration_seconds_count', { ...own, isolation: 'pooled' }) >= 5);
    assert.equal(sum(m, 'tenantry_tenants', { status: 'active', isolation: 'pooled' }), 1);
    assert.equal(sum(m, 'tenantry_tenants', { status: 'active' }), stack.tenants.length);
    assert.ok(sum(m, 'tenantry_db_pool_connections', { pool: 'app', state: 'total' }) >= 1);
    assert.ok(m.some((s) => s.name === 'tenantry_db_pool_waiting' && s.labels.pool === 'catalog'));
    assert.ok(m.some((s) => s.name === 'tenantry_db_tenant_connections_max' && s.value === stack.tenantry.options.tenantDatabases.maxConnections));
    assert.ok(sum(m, 'tenantry_catalog_lookups_total', { result: 'hit' }) >= 1, 'catalog cache hits');
    assert.ok(m.some((s) => s.name === 'tenantry_catalog_lookups_total' && s.labels.result === 'miss'), 'catalog cache misses');
    // Counting the tenants (read above: tenantry_tenants) enters no platform scope: scrapes every
    // few seconds write no platform audit entries.
    const [entries] = await stack.admin.query<{ n: string }>("select count(*)::text as n from tenantry.audit_log where actor = 'metrics' or detail::text like '%/metrics%'");
    assert.equal(entries!.n, '0');
  });

  it('a 429 shows in tenantry_rate_limited_total', async () => {
    const globex = stack.tenants.find((t) => t.slug === 'globex')!;
    const token = await stack.token('globex');
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const patch = await stack.app.inject({ method: 'PATCH', url: `/admin/api/tenants/${globex.id}/limits`, headers: admin, payload: { requests_per_second: 1, burst: 1 } });
    assert.equal(patch.statusCode, 200, patch.body);
    const answers = await Promise.all(Array.from({ length: 6 }, () => callAs(stack, 'globex', token, 'GET', '/api/v1/me')));
    const refused = answers.filter((r) => r.statusCode === 429).length;
    assert.ok(refused >= 4, `refused: ${refused}`);
    const m = await scrape(stack.app);
    assert.equal(sum(m, 'tenantry_rate_limited_total', { tenant: 'globex', plan: globex.plan, reason: 'rate_limited' }), refused);
    assert.equal(sum(m, 'tenantry_http_requests_total', { tenant: 'globex', route: '/api/v1/me', status: '429' }), refused);
  });
});

describe('the tenant label is bounded', () => {
  const N = 10;
  let stack: TestStack;
  let app: FastifyInstance;
  let tenants: Tenant[] = [];
  const tokens = new Map<string, string>();
  let sent = 0;

  before(async () => {
    stack = await startTestStack({ metricsTenantLabels: N });
    // A server of its own on the same toolkit: re-ranked by hand, a short half-life.
    app = await buildServer({ tenantry: stack.tenantry, adminToken: ADMIN_TOKEN, observability: { rerankMs: 3_600_000, halfLifeMs: 100 } });
    // 300 tenants, straight into the catalog (pooled: nothing to provision).
    tenants = await withPlatformScope({ actor: 'test', reason: 'metrics cardinality' }, async () => {
      const out: Tenant[] = [];
      for (let i = 0; i < 300; i++) {
        out.push(await stack.tenantry.catalog.create({ slug: `load-${String(i).padStart(3, '0')}`, name: `Load ${i}`, isolation: 'pooled', status: 'active' }));
      }
      return out;
    });
    for (const t of tenants) tokens.set(t.id, await stack.tenantry.tokens.sign({ sub: randomUUID(), tid: t.id, role: 'agent' }));
  });
  after(async () => {
    await app?.close();
    await stack?.close();
  });

  /** `count` requests for each tenant, 25 at a time. */
  async function load(plan: [Tenant, number][]): Promise<void> {
    const jobs = plan.flatMap(([t, count]) => Array.from({ length: count }, () => t));
    for (let i = 0; i < jobs.length; i += 25) {
      await Promise.all(jobs.slice(i, i + 25).map(async (t) => {
        const res = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { 'x-tenant': t.slug, authorization: `Bearer ${tokens.get(t.id)}` } });
        assert.ok(res.statusCode < 500, res.body);
      }));
      sent += Math.min(25, jobs.length - i);
    }
  }

  /** The tenant values of /api/v1/me series, and the total over them. */
  function tenantValues(m: Sample[]): { values: Set<string>; total: number; durations: number } {
    const me = m.filter((s) => s.name === 'tenantry_http_requests_total' && s.labels.route === '/api/v1/me');
    return {
      values: new Set(me.map((s) => s.labels.tenant!)),
      total: me.reduce((a, s) => a + s.value, 0),
      durations: sum(m, 'tenantry_http_request_duration_seconds_count', { route: '/api/v1/me' }),
    };
  }

  it('300 tenants: at most N+1 tenant values, the busiest with their own, totals exact; the load moves and the series follow', { timeout: 60_000 }, async () => {
    const busy = tenants.slice(0, 5);
    await load([...busy.map((t) => [t, 30] as [Tenant, number]), ...tenants.slice(5).map((t) => [t, 1] as [Tenant, number])]);
    app.tenantryMetrics!.rerank();
    let m = await scrape(app);
    let v = tenantValues(m);
    assert.ok(v.values.size <= N + 1, `${v.values.size} tenant values: ${[...v.values].join(' ')}`);
    assert.ok(v.values.has('other'));
    for (const t of busy) assert.ok(v.values.has(t.slug), `${t.slug} has its own series`);
    assert.equal(v.total, sent, 'the total over every tenant value is the number of requests');
    assert.equal(v.durations, sent, 'and so is the histograms\' count');
    assert.equal(sum(m, 'tenantry_metrics_tenant_labels'), N);

    // The load moves to ten other tenants; the first five go idle.
    await new Promise((r) => setTimeout(r, 1_000));
    const next = tenants.slice(100, 110);
    await load(next.map((t) => [t, 20] as [Tenant, number]));
    app.tenantryMetrics!.rerank();
    // A promoted tenant's series starts at zero (what it did before stays in "other"): a request more each.
    await load(next.map((t) => [t, 1] as [Tenant, number]));
    m = await scrape(app);
    v = tenantValues(m);
    assert.ok(v.values.size <= N + 1, `${v.values.size} tenant values`);
    for (const t of next) assert.ok(v.values.has(t.slug), `${t.slug}, newly busy, has its own series: ${[...v.values].join(" ")}`);
    for (const t of busy) {
      assert.ok(!v.values.has(t.slug), `${t.slug}, idle now, gave its place back`);
      assert.ok(!m.some((s) => s.labels.tenant === t.slug), `no series of ${t.slug} is left`);
    }
    assert.equal(v.total, sent, 'totals still add up after the moves');
    assert.equal(v.durations, sent);
  });
});
