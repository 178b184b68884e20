import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  TenantContextMissingError, currentTenant, peekTenant, requirePlatformScope, runWithTenant, withPlatformScope, type Tenant,
} from '../src/index.js';
import { startTestStack, type TestStack } from './helpers.js';

const fake = (id: string, slug: string): Tenant => Object.freeze({
  id, slug, name: slug, status: 'active', plan: 'free', isolation: 'pooled', shard: 'default', settings: {}, createdAt: '', updatedAt: '',
});

describe('tenant context', () => {
  it('throws a typed error outside a tenant scope', () => {
    assert.throws(() => currentTenant(), TenantContextMissingError);
    assert.equal(peekTenant(), undefined);
  });

  it('keeps each async chain on its own tenant across awaits', async () => {
    const tenants = Array.from({ length: 50 }, (_, i) => fake(`00000000-0000-7000-8000-${String(i).padStart(12, '0')}`, `t${i}`));
    const seen = await Promise.all(tenants.map((t) => runWithTenant(t, async () => {
      const ids: string[] = [];
      for (let step = 0; step < 5; step++) {
        await sleep(Math.random() * 5);
        ids.push(currentTenant().id);
      }
      return ids;
    })));
    seen.forEach((ids, i) => assert.deepEqual(ids, Array(5).fill(tenants[i]!.id)));
  });

  it('a platform scope is not a tenant scope', async () => {
    await withPlatformScope({ actor: 'test', reason: 'check' }, async () => {
      assert.throws(() => currentTenant(), TenantContextMissingError);
      assert.equal(requirePlatformScope().actor, 'test');
    });
    assert.throws(() => requirePlatformScope(), /withPlatformScope/);
    await assert.rejects(() => withPlatformScope({ actor: '', reason: '' }, () => 1), TypeError);
  });
});

describe('platform scope is audited', () => {
  let stack: TestStack;
  before(async () => { stack = await startTestStack(); });
  after(async () => { await stack.close(); });

  it('writes actor and reason of each entry to tenantry.audit_log', async () => {
    const reason = `audit-probe-${Date.now()}`;
    await withPlatformScope({ actor: 'test-suite', reason }, async () => stack.tenantry.catalog.list({ limit: 1 }));
    let rows: { actor: string }[] = [];
    for (let i = 0; i < 50 && !rows.length; i++) {
      rows = await stack.admin.query<{ actor: string }>(
        "select actor from tenantry.audit_log where action = 'platform_scope' and detail->>'reason' = $1", [reason]);
      if (!rows.length) await sleep(20);
    }
    assert.deepEqual(rows.map((r) => r.actor), ['test-suite']);
  });

  it('tenant administration refuses to run outside the platform scope', async () => {
    await assert.rejects(() => stack.tenantry.createTenant({ slug: 'outside', name: 'Outside' }), /withPlatformScope/);
    const [row] = await stack.admin.query("select count(*)::int as n from tenantry.tenants where slug = 'outside'");
    assert.equal(row!.n, 0);
  });

  it('platform-only catalog reads and writes refuse to run outside the platform scope; tenant-scoped ones outside a tenant', async () => {
    const { tenantry } = stack;
    const acme = stack.tenants.find((t) => t.slug === 'acme')!;
    await assert.rejects(() => tenantry.catalog.list({ limit: 1 }), /withPlatformScope/);
    await assert.rejects(() => tenantry.auditLog.list({ limit: 1 }), /withPlatformScope/);
    await assert.rejects(() => tenantry.catalog.setStatus(acme.id, 'suspended'), /withPlatformScope/);
    await assert.rejects(() => tenantry.catalog.addDomain(acme.id, 'outside.example.com'), /withPlatformScope/);
    assert.equal((await tenantry.catalog.findById(acme.id))?.status, 'active');
    // Resolution lookups need no scope; tenant-scoped stores need a tenant.
    assert.equal((await tenantry.catalog.findBySlug('acme'))?.id, acme.id);
    await assert.rejects(() => tenantry.apiKeys.list(), TenantContextMissingError);
    await assert.rejects(() => tenantry.revokeTokens(acme.users[0]!.id), TenantContextMissingError);
    // Inside the scope: the audit log shows the scope's own entry.
    const reason = `read-audit-${Date.now()}`;
    const entries = await withPlatformScope({ actor: 'test-suite', reason }, async () => {
      assert.ok((await tenantry.catalog.list({ limit: 10 })).some((t) => t.id === acme.id));
      for (let i = 0; i < 50; i++) {
        const found = (await tenantry.auditLog.list({ limit: 20 })).filter((e) => e.detail.reason === reason);
        if (found.length) return found;
        await sleep(20);
      }
      return [];
    });
    assert.deepEqual(entries.map((e) => [e.actor, e.action]), [['test-suite', 'platform_scope']]);
  });

  it('data access outside a tenant context throws before any SQL', async () => {
    await assert.rejects(() => stack.tenantry.db.query('select 1'), TenantContextMissingError);
    await assert.rejects(() => stack.tenantry.db.transaction(async (tx) => tx.query('select 1')), TenantContextMissingError);
    await withPlatformScope({ actor: 'test', reason: 'x' }, () =>
      assert.rejects(() => stack.tenantry.db.query('select 1'), TenantContextMissingError));
  });
});
