/**
 * The `tenantry` command as a table of commands: `--help` is generated from each command's options,
 * every command refuses what it does not know with exit status 2, and the tenant commands that only
 * read or change catalog rows (list, show, suspend, resume) run no DDL — they work as a role that
 * cannot create anything. The migrate and create flows are covered by test/migrate.test.ts and
 * test/create-resume.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { commands, runCli as runCliInProcess, type TenantInit } from '../src/cli/run-cli.js';
import { optionsOf } from '../src/cli/command.js';
import { DatabaseNotPreparedError } from '../src/data/bootstrap.js';
import { createPool, withCredentials } from '../src/data/driver/index.js';
import { Tenantry } from '../src/tenantry.js';
import { createPlatform, runCli, type Platform } from './fixtures/platform.js';
import { createTestDatabase, migrationsDir, serverUrl, startTestTenantry } from './helpers.js';

const init: TenantInit<null> = {
  options: { 'first-user': { type: 'string', description: 'an application flag' } },
  parse: () => null,
  run: async () => {},
};

/** Runs the CLI in this process (no database is touched by help and usage errors). */
async function inProcess(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => { stdout += d.toString(); });
  err.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await runCliInProcess(argv, { migrationsDir, tenantInit: init, stdout: out, stderr: err, env: {} });
  return { code, stdout, stderr };
}

describe('tenantry CLI: the command table', () => {
  it('--help of every command is generated from its options', async () => {
    const main = await inProcess(['--help']);
    assert.equal(main.code, 0);
    const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    for (const c of commands) assert.match(main.stdout, new RegExp(`\\n  ${escape(c.name)}( \\S+)? +${escape(c.summary)}\\n`), c.name);
    for (const c of commands) {
      const help = await inProcess([...c.name.split(' '), '--help']);
      assert.equal(help.code, 0, c.name);
      assert.ok(help.stdout.startsWith(`Usage: tenantry ${c.name}`), help.stdout);
      for (const [name, o] of Object.entries(optionsOf(c, init))) {
        if (o.hidden) continue;
        const shown = o.type === 'string' ? `--${name} ${o.arg ?? 'VALUE'}` : `--${name}`;
        assert.ok(help.stdout.includes(shown), `${c.name} --help shows ${shown}`);
        assert.ok(help.stdout.replace(/\s+/g, ' ').includes(o.description), `${c.name} --help describes --${name}`);
      }
    }
    // The application's flags join `tenants create` only.
    assert.match((await inProcess(['tenants', 'create', '--help'])).stdout, /--first-user VALUE +an application flag/);
    assert.doesNotMatch((await inProcess(['tenants', 'list', '--help'])).stdout, /first-user/);
    const group = await inProcess(['tenants', '--help']);
    assert.equal(group.code, 0);
    assert.match(group.stdout, /^Usage: tenantry tenants <list\|create\|show\|suspend\|resume\|limits>/);
    assert.match(group.stdout, /\n {2}list \[--limit N\]\n/);
    assert.match(group.stdout, /\n {2}show ID\|SLUG\n/);
  });

  it('usage errors exit 2 without touching a database', async () => {
    const cases: [string[], RegExp][] = [
      [[], /Usage: tenantry <command>/],
      [['tenants'], /Usage: tenantry tenants/],
      [['tenants', 'frobnicate'], /unknown tenants command "frobnicate"/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['check', '--nope'], /nope/],
      [['tenants', 'list', '--slug', 'x'], /slug/],
      [['tenants', 'list', '--limit', '0'], /--limit must be an integer ≥ 1/],
      [['tenants', 'create', '--slug', 'x'], /tenants create needs --slug and --name/],
      [['tenants', 'create', '--slug', 'x', '--name', 'X', '--isolation', 'cloud'], /--isolation must be pooled, schema or database/],
      [['migrate', '--canary', 'some'], /--canary must be an integer ≥ 0/],
    ];
    for (const [argv, message] of cases) {
      const r = await inProcess(argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stdout + r.stderr, message, argv.join(' '));
    }
  });
});

describe('tenantry CLI: tenant commands run no DDL', () => {
  let p: Platform;
  const reader = `cli_reader_${randomBytes(4).toString('hex')}`;
  const readerPassword = `reader-${randomBytes(8).toString('hex')}`;
  let readerUrl: string;

  before(async () => {
    p = await createPlatform(['pooled'], 'cliddl');
    // Every DDL command run in this database from now on, by anyone, is logged.
    await p.admin.execute(`
      create table public.ddl_log (tag text not null, who text not null);
      create function public.log_ddl() returns event_trigger language plpgsql security definer set search_path = pg_catalog
        as $$ begin insert into public.ddl_log (tag, who) values (tg_tag, session_user); end $$;
      create event trigger tenantry_test_log_ddl on ddl_command_start execute function public.log_ddl();`);
    // A login role that may connect and nothing else: no CREATE anywhere, no catalog rights.
    const su = createPool(serverUrl(), { max: 1 });
    try {
      await su.query(`create role ${reader} login password '${readerPassword}' nosuperuser nocreatedb nocreaterole`);
    } finally {
      await su.end();
    }
    readerUrl = withCredentials(p.url, reader, readerPassword);
  });

  after(async () => {
    await p?.admin.execute('drop event trigger if exists tenantry_test_log_ddl').catch(() => {});
    await p?.close();
    const su = createPool(serverUrl(), { max: 1 });
    await su.query(`drop role if exists ${reader}`).catch(() => {});
    await su.end();
  });

  const ddlLogged = async () => (await p.admin.query<{ tag: string }>('select tag from public.ddl_log')).map((r) => r.tag);
  const clearLog = () => p.admin.query('truncate public.ddl_log');

  it('list, show, suspend and resume issue no DDL statement (and a full start does: the log works)', async () => {
    const slug = p.tenants[0]!.slug;
    await clearLog();
    for (const args of [['tenants', 'list', '--json'], ['tenants', 'show', slug, '--json'], ['tenants', 'suspend', slug, '--json'], ['tenants', 'resume', slug, '--json']]) {
      const r = await runCli(args, p.url);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.deepEqual(await ddlLogged(), [], 'no DDL from the tenant commands');
    const [row] = await p.admin.query<{ status: string }>('select status from tenantry.tenants where slug = $1', [slug]);
    assert.equal(row?.status, 'active', 'suspended and resumed');
    // The same toolkit started as before (bootstrap and migrations) runs DDL: what the commands avoid.
    const full = await startTestTenantry(p.url);
    await full.close();
    const tags = await ddlLogged();
    assert.ok(tags.includes('CREATE SCHEMA') && tags.includes('CREATE FUNCTION'), `a full start logs DDL: ${[...new Set(tags)].join(', ')}`);
  });

  it('tenants limits shows and changes a tenant\'s limits (no DDL); a bad --set is refused and changes nothing', async () => {
    const slug = p.tenants[0]!.slug;
    await clearLog();
    const set = await runCli(['tenants', 'limits', slug, '--set', 'requests_per_second=20', '--set', 'quotas.users=3', '--json'], p.url);
    assert.equal(set.code, 0, set.stderr);
    const view = set.lines[0] as unknown as { limits: { requests_per_second: number; quotas: Record<string, number | null> }; sources: { requests_per_second: string; burst: string }; overrides: object };
    assert.equal(view.limits.requests_per_second, 20);
    assert.equal(view.sources.requests_per_second, 'tenant');
    assert.equal(view.sources.burst, 'plan');
    assert.equal(view.limits.quotas.users, 3, 'the application\'s quotas are known to its CLI');
    assert.deepEqual(view.overrides, { requests_per_second: 20, quotas: { users: 3 } });
    const text = await runCli(['tenants', 'limits', slug], p.url);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /requests_per_second +20 +tenant/);
    for (const bad of [['--set', 'burst=abc'], ['--set', 'burst'], ['--set', 'quotas.seats=1'], ['--set', 'burst=0']]) {
      const r = await runCli(['tenants', 'limits', slug, ...bad], p.url);
      assert.notEqual(r.code, 0, bad.join(' '));
    }
    const reset = await runCli(['tenants', 'limits', slug, '--set', 'requests_per_second=null', '--set', 'quotas.users=null', '--json'], p.url);
    assert.equal(reset.code, 0, reset.stderr);
    assert.deepEqual((reset.lines[0] as unknown as { overrides: object }).overrides, {});
    assert.deepEqual(await ddlLogged(), [], 'no DDL from tenants limits');
  });

  it('tenants list works as a role that cannot create anything; migrate, which needs DDL, does not', async () => {
    const [rights] = await p.admin.query<{ create_db: boolean; create_schema: boolean }>(
      `select has_database_privilege($1, current_database(), 'CREATE') as create_db, has_schema_privilege($1, 'app', 'CREATE') as create_schema`, [reader]);
    assert.deepEqual(rights, { create_db: false, create_schema: false });
    const list = await runCli(['tenants', 'list', '--json'], readerUrl);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual((list.lines[0] as unknown as { slug: string }[]).map((t) => t.slug), [p.tenants[0]!.slug]);
    const show = await runCli(['tenants', 'show', p.tenants[0]!.id, '--json'], readerUrl);
    assert.equal(show.code, 0, show.stderr);
    // Proof that the role cannot run the old path: a full start (bootstrap) is refused.
    await assert.rejects(startTestTenantry(readerUrl), /permission denied|must be superuser|must have CREATEROLE|not permitted/i);
    const migrate = await runCli(['migrate', '--json'], readerUrl);
    assert.equal(migrate.code, 1, migrate.stdout);
  });

  it('a database tenantry has not prepared: start without bootstrap refuses it; tenants list prepares it as before', async () => {
    const db = await createTestDatabase('fresh');
    try {
      await assert.rejects(Tenantry.start({ databaseUrl: db.url, migrationsDir, bootstrap: false, migrate: false }), DatabaseNotPreparedError);
      const list = await runCli(['tenants', 'list', '--json'], db.url);
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(list.lines[0], []);
    } finally {
      await db.drop();
    }
  });
});
