/**
 * The isolation checks check themselves: each probe of test/isolation-probes.ts passes on an
 * intact database, and goes red when the database defence is weakened on purpose (as superuser).
 * A probe that stays green while a policy says `using (true)` would prove nothing. The audit
 * (`tenantry check`, auditAll) is held to the same standard on each weakening: its structural
 * finding and, where behaviour changes, its own probe's finding.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { auditAll, type AuditReport } from '../src/migrate/check.js';
import { pooledDemoTenants, startTestStack, type TestStack } from './helpers.js';
import { probeAll, probeOwnerForce, probePolicyShape, probeReadIsolation, probeWithCheck } from './isolation-probes.js';

const rls = 'tenantry_rls.current_tenant_id()';

describe('isolation probes self-check', () => {
  let stack: TestStack;
  before(async () => { stack = await startTestStack({}, pooledDemoTenants); });
  after(async () => { await stack?.close(); });

  /** Puts app.tickets back exactly as migration 0001 made it. */
  async function restore(): Promise<void> {
    await stack.admin.transaction(async (tx) => {
      await tx.query('alter table app.tickets enable row level security');
      await tx.query('alter table app.tickets force row level security');
      await tx.query('drop policy if exists tenant_isolation on app.tickets');
      await tx.query('drop policy if exists probe_leak on app.tickets');
      await tx.query(`create policy tenant_isolation on app.tickets using (tenant_id = ${rls}) with check (tenant_id = ${rls})`);
    });
  }

  /** Weakens the database, runs fn, then restores and proves every probe is green again. */
  async function weakened(ddl: string[], fn: () => Promise<void>): Promise<void> {
    await stack.admin.transaction(async (tx) => { for (const stmt of ddl) await tx.query(stmt); });
    try {
      await fn();
    } finally {
      await restore();
    }
    assert.deepEqual(await probeAll(stack), [], 'after restore every probe passes again');
    assert.deepEqual((await auditAll(stack.admin, stack.databaseUrl)).findings, [], 'after restore the audit is clean again');
  }

  const mentions = (failures: string[], ...words: string[]) =>
    failures.some((f) => words.every((w) => f.includes(w)));

  const audit = () => auditAll(stack.admin, stack.databaseUrl);
  /** The checks (and objects) of the audit's findings, e.g. "policy_using tickets.tenant_isolation". */
  const checks = (r: AuditReport) => r.findings.map((f) => `${f.check} ${f.object}`);
  const reports = (r: AuditReport, ...expected: string[]) => {
    for (const e of expected) assert.ok(checks(r).includes(e), `audit lacks "${e}": ${JSON.stringify(r.findings, null, 1)}`);
  };

  it('passes every probe on an intact stack', async () => {
    assert.deepEqual(await probeReadIsolation(stack), []);
    assert.deepEqual(await probeWithCheck(stack), []);
    assert.deepEqual(await probePolicyShape(stack.admin), []);
    assert.deepEqual(await probeOwnerForce(stack), []);
    const r = await audit();
    assert.deepEqual(r.findings, []);
    assert.equal(r.ok, true);
  });

  it('(a) USING (true): the read probe reports other tenants\' tickets', async () => {
    await weakened(['alter policy tenant_isolation on app.tickets using (true)'], async () => {
      const read = await probeReadIsolation(stack);
      assert.ok(read.length > 0, 'read probe must fail');
      assert.ok(mentions(read, 'tickets', 'other tenants'), read.join('\n'));
      // Users and comments are untouched: the probe pins the broken table, not everything.
      assert.ok(!read.some((f) => f.includes(': users ') || f.includes(': comments ')), read.join('\n'));
      const shape = await probePolicyShape(stack.admin);
      assert.ok(mentions(shape, 'tickets.tenant_isolation', 'USING'), shape.join('\n'));
      const r = await audit();
      reports(r, 'policy_using tickets.tenant_isolation', 'probe_read tickets', 'probe_update tickets', 'probe_delete tickets');
      assert.ok(r.findings.every((f) => f.object.startsWith('tickets')), 'only tickets is reported');
    });
  });

  it('(b) WITH CHECK (true): the write probe reports a foreign row accepted', async () => {
    await weakened([
      'drop policy tenant_isolation on app.tickets',
      `create policy tenant_isolation on app.tickets using (tenant_id = ${rls}) with check (true)`,
    ], async () => {
      const write = await probeWithCheck(stack);
      assert.ok(mentions(write, 'insert into tickets', 'accepted'), write.join('\n'));
      assert.ok(mentions(write, 'update moving every', 'accepted'), write.join('\n'));
      // With WHERE id = ..., the new row must also pass the SELECT policy's USING: still refused.
      assert.ok(!mentions(write, 'update of one'), write.join('\n'));
      assert.ok(!write.includes('tenant tables changed during the write probe'), 'probe attempts are rolled back');
      assert.deepEqual(await probeReadIsolation(stack), [], 'reads are still isolated: only WITH CHECK is broken');
      const shape = await probePolicyShape(stack.admin);
      assert.ok(mentions(shape, 'tickets.tenant_isolation', 'WITH CHECK'), shape.join('\n'));
      const r = await audit();
      reports(r, 'policy_with_check tickets.tenant_isolation', 'probe_insert tickets', 'probe_update tickets');
      assert.ok(!checks(r).includes('probe_read tickets'), 'reads are still isolated');
    });
  });

  it('(c) USING without WITH CHECK: only the structural probe can tell', async () => {
    await weakened([
      'drop policy tenant_isolation on app.tickets',
      `create policy tenant_isolation on app.tickets using (tenant_id = ${rls})`,
    ], async () => {
      const [policy] = await stack.admin.query<{ with_check: string | null }>(
        "select with_check from pg_policies where schemaname = 'app' and tablename = 'tickets' and policyname = 'tenant_isolation'");
      assert.equal(policy?.with_check, null);
      const shape = await probePolicyShape(stack.admin);
      assert.ok(mentions(shape, 'tickets.tenant_isolation', 'WITH CHECK', 'absent'), shape.join('\n'));
      // For a FOR ALL policy PostgreSQL applies USING to new rows when WITH CHECK is absent,
      // so behaviourally nothing leaks yet; the structural check is what flags the policy.
      assert.deepEqual(await probeWithCheck(stack), []);
      assert.deepEqual(await probeReadIsolation(stack), []);
      // The audit: structurally red, behaviourally nothing to see (as the probes above).
      const r = await audit();
      assert.deepEqual(checks(r), ['policy_with_check tickets.tenant_isolation']);
    });
  });

  it('(d1) NO FORCE ROW LEVEL SECURITY: the shape and owner probes report it', async () => {
    await weakened(['alter table app.tickets no force row level security'], async () => {
      const shape = await probePolicyShape(stack.admin);
      assert.ok(mentions(shape, 'tickets', 'not forced'), shape.join('\n'));
      const owner = await probeOwnerForce(stack);
      assert.ok(mentions(owner, 'tickets', 'owner role'), owner.join('\n'));
      // The audit's probe runs as the runtime role, which FORCE does not concern: structural only.
      assert.deepEqual(checks(await audit()), ['rls_forced tickets']);
    });
  });

  it('(d2) DISABLE ROW LEVEL SECURITY: read, write and shape probes report it', async () => {
    await weakened([
      'alter table app.tickets no force row level security',
      'alter table app.tickets disable row level security',
    ], async () => {
      const read = await probeReadIsolation(stack);
      assert.ok(mentions(read, 'tickets', 'other tenants'), read.join('\n'));
      assert.ok(mentions(read, 'no app.tenant_id', 'tickets'), 'no context sees all rows: ' + read.join('\n'));
      const write = await probeWithCheck(stack);
      assert.ok(mentions(write, 'insert into tickets', 'accepted'), write.join('\n'));
      const shape = await probePolicyShape(stack.admin);
      assert.ok(mentions(shape, 'tickets', 'not enabled'), shape.join('\n'));
      assert.ok(mentions(shape, 'tickets', 'not forced'), shape.join('\n'));
      reports(await audit(), 'rls_enabled tickets', 'rls_forced tickets', 'probe_read tickets', 'probe_insert tickets', 'probe_update tickets', 'probe_delete tickets');
    });
  });

  it('(d3) DISABLE alone (FORCE flag left set): still caught', async () => {
    await weakened(['alter table app.tickets disable row level security'], async () => {
      assert.ok(mentions(await probeReadIsolation(stack), 'tickets', 'other tenants'));
      assert.ok(mentions(await probeWithCheck(stack), 'insert into tickets', 'accepted'));
      assert.ok(mentions(await probePolicyShape(stack.admin), 'tickets', 'not enabled'));
      reports(await audit(), 'rls_enabled tickets', 'probe_read tickets', 'probe_insert tickets');
    });
  });

  it('(e) an extra permissive policy USING (true) for SELECT: read and shape probes report it', async () => {
    await weakened(['create policy probe_leak on app.tickets for select using (true)'], async () => {
      assert.ok(mentions(await probeReadIsolation(stack), 'tickets', 'other tenants'));
      assert.ok(mentions(await probePolicyShape(stack.admin), 'tickets.probe_leak', 'USING'));
      const r = await audit();
      reports(r, 'policy_using tickets.probe_leak', 'probe_read tickets');
      assert.ok(!checks(r).includes('policy_using tickets.tenant_isolation'), 'the tenant policy itself is fine');
    });
  });
});
