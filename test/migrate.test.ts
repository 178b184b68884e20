/**
 * `migrateAll` and `tenantry migrate` across every placement: the pooled schema, schema tenants
 * and database tenants. The migrations come from test/fixtures/migrations-steps (0001 and 0002 are the
 * helpdesk's own); each step of the first suite builds on the state the previous one left.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { runWithTenant, type Isolation, type MigrateOptions, type MigrationRun, type TargetRunResult } from '../src/index.js';
import { loadMigrations, type MigrationFile } from '../src/migrate/migration-files.js';
import { migrateAll } from '../src/migrate/orchestrator.js';
import type { MigrationTarget } from '../src/migrate/targets.js';
import { createPool, ident, withCredentials, withDatabase, type Sql } from '../src/data/driver/index.js';
import { createTestDatabase, ROLE_PASSWORD, serverUrl } from './helpers.js';
import { cliEnv, createPlatform, fixtures, repoRoot, runCli, type Platform } from './fixtures/platform.js';

const STEPS = fixtures('migrations-steps');
const SLOW = fixtures('migrations-slow');

/** 6 schema tenants and 3 database tenants, interleaved (tenant ids, hence targets, in this order). */
const LAYOUT: readonly Isolation[] = ['schema', 'database', 'schema', 'schema', 'database', 'schema', 'schema', 'database', 'schema'];

const byTarget = (run: MigrationRun) => new Map(run.results.map((r) => [r.target, r]));
const versionsOf = (r: TargetRunResult | undefined) => r?.applied.map((a) => a.version);
const describeRun = (run: MigrationRun) => JSON.stringify(run.results.map((r) => [r.target, r.wave, r.status, versionsOf(r), r.error]));

describe('loadMigrations', () => {
  const withFiles = async (names: readonly string[], fn: (dir: string) => Promise<void>) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tenantry-migrations-'));
    try {
      for (const n of names) await writeFile(path.join(dir, n), `select ${JSON.stringify(n).length};\n`);
      await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  it('loads NNNN_name.sql files in version order with their sha-256', async () => {
    const files = await loadMigrations(STEPS);
    assert.deepEqual(files.map((f) => [f.version, f.name]), [
      [1, 'helpdesk'], [2, 'ticket_search'], [3, 'add_ticket_tags'], [4, 'concurrency_probe'], [5, 'guarded_due_at'], [6, 'guarded_source'], [7, 'notes_without_tenant'],
    ]);
    const text = await readFile(path.join(STEPS, '0003_add_ticket_tags.sql'), 'utf8');
    assert.equal(files[2]!.sql, text);
    assert.equal(files[2]!.checksum, createHash('sha256').update(text).digest('hex'));
  });

  it('refuses a gap, a duplicate version and a badly named file', async () => {
    await withFiles(['0001_a.sql', '0003_c.sql'], (dir) => assert.rejects(loadMigrations(dir), /gap in migration versions/));
    await withFiles(['0001_a.sql', '0002_b.sql', '0002_c.sql'], (dir) => assert.rejects(loadMigrations(dir), /duplicate migration version 2/));
    await withFiles(['0001_a.sql', '2_b.sql'], (dir) => assert.rejects(loadMigrations(dir), /not named NNNN_name\.sql/));
    await withFiles(['0001_a.sql', '0002_b.sql', 'README.md'], async (dir) => assert.equal((await loadMigrations(dir)).length, 2));
  });
});

describe('migrateAll on every placement', () => {
  let p: Platform;
  /** The migration runner's own admin pool, as the CLI opens it. */
  let sql: Sql;
  let steps: MigrationFile[];
  let targets: MigrationTarget[];
  const upTo = (version: number) => steps.filter((f) => f.version <= version);
  const run = (version: number | MigrationFile[], opts: MigrateOptions = {}) =>
    migrateAll(sql, p.url, typeof version === 'number' ? upTo(version) : version, opts);
  /** A sequence named boom_marker in a target's schema makes 0005 and 0006 fail there. */
  const mark = (t: MigrationTarget) => p.on(t, (s) => s.query(`create sequence ${ident(t.schema)}.boom_marker`));
  const unmark = (t: MigrationTarget) => p.on(t, (s) => s.query(`drop sequence ${ident(t.schema)}.boom_marker`));

  before(async () => {
    p = await createPlatform(LAYOUT, 'mig');
    sql = createPool(p.url, { max: 9, applicationName: 'tenantry-migrate' });
    steps = await loadMigrations(STEPS);
    targets = await p.targets();
  });
  after(async () => {
    await sql?.end();
    await p?.close();
  });

  it('lists one target per placement instance, pooled first, then by tenant id', () => {
    assert.deepEqual(targets.map((t) => t.isolation), ['pooled', ...LAYOUT]);
    assert.deepEqual(targets.slice(1).map((t) => t.tenantId), p.tenants.map((t) => t.id));
    assert.equal(new Set(targets.map((t) => t.id)).size, targets.length);
    for (const t of targets.filter((x) => x.isolation === 'database')) {
      assert.match(t.id, /^database:tenant_[0-9a-f]{32}$/);
      assert.notEqual(t.databaseUrl, p.url);
    }
  });

  it('dry run: reports 0003 pending on every target and changes nothing', async () => {
    const r = await run(3, { dryRun: true });
    assert.equal(r.results.length, targets.length);
    assert.deepEqual(r.results.map((x) => x.target).sort(), targets.map((t) => t.id).sort());
    for (const x of r.results) {
      assert.equal(x.status, 'pending', describeRun(r));
      assert.deepEqual(versionsOf(x), [3]);
    }
    assert.equal(r.counts.pending, targets.length);
    assert.equal(r.audit, null);
    for (const t of targets) {
      assert.deepEqual(await p.versions(t), [1, 2], t.id);
      assert.equal(await p.hasColumn(t, 'tickets', 'tags'), false, t.id);
    }
  });

  it('applies an added column to every target, records it in each ledger, and a second run applies nothing', async () => {
    const progress: { target: string; done: number; total: number }[] = [];
    const r = await run(3, { concurrency: 4, onResult: (x, pr) => progress.push({ target: x.target, ...pr }) });
    assert.equal(r.ok, true, describeRun(r));
    assert.equal(r.results.length, targets.length);
    assert.deepEqual(r.results.map((x) => x.target).sort(), targets.map((t) => t.id).sort());
    for (const x of r.results) {
      assert.equal(x.status, 'applied', describeRun(r));
      assert.deepEqual(x.applied.map((a) => [a.version, a.name]), [[3, 'add_ticket_tags']]);
      assert.equal(x.error, undefined);
      assert.equal(x.wave, 'main');
    }
    assert.deepEqual(progress.map((x) => x.done), targets.map((_, i) => i + 1));
    assert.ok(progress.every((x) => x.total === targets.length));
    assert.equal(r.audit?.ok, true, JSON.stringify(r.audit?.findings));
    assert.equal(r.audit?.targets, targets.length);

    const source = await readFile(path.join(STEPS, '0003_add_ticket_tags.sql'), 'utf8');
    const checksum = createHash('sha256').update(source).digest('hex');
    for (const t of targets) {
      const rows = await p.on(t, (s) => s.query<{ version: number; name: string; checksum: string; duration_ms: number }>(
        `select version, name, checksum, duration_ms from ${ident(t.schema)}.tenantry_migrations where version = 3`));
      assert.equal(rows.length, 1, t.id);
      assert.equal(rows[0]!.name, 'add_ticket_tags');
      assert.equal(rows[0]!.checksum, checksum, t.id);
      assert.ok(Number.isInteger(rows[0]!.duration_ms) && rows[0]!.duration_ms >= 0, t.id);
      const [col] = await p.on(t, (s) => s.query<{ data_type: string; is_nullable: string }>(
        `select data_type, is_nullable from information_schema.columns where table_schema = $1 and table_name = 'tickets' and column_name = 'tags'`, [t.schema]));
      assert.deepEqual(col && { ...col }, { data_type: 'ARRAY', is_nullable: 'NO' }, t.id);
    }

    // The runtime roles can use the new column at once (privileges re-granted by the run).
    for (const tenant of [p.tenants[0]!, p.tenants[1]!]) {
      const rows = await runWithTenant(tenant, async () => {
        await p.tenantry.db.query(`insert into tickets (id, title, tags) values (gen_random_uuid(), 'tagged', '{a,b}')`);
        return p.tenantry.db.query<{ tags: string[] }>(`select tags from tickets where title = 'tagged'`);
      });
      assert.deepEqual(rows.map((x) => x.tags), [['a', 'b']], tenant.isolation);
    }

    const again = await run(3, { concurrency: 4 });
    assert.equal(again.ok, true, describeRun(again));
    assert.equal(again.results.length, targets.length);
    assert.ok(again.results.every((x) => x.status === 'up_to_date' && x.applied.length === 0), describeRun(again));
    assert.equal(again.counts.applied, 0);
    for (const t of targets) {
      const [c] = await p.on(t, (s) => s.query<{ n: number }>(`select count(*)::int as n from ${ident(t.schema)}.tenantry_migrations where version = 3`));
      assert.equal(c!.n, 1, t.id);
    }
  });

  it('refuses a source whose applied file was edited (checksum), and applies nothing new', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tenantry-migrations-'));
    try {
      await copyFile(path.join(STEPS, '0001_helpdesk.sql'), path.join(dir, '0001_helpdesk.sql'));
      await copyFile(path.join(STEPS, '0002_ticket_search.sql'), path.join(dir, '0002_ticket_search.sql'));
      await copyFile(path.join(STEPS, '0004_concurrency_probe.sql'), path.join(dir, '0004_concurrency_probe.sql'));
      const edited = (await readFile(path.join(STEPS, '0003_add_ticket_tags.sql'), 'utf8')).replace("default '{}'", "default '{x}'");
      await writeFile(path.join(dir, '0003_add_ticket_tags.sql'), edited);
      const r = await run(await loadMigrations(dir), { concurrency: 2 });
      assert.equal(r.ok, false);
      assert.equal(r.results.length, targets.length);
      assert.equal(r.counts.applied, 0, describeRun(r));
      assert.equal(r.counts.up_to_date, 0, describeRun(r));
      assert.ok(r.counts.failed >= 1, describeRun(r));
      assert.equal(r.counts.failed + r.counts.skipped, targets.length, describeRun(r));
      for (const x of r.results.filter((y) => y.status === 'failed')) {
        assert.match(x.error ?? '', /checksum/);
        assert.match(x.error ?? '', /3_add_ticket_tags/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    for (const t of targets) {
      assert.deepEqual(await p.versions(t), [1, 2, 3], t.id);
      assert.equal(await p.hasRelation(t, 'tickets_tenant_created_idx'), false, t.id);
    }
  });

  it('bounds the migration transactions running at once by --concurrency', async () => {
    const N = 3;
    const databases = [p.name, ...targets.filter((t) => t.isolation === 'database').map((t) => new URL(t.databaseUrl).pathname.slice(1))];
    const sampler = createPool(withDatabase(serverUrl(), 'postgres'), { max: 1, applicationName: 'tenantry-test-sampler' });
    let maxSleeping = 0;
    let maxInTransaction = 0;
    let samples = 0;
    let sampling = true;
    const loop = (async () => {
      while (sampling) {
        const [s] = await sampler.query<{ sleeping: number; tx: number }>(`
          select count(*) filter (where state = 'active' and query like '%tenantry-test: concurrency' || '-probe%')::int as sleeping,
                 count(*) filter (where xact_start is not null)::int as tx
          from pg_stat_activity
          where pid <> pg_backend_pid() and datname = any($1::text[]) and application_name in ('tenantry-migrate', 'tenantry-admin')`,
        [databases]);
        samples++;
        maxSleeping = Math.max(maxSleeping, s!.sleeping);
        maxInTransaction = Math.max(maxInTransaction, s!.tx);
        await sleep(5);
      }
    })();
    const started = performance.now();
    let r!: MigrationRun;
    try {
      r = await run(4, { concurrency: N, audit: false });
    } finally {
      sampling = false;
      await loop;
      await sampler.end();
    }
    const elapsed = performance.now() - started;
    assert.equal(r.ok, true, describeRun(r));
    assert.ok(r.results.every((x) => x.status === 'applied'), describeRun(r));
    assert.ok(samples >= 3, `only ${samples} samples`);
    assert.ok(maxInTransaction <= N, `${maxInTransaction} migration transactions at once, concurrency ${N}`);
    assert.ok(maxSleeping <= N, `${maxSleeping} targets in the migration at once, concurrency ${N}`);
    assert.ok(maxSleeping >= 2, `targets were not migrated in parallel (max ${maxSleeping} at once)`);
    // Every target sleeps 0.2 s inside its slot: with N slots, 10 targets need ≥ ceil(10/N) rounds.
    const floor = Math.ceil(targets.length / N) * 200;
    assert.ok(elapsed >= floor - 20, `took ${Math.round(elapsed)} ms, less than ${floor} ms: more than ${N} at once`);
    for (const t of targets) assert.equal(await p.hasRelation(t, 'tickets_tenant_created_idx'), true, t.id);
  });

  it('canary wave: a failing canary stops the run; the rest are skipped and unchanged', async () => {
    const tenantTargets = targets.filter((t) => t.isolation !== 'pooled');
    const [good, bad] = tenantTargets as [MigrationTarget, MigrationTarget];
    assert.equal(bad.isolation, 'database');
    await mark(bad);
    let r: MigrationRun;
    try {
      r = await run(5, { canary: 2, concurrency: 4 });
    } finally {
      await unmark(bad);
    }
    const res = byTarget(r);
    assert.equal(r.ok, false);
    assert.deepEqual(r.results.filter((x) => x.wave === 'canary').map((x) => x.target).sort(), [good.id, bad.id].sort());
    assert.equal(res.get(good.id)?.status, 'applied', describeRun(r));
    assert.deepEqual(versionsOf(res.get(good.id)), [5]);
    assert.equal(res.get(bad.id)?.status, 'failed', describeRun(r));
    assert.match(res.get(bad.id)?.error ?? '', /boom/);
    const rest = targets.filter((t) => t !== good && t !== bad);
    assert.equal(r.results.length, targets.length);
    for (const t of rest) {
      const x = res.get(t.id);
      assert.equal(x?.status, 'skipped', `${t.id}: ${describeRun(r)}`);
      assert.equal(x?.wave, 'main');
      assert.deepEqual(x?.applied, []);
    }
    assert.equal(r.counts.skipped, rest.length);
    assert.deepEqual(await p.versions(good), [1, 2, 3, 4, 5]);
    assert.equal(await p.hasColumn(good, 'tickets', 'due_at'), true);
    for (const t of [bad, ...rest]) {
      assert.deepEqual(await p.versions(t), [1, 2, 3, 4], t.id);
      assert.equal(await p.hasColumn(t, 'tickets', 'due_at'), false, t.id);
    }
  });

  it('a failure on one target is recorded with its error; the others go on', async () => {
    const tenantTargets = targets.filter((t) => t.isolation !== 'pooled');
    const bad = tenantTargets[3]!;
    assert.equal(bad.isolation, 'schema');
    await mark(bad);
    const r = await run(5, { concurrency: 4 });
    const res = byTarget(r);
    assert.equal(r.ok, false);
    assert.equal(r.results.length, targets.length);
    assert.deepEqual({ ...r.counts }, { applied: targets.length - 2, up_to_date: 1, pending: 0, failed: 1, skipped: 0 }, describeRun(r));
    assert.equal(res.get(bad.id)?.status, 'failed');
    assert.match(res.get(bad.id)?.error ?? '', new RegExp(`boom: ${bad.schema} refuses`));
    assert.equal(res.get(tenantTargets[0]!.id)?.status, 'up_to_date');
    for (const t of targets) {
      if (t === bad) {
        assert.deepEqual(await p.versions(t), [1, 2, 3, 4]);
        assert.equal(await p.hasColumn(t, 'tickets', 'due_at'), false);
      } else {
        if (t !== tenantTargets[0]) assert.deepEqual(versionsOf(res.get(t.id)), [5], t.id);
        assert.deepEqual(await p.versions(t), [1, 2, 3, 4, 5], t.id);
        assert.equal(await p.hasColumn(t, 'tickets', 'due_at'), true, t.id);
      }
    }
  });

  it('stopOnError: after the first failure the remaining targets are skipped', async () => {
    const bad = targets.filter((t) => t.isolation !== 'pooled')[3]!;
    const at = targets.indexOf(bad);
    // One at a time, so the order is the target order and "remaining" is well defined.
    const r = await run(6, { concurrency: 1, stopOnError: true });
    assert.equal(r.ok, false);
    assert.deepEqual(r.results.map((x) => x.target), targets.map((t) => t.id));
    r.results.forEach((x, i) => {
      if (i < at) {
        assert.equal(x.status, 'applied', describeRun(r));
        assert.deepEqual(versionsOf(x), [6]);
      } else if (i === at) {
        assert.equal(x.status, 'failed');
        assert.match(x.error ?? '', /boom/);
      } else {
        assert.equal(x.status, 'skipped', describeRun(r));
      }
    });
    for (const [i, t] of targets.entries()) {
      const v = await p.versions(t);
      assert.deepEqual(v, i < at ? [1, 2, 3, 4, 5, 6] : i === at ? [1, 2, 3, 4] : [1, 2, 3, 4, 5], t.id);
      assert.equal(await p.hasColumn(t, 'tickets', 'source'), i < at, t.id);
    }
  });

  it('once the cause is gone, a run with canaries finishes what is pending and the audit is clean', async () => {
    const tenantTargets = targets.filter((t) => t.isolation !== 'pooled');
    const bad = tenantTargets[3]!;
    await unmark(bad);
    const r = await run(6, { canary: 2, concurrency: 4 });
    const res = byTarget(r);
    assert.equal(r.ok, true, describeRun(r));
    assert.deepEqual(r.results.filter((x) => x.wave === 'canary').map((x) => x.target).sort(), tenantTargets.slice(0, 2).map((t) => t.id).sort());
    assert.deepEqual(versionsOf(res.get(bad.id)), [5, 6]);
    assert.equal(r.audit?.ok, true, JSON.stringify(r.audit?.findings));
    assert.deepEqual(r.audit?.findings, []);
    for (const t of targets) assert.deepEqual(await p.versions(t), [1, 2, 3, 4, 5, 6], t.id);
  });

  it('tenantry migrate: a table that fails the audit is rolled back on every target; the command fails', async () => {
    const cli = await runCli(['migrate', '--concurrency', '3', '--json', '--migrations', STEPS], p.url);
    assert.equal(cli.code, 1, cli.stderr);
    const events = cli.lines.filter((l) => l.event === 'target') as unknown as TargetRunResult[];
    assert.equal(events.length, targets.length, cli.stdout);
    assert.deepEqual(events.map((e) => e.target).sort(), targets.map((t) => t.id).sort());
    for (const e of events) {
      assert.equal(e.status, 'failed', JSON.stringify(e));
      assert.match(e.error ?? '', /isolation audit failed/);
      assert.match(e.error ?? '', /notes/);
    }
    const summary = cli.lines.find((l) => l.event === 'summary') as { ok: boolean; counts: Record<string, number>; audit: { ok: boolean } } | undefined;
    assert.equal(summary?.ok, false);
    assert.equal(summary?.counts.failed, targets.length);
    // Nothing of it stayed anywhere, so the audit after the run is clean.
    assert.equal(summary?.audit.ok, true, cli.stdout);
    for (const t of targets) {
      assert.equal(await p.hasRelation(t, 'notes'), false, t.id);
      assert.deepEqual(await p.versions(t), [1, 2, 3, 4, 5, 6], t.id);
    }
  });
});

describe('tenantry migrate is resumable after a kill', () => {
  let p: Platform;
  before(async () => { p = await createPlatform(Array<Isolation>(30).fill('schema'), 'res'); });
  after(async () => { await p?.close(); });

  it('a killed run leaves every target whole; the next run applies only what is pending', async () => {
    const targets = await p.targets();
    assert.equal(targets.length, 31);
    const args = ['migrate', '--concurrency', '2', '--json', '--migrations', SLOW];
    let reported = 0;
    const first = await runCli(args, p.url, (line) => line.includes('"event":"target"') && ++reported >= 4);
    assert.equal(first.signal, 'SIGKILL', `the run ended before it was killed: ${first.code} ${first.stderr}`);
    const firstEvents = first.lines.filter((l) => l.event === 'target') as unknown as TargetRunResult[];
    assert.ok(firstEvents.length >= 4 && firstEvents.length < targets.length, first.stdout);
    assert.ok(firstEvents.every((e) => e.status === 'applied'), first.stdout);
    assert.equal(first.lines.some((l) => l.event === 'summary'), false);

    // The killed runner's sessions end (their open transactions roll back) once the server notices.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const [s] = await p.admin.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'tenantry-migrate'`, [p.name]);
      if (s!.n === 0) break;
      assert.ok(Date.now() < deadline, 'the killed run still has sessions');
      await sleep(50);
    }

    const done = new Set<string>();
    for (const t of targets) {
      const migrated = (await p.versions(t)).includes(3);
      if (migrated) done.add(t.id);
      // Ledger and change are one transaction: both or neither.
      assert.equal(await p.hasColumn(t, 'tickets', 'tags'), migrated, t.id);
    }
    for (const e of firstEvents) assert.ok(done.has(e.target), `${e.target} was reported applied but is not`);
    assert.ok(done.size > 0 && done.size < targets.length, `not a partial run: ${done.size} of ${targets.length} migrated`);

    const second = await runCli(args, p.url);
    assert.equal(second.code, 0, second.stderr + second.stdout);
    const events = second.lines.filter((l) => l.event === 'target') as unknown as TargetRunResult[];
    assert.equal(events.length, targets.length);
    for (const e of events) {
      if (done.has(e.target)) {
        assert.equal(e.status, 'up_to_date', JSON.stringify(e));
      } else {
        assert.equal(e.status, 'applied', JSON.stringify(e));
        assert.deepEqual(versionsOf(e), [3]);
      }
    }
    const summary = second.lines.find((l) => l.event === 'summary') as { ok: boolean; counts: Record<string, number> } | undefined;
    assert.equal(summary?.ok, true);
    assert.equal(summary?.counts.applied, targets.length - done.size);
    assert.equal(summary?.counts.up_to_date, done.size);
    for (const t of targets) {
      const [c] = await p.admin.query<{ n: number }>(`select count(*)::int as n from ${ident(t.schema)}.tenantry_migrations where version = 3`);
      assert.equal(c!.n, 1, t.id);
      assert.equal(await p.hasColumn(t, 'tickets', 'tags'), true, t.id);
    }
  });
});

describe('tenantry migrate on a terminal', () => {
  let p: Platform;
  before(async () => { p = await createPlatform(['schema', 'schema', 'database'], 'tty'); });
  after(async () => { await p?.close(); });

  it('draws a progress bar and ends with a result table on a terminal; piped, it writes JSON lines', async () => {
    const targets = await p.targets();
    // script(1) gives the command a pseudo-terminal, as an operator's shell would.
    const command = ['node', 'bin/tenantry.js', 'migrate', '--migrations', SLOW].map((a) => `'${a}'`).join(' ');
    const tty = spawnSync('script', ['-qec', command, '/dev/null'], { cwd: repoRoot, env: cliEnv(p.url), encoding: 'utf8', timeout: 120_000 });
    assert.equal(tty.status, 0, tty.stdout + tty.stderr);
    const out = tty.stdout;
    const bars = [...out.matchAll(/\r\[([#.]{30})\] (\d+)\/(\d+) {2}failed (\d+)/g)];
    assert.equal(bars.length, targets.length, out);
    assert.deepEqual(bars.map((m) => Number(m[2])), targets.map((_, i) => i + 1));
    assert.ok(bars.every((m) => Number(m[3]) === targets.length && m[4] === '0'));
    assert.equal(bars.at(-1)![1], '#'.repeat(30));
    const table = out.split(/\r?\n/);
    for (const t of targets) assert.ok(table.some((l) => l.startsWith(t.id) && /\sapplied\s/.test(l)), `${t.id} applied, in ${out}`);
    assert.doesNotMatch(out, /"event":/);
    // The same command piped: JSON lines, no bar.
    const piped = await runCli(['migrate', '--migrations', SLOW], p.url);
    assert.equal(piped.code, 0, piped.stderr);
    assert.doesNotMatch(piped.stdout + piped.stderr, /\r\[/);
    assert.equal(piped.lines.filter((l) => l.event === 'target').length, targets.length);
    assert.ok(piped.lines.filter((l) => l.event === 'target').every((l) => l.status === 'up_to_date'));
  });
});

describe('tenantry CLI', () => {
  let p: Platform;
  before(async () => { p = await createPlatform([], 'cli'); });
  after(async () => { await p?.close(); });

  it('prints usage for --help of every command and exits 0', async () => {
    const cases: [string[], RegExp][] = [
      [['--help'], /Usage: tenantry <command>[\s\S]*migrate[\s\S]*check[\s\S]*tenants list/],
      [['migrate', '--help'], /Usage: tenantry migrate[\s\S]*--concurrency N[\s\S]*--canary N/],
      [['check', '--help'], /Usage: tenantry check/],
      [['tenants', '--help'], /Usage: tenantry tenants <list\|create\|show\|suspend\|resume\|limits>/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args, p.url)));
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, `${cases[i]![0].join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, cases[i]![1]);
    });
  });

  it('exits 2 on an unknown option, command or bad value', async () => {
    const cases: [string[], RegExp][] = [
      [['migrate', '--bogus'], /bogus/],
      [['check', '--nope'], /nope/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['migrate', '--concurrency', '0'], /--concurrency must be an integer/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args, p.url)));
    runs.forEach((r, i) => {
      assert.equal(r.code, 2, `${cases[i]![0].join(' ')}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stderr, cases[i]![1]);
    });
  });

  it('migrate bootstraps a fresh database with the configured role password (roles are cluster-wide)', async () => {
    const db = await createTestDatabase('fresh');
    try {
      const cli = await runCli(['migrate', '--json'], db.url);
      assert.equal(cli.code, 0, cli.stderr + cli.stdout);
      const events = cli.lines.filter((l) => l.event === 'target') as unknown as TargetRunResult[];
      assert.deepEqual(events.map((e) => [e.target, e.status, versionsOf(e)]), [['pooled:app', 'applied', [1, 2]]]);
      const admin = createPool(db.url, { max: 1 });
      try {
        const stored = await admin.query<{ role: string; password: string }>('select role, password from tenantry_admin.role_passwords order by role');
        assert.deepEqual(stored.map((r) => [r.role, r.password]), [['tenantry_app', ROLE_PASSWORD], ['tenantry_platform', ROLE_PASSWORD]]);
      } finally {
        await admin.end();
      }
      const app = createPool(withCredentials(db.url, 'tenantry_app', ROLE_PASSWORD), { max: 1 });
      try {
        const [me] = await app.query<{ user: string }>('select current_user as user');
        assert.equal(me?.user, 'tenantry_app');
      } finally {
        await app.end();
      }
    } finally {
      // Whatever happened, leave the cluster-wide roles with the password every test uses.
      const su = createPool(serverUrl(), { max: 1 });
      await su.query(`alter role tenantry_app password '${ROLE_PASSWORD}'`);
      await su.query(`alter role tenantry_platform password '${ROLE_PASSWORD}'`);
      await su.end();
      await db.drop();
    }
  });

  it('tenants create / list / show / suspend / resume', async () => {
    const created = await runCli(['tenants', 'create', '--slug', 'cli-corp', '--name', 'CLI Corp', '--isolation', 'database', '--json'], p.url);
    assert.equal(created.code, 0, created.stderr);
    const tenant = created.lines[0] as { id: string; slug: string; name: string; status: string; isolation: string };
    p.note(tenant.id, tenant.isolation);
    assert.equal(tenant.slug, 'cli-corp');
    assert.equal(tenant.name, 'CLI Corp');
    assert.equal(tenant.isolation, 'database');
    assert.equal(tenant.status, 'active');
    const [db] = await p.admin.query(`select 1 from pg_database where datname = $1`, [`tenant_${tenant.id.replace(/-/g, '')}`]);
    assert.ok(db, 'the tenant database exists');

    const [list, show] = await Promise.all([
      runCli(['tenants', 'list', '--json'], p.url),
      runCli(['tenants', 'show', 'cli-corp', '--json'], p.url),
    ]);
    assert.equal(list.code, 0, list.stderr);
    const all = list.lines[0] as unknown as { id: string; slug: string }[];
    assert.ok(Array.isArray(all));
    assert.deepEqual(all.map((t) => [t.id, t.slug]), [[tenant.id, 'cli-corp']]);
    assert.equal(show.code, 0, show.stderr);
    assert.deepEqual(show.lines[0], created.lines[0]);

    const suspended = await runCli(['tenants', 'suspend', tenant.id, '--json'], p.url);
    assert.equal(suspended.code, 0, suspended.stderr);
    assert.equal((suspended.lines[0] as { status: string }).status, 'suspended');
    const [row] = await p.admin.query<{ status: string }>('select status from tenantry.tenants where id = $1', [tenant.id]);
    assert.equal(row?.status, 'suspended');

    const resumed = await runCli(['tenants', 'resume', 'cli-corp', '--json'], p.url);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal((resumed.lines[0] as { status: string }).status, 'active');

    const missing = await runCli(['tenants', 'show', 'no-such-tenant', '--json'], p.url);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no tenant "no-such-tenant"/);
  });
});
