/**
 * `auditAll` / `tenantry check`: clean on a fresh platform (pooled schema, schema tenants, a
 * database tenant), then one breakage at a time, made by hand as superuser, each found with the
 * right check on the right target — and each undone, after which the audit is clean again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AuditReport, type Finding } from '../src/index.js';
import type { MigrationTarget } from '../src/migrate/targets.js';
import { auditHelpers } from './audit-helpers.js';
import { createPlatform, runCli, type Platform } from './fixtures/platform.js';

const CONTROL = 'database:control';
const POLICY = 'tenant_id = tenantry_rls.current_tenant_id()';

describe('tenantry check', () => {
  let p: Platform;
  let pooled: MigrationTarget;
  let s1: MigrationTarget;
  let s2: MigrationTarget;
  let d: MigrationTarget;
  let targetCount: number;

  const { audit, show, on, assertClean, breakAndRestore } = auditHelpers(() => p, { targets: () => targetCount });
  const find = (r: AuditReport, check: string, target: string, object?: string | RegExp): Finding | undefined =>
    r.findings.find((f) => f.check === check && f.target === target &&
      (object === undefined || (typeof object === 'string' ? f.object === object : object.test(f.object))));

  before(async () => {
    p = await createPlatform(['schema', 'database', 'schema'], 'chk');
    const targets = await p.targets();
    targetCount = targets.length;
    [pooled, s1, d, s2] = targets as [MigrationTarget, MigrationTarget, MigrationTarget, MigrationTarget];
    assert.deepEqual([pooled, s1, d, s2].map((t) => t.isolation), ['pooled', 'schema', 'database', 'schema']);
  });
  after(async () => { await p?.close(); });

  it('a fresh platform in all three placements is clean', async () => {
    const r = await audit();
    assert.equal(r.ok, true, show(r));
    assert.deepEqual(r.findings, []);
    assert.equal(r.targets, 4);
    const viaToolkit = await p.tenantry.check();
    assert.equal(viaToolkit.ok, true, show(viaToolkit));
  });

  it('finds a table without tenant_id (schema tenant)', async () => {
    await breakAndRestore('stray table',
      () => on(s1, (sql, s) => sql.query(`create table ${s}.stray (id int primary key, body text)`)),
      () => on(s1, (sql, s) => sql.query(`drop table if exists ${s}.stray`)),
      (r) => {
        const f = find(r, 'tenant_id', s1.id, 'stray');
        assert.ok(f, show(r));
        assert.match(f.message, /no tenant_id/);
        // It shows up as drift of that target only.
        assert.ok(find(r, 'drift', s1.id, /^column stray\.id integer/), show(r));
        assert.ok(r.findings.every((x) => x.target === s1.id), show(r));
      });
  });

  it('finds RLS disabled (database tenant)', async () => {
    await breakAndRestore('rls disabled',
      () => on(d, (sql, s) => sql.query(`alter table ${s}.tickets disable row level security`)),
      () => on(d, (sql, s) => sql.query(`alter table ${s}.tickets enable row level security`)),
      (r) => {
        assert.ok(find(r, 'rls_enabled', d.id, 'tickets'), show(r));
        assert.equal(find(r, 'rls_forced', d.id), undefined, show(r));
        assert.equal(find(r, 'rls_enabled', s1.id), undefined, show(r));
      });
  });

  it('finds RLS not forced (schema tenant)', async () => {
    await breakAndRestore('rls not forced',
      () => on(s2, (sql, s) => sql.query(`alter table ${s}.comments no force row level security`)),
      () => on(s2, (sql, s) => sql.query(`alter table ${s}.comments force row level security`)),
      (r) => {
        const f = find(r, 'rls_forced', s2.id, 'comments');
        assert.ok(f, show(r));
        assert.equal(find(r, 'rls_enabled', s2.id), undefined, show(r));
      });
  });

  it('finds a policy with USING (true) (pooled schema)', async () => {
    await breakAndRestore('using (true)',
      () => on(pooled, (sql, s) => sql.execute(`drop policy tenant_isolation on ${s}.users;
        create policy tenant_isolation on ${s}.users using (true) with check (${POLICY})`)),
      () => on(pooled, (sql, s) => sql.execute(`drop policy if exists tenant_isolation on ${s}.users;
        create policy tenant_isolation on ${s}.users using (${POLICY}) with check (${POLICY})`)),
      (r) => {
        const f = find(r, 'policy_using', pooled.id, 'users.tenant_isolation');
        assert.ok(f, show(r));
        assert.equal(find(r, 'policy_with_check', pooled.id), undefined, show(r));
      });
  });

  it('finds a policy without WITH CHECK (schema tenant)', async () => {
    await breakAndRestore('no with check',
      () => on(s1, (sql, s) => sql.execute(`drop policy tenant_isolation on ${s}.tickets;
        create policy tenant_isolation on ${s}.tickets for all using (${POLICY})`)),
      () => on(s1, (sql, s) => sql.execute(`drop policy if exists tenant_isolation on ${s}.tickets;
        create policy tenant_isolation on ${s}.tickets using (${POLICY}) with check (${POLICY})`)),
      (r) => {
        assert.ok(find(r, 'policy_with_check', s1.id, 'tickets.tenant_isolation'), show(r));
        assert.equal(find(r, 'policy_using', s1.id), undefined, show(r));
      });
  });

  it('finds a table with no index leading with tenant_id (database tenant)', async () => {
    await breakAndRestore('no tenant index',
      () => on(d, (sql, s) => sql.execute(`
        create table ${s}.notes (tenant_id uuid not null default tenantry_rls.current_tenant_id(), id uuid not null, body text,
          primary key (id, tenant_id));
        alter table ${s}.notes enable row level security;
        alter table ${s}.notes force row level security;
        create policy tenant_isolation on ${s}.notes using (${POLICY}) with check (${POLICY})`)),
      () => on(d, (sql, s) => sql.query(`drop table if exists ${s}.notes`)),
      (r) => {
        assert.ok(find(r, 'tenant_index', d.id, 'notes'), show(r));
        // Its primary key does not lead with tenant_id either (which is why no index does).
        assert.ok(find(r, 'tenant_pk', d.id, 'notes.notes_pkey'), show(r));
        // Nothing else is wrong with that table — the probe fills and checks it like any other:
        // only the index, the key (and drift) are reported.
        const others = r.findings.filter((f) => f.check !== 'drift' && f.check !== 'tenant_index' && f.check !== 'tenant_pk');
        assert.deepEqual(others, []);
      });
  });

  it('finds the runtime role with BYPASSRLS', async () => {
    await breakAndRestore('bypassrls',
      () => p.admin.query('alter role tenantry_app bypassrls'),
      () => p.admin.query('alter role tenantry_app nobypassrls'),
      (r) => {
        const f = find(r, 'runtime_role', CONTROL, 'tenantry_app');
        assert.ok(f, show(r));
        assert.match(f.message, /BYPASSRLS/);
        // The database tenant's runtime role is the same cluster-wide role: reported there too.
        assert.ok(find(r, 'runtime_role', d.id, 'tenantry_app'), show(r));
      });
  });

  it('finds the runtime role able to CREATE in the pooled schema', async () => {
    await breakAndRestore('grant create',
      () => p.admin.query('grant create on schema app to tenantry_app'),
      () => p.admin.query('revoke create on schema app from tenantry_app'),
      (r) => {
        const f = find(r, 'runtime_role_create', CONTROL, 'tenantry_app');
        assert.ok(f, show(r));
        assert.match(f.message, /CREATE in schema app/);
      });
  });

  it('finds a SECURITY DEFINER function without a pinned search_path (schema tenant)', async () => {
    await breakAndRestore('security definer',
      () => on(s2, (sql, s) => sql.query(`create function ${s}.leak(n int) returns int language sql security definer as 'select n'`)),
      () => on(s2, (sql, s) => sql.query(`drop function if exists ${s}.leak(int)`)),
      async (r) => {
        assert.ok(find(r, 'security_definer', s2.id, 'leak(n integer)'), show(r));
        // With a pinned search_path the same function passes.
        await on(s2, (sql, s) => sql.query(`alter function ${s}.leak(int) set search_path = pg_catalog, pg_temp`));
        const again = await audit();
        assert.equal(find(again, 'security_definer', s2.id), undefined, show(again));
      });
  });

  it('finds a view without security_invoker (schema tenant)', async () => {
    await breakAndRestore('view',
      () => on(s1, (sql, s) => sql.query(`create view ${s}.open_tickets as select tenant_id, id, title from ${s}.tickets where status = 'open'`)),
      () => on(s1, (sql, s) => sql.query(`drop view if exists ${s}.open_tickets`)),
      async (r) => {
        assert.ok(find(r, 'view_security_invoker', s1.id, 'open_tickets'), show(r));
        await on(s1, (sql, s) => sql.query(`alter view ${s}.open_tickets set (security_invoker = true)`));
        const again = await audit();
        assert.equal(find(again, 'view_security_invoker', s1.id), undefined, show(again));
      });
  });

  it('finds drift: an extra column in one tenant schema only, named on that target', async () => {
    await breakAndRestore('extra column',
      () => on(s2, (sql, s) => sql.query(`alter table ${s}.tickets add column extra int`)),
      () => on(s2, (sql, s) => sql.query(`alter table ${s}.tickets drop column if exists extra`)),
      (r) => {
        const f = find(r, 'drift', s2.id, 'column tickets.extra integer');
        assert.ok(f, show(r));
        assert.match(f.message, /unexpected/);
        assert.deepEqual(r.findings, [f], 'only that target drifts, and by that column only');
      });
  });

  it('finds drift: an index missing from the database tenant', async () => {
    await breakAndRestore('missing index',
      () => on(d, (sql, s) => sql.query(`drop index ${s}.comments_tenant_author_idx`)),
      () => on(d, (sql, s) => sql.query(`create index if not exists comments_tenant_author_idx on ${s}.comments (tenant_id, author_id)`)),
      (r) => {
        const f = find(r, 'drift', d.id, /comments_tenant_author_idx/);
        assert.ok(f, show(r));
        assert.match(f.message, /missing/);
        assert.ok(r.findings.every((x) => x.target === d.id), show(r));
      });
  });

  it('tenantry check --json: exit 0 when clean, 1 with findings', async () => {
    const clean = await runCli(['check', '--json'], p.url);
    assert.equal(clean.code, 0, clean.stderr + clean.stdout);
    const cleanReport = clean.lines[0] as unknown as AuditReport;
    assert.equal(cleanReport.ok, true);
    assert.deepEqual(cleanReport.findings, []);
    assert.equal(cleanReport.targets, 4);

    try {
      await on(s1, (sql, s) => sql.query(`alter table ${s}.users disable row level security`));
      const dirty = await runCli(['check', '--json'], p.url);
      assert.equal(dirty.code, 1, dirty.stderr + dirty.stdout);
      const report = dirty.lines[0] as unknown as AuditReport;
      assert.equal(report.ok, false);
      assert.ok(find(report, 'rls_enabled', s1.id, 'users'), dirty.stdout);
    } finally {
      await on(s1, (sql, s) => sql.query(`alter table ${s}.users enable row level security`));
    }
    await assertClean('re-enabling RLS');
  });
});
