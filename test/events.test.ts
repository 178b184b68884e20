/**
 * Instrumentation through node:diagnostics_channel (src/core/events.ts, docs/events.md): one
 * request per placement publishes request resolved, admitted, data-plane transaction and catalog
 * lookup events with their fields; failures carry their codes; with no subscriber, no event is
 * published (every site asks hasSubscribers first, and builds nothing when it is false).
 */
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import {
  channels, events, subscribe, type CatalogLookupEvent, type RequestAdmittedEvent, type RequestResolvedEvent, type TransactionEvent,
} from '../src/core/events.js';
import { runWithTenant } from '../src/context/tenant-context.js';
import type { Tenant } from '../src/catalog/types.js';
import { ADMIN_TOKEN, startTestStack, type TestStack } from './helpers.js';

interface Seen {
  resolved: RequestResolvedEvent[];
  admitted: RequestAdmittedEvent[];
  transaction: TransactionEvent[];
  lookup: CatalogLookupEvent[];
}

function record(): { seen: Seen; stop: () => void } {
  const seen: Seen = { resolved: [], admitted: [], transaction: [], lookup: [] };
  const stops = [
    subscribe(channels.requestResolved, (m) => seen.resolved.push(m)),
    subscribe(channels.requestAdmitted, (m) => seen.admitted.push(m)),
    subscribe(channels.transaction, (m) => seen.transaction.push(m)),
    subscribe(channels.catalogLookup, (m) => seen.lookup.push(m)),
  ];
  return { seen, stop: () => stops.forEach((s) => s()) };
}

describe('diagnostics_channel events', () => {
  let stack: TestStack;
  before(async () => { stack = await startTestStack(); });
  after(async () => { await stack?.close(); });

  it('channel names are under tenantry: and the exported channel objects are diagnostics_channel\'s', () => {
    for (const [key, name] of Object.entries(channels)) {
      assert.match(name, /^tenantry:[a-z]+:[a-z]+$/);
      assert.equal(events[key as keyof typeof events], diagnostics_channel.channel(name) as unknown, name);
    }
  });

  for (const isolation of ['pooled', 'schema', 'database'] as const) {
    it(`one request to a ${isolation} tenant: resolved, admitted, transaction and catalog lookup`, async () => {
      const tenant = stack.tenants.find((t) => t.isolation === isolation)!;
      const token = await stack.token(tenant.slug);
      const { seen, stop } = record();
      try {
        const res = await stack.app.inject({ method: 'GET', url: '/api/v1/tickets?limit=1', headers: { host: `${tenant.slug}.localhost`, authorization: `Bearer ${token}` } });
        assert.equal(res.statusCode, 200, res.body);
      } finally {
        stop();
      }
      assert.equal(seen.resolved.length, 1, JSON.stringify(seen.resolved));
      const resolved = seen.resolved[0]!;
      assert.equal(resolved.outcome, 'ok');
      assert.equal(resolved.tenantId, tenant.id);
      assert.equal(resolved.tenantSlug, tenant.slug);
      assert.deepEqual([...resolved.strategies].sort(), ['jwt', 'subdomain']);
      assert.equal(resolved.principal, 'user');
      assert.ok(resolved.durationMs >= 0 && resolved.durationMs < 5_000, String(resolved.durationMs));
      assert.ok(typeof resolved.requestId === 'string' && resolved.requestId.length > 0);

      assert.deepEqual(seen.admitted, [{ requestId: resolved.requestId, tenantId: tenant.id, isolation, principal: 'user' }]);

      assert.ok(seen.transaction.length >= 1, 'the handler read through the data plane');
      for (const t of seen.transaction) {
        assert.equal(t.tenantId, tenant.id);
        assert.equal(t.isolation, isolation);
        assert.ok(t.kind === 'query' || t.kind === 'transaction');
        assert.equal(t.outcome, 'ok');
        assert.equal(t.errorCode, null);
        assert.ok(t.durationMs > 0 && t.durationMs < 5_000, String(t.durationMs));
      }

      assert.ok(seen.lookup.length >= 1, 'the subdomain was looked up in the catalog');
      for (const l of seen.lookup) {
        assert.ok(['id', 'slug', 'domain'].includes(l.by), l.by);
        assert.equal(typeof l.hit, 'boolean');
        assert.equal(l.errorCode, null);
        assert.ok(l.durationMs >= 0);
      }
      assert.ok(seen.lookup.some((l) => l.by === 'slug' && l.found), JSON.stringify(seen.lookup));
    });
  }

  it('failures carry their codes: an unknown tenant, a failing statement', async () => {
    const { seen, stop } = record();
    try {
      const res = await stack.app.inject({ method: 'GET', url: '/api/v1/tickets', headers: { host: 'no-such-tenant.localhost' } });
      assert.equal(res.statusCode, 404);
      const tenant = stack.tenants.find((t) => t.isolation === 'schema')!;
      const scoped: Tenant = { id: tenant.id, slug: tenant.slug, name: tenant.name, status: 'active', plan: tenant.plan, isolation: tenant.isolation, shard: 'default', settings: {}, createdAt: '', updatedAt: '' };
      await assert.rejects(runWithTenant(scoped, () => stack.tenantry.db.query('select 1 / 0')));
    } finally {
      stop();
    }
    assert.equal(seen.resolved.length, 1);
    assert.equal(seen.resolved[0]!.outcome, 'tenant_not_found');
    assert.equal(seen.resolved[0]!.tenantId, null);
    assert.deepEqual(seen.admitted, [], 'a refused request is not admitted');
    assert.ok(seen.lookup.some((l) => l.by === 'slug' && !l.hit && !l.found), JSON.stringify(seen.lookup));
    const failed = seen.transaction.filter((t) => t.outcome === 'error');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.errorCode, '22012', 'division_by_zero');
    assert.equal(failed[0]!.isolation, 'schema');
  });

  it('with no subscriber nothing is published: each site asks hasSubscribers and stops there', async () => {
    const spies = Object.values(events).map((ch) => {
      const spy = { reads: 0, publishes: 0 };
      Object.defineProperty(ch, 'hasSubscribers', { configurable: true, get: () => { spy.reads++; return false; } });
      Object.defineProperty(ch, 'publish', { configurable: true, value: () => { spy.publishes++; } });
      return { ch, spy };
    });
    try {
      for (const isolation of ['pooled', 'schema', 'database'] as const) {
        const tenant = stack.tenants.find((t) => t.isolation === isolation)!;
        const res = await stack.app.inject({ method: 'GET', url: '/api/v1/tickets?limit=1', headers: { host: `${tenant.slug}.localhost`, authorization: `Bearer ${await stack.token(tenant.slug)}` } });
        assert.equal(res.statusCode, 200);
      }
      // A refusal by admission control (tenantry:request:limited): one request a second, two at once.
      const acme = stack.tenants.find((t) => t.slug === 'acme')!;
      const patch = await stack.app.inject({ method: 'PATCH', url: `/admin/api/tenants/${acme.id}/limits`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, payload: { requests_per_second: 1, burst: 1 } });
      assert.equal(patch.statusCode, 200, patch.body);
      const token = await stack.token('acme');
      const burst = await Promise.all([1, 2, 3].map(() => stack.app.inject({ method: 'GET', url: '/api/v1/me', headers: { host: 'acme.localhost', authorization: `Bearer ${token}` } })));
      assert.ok(burst.some((r) => r.statusCode === 429));
      await stack.app.inject({ method: 'PATCH', url: `/admin/api/tenants/${acme.id}/limits`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, payload: { requests_per_second: null, burst: null } });
    } finally {
      for (const { ch } of spies) {
        delete (ch as unknown as Record<string, unknown>).hasSubscribers;
        delete (ch as unknown as Record<string, unknown>).publish;
      }
    }
    for (const { ch, spy } of spies) {
      assert.equal(spy.publishes, 0, `${ch.name}: nothing published`);
      assert.ok(spy.reads >= 1, `${ch.name}: the site asked hasSubscribers (${spy.reads})`);
    }
  });
});
