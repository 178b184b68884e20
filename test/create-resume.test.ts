/**
 * Creating a tenant is finished by running it again. A creation cut off half-way (an error in
 * `init`, or the process SIGKILLed while the placement is being provisioned) leaves the tenant
 * `provisioning`: it serves nothing (404), and the same request again (admin API or CLI) resumes it
 * to an active tenant with the same id, its placement complete and its owner created once.
 * Concurrent creations of one slug take turns: exactly one wins, the other gets 409.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { v7 as uuidv7 } from 'uuid';
import { isTenantryError, withPlatformScope, type Isolation } from '../src/index.js';
import { listTargets } from '../src/migrate/targets.js';
import { tenantDatabase } from '../src/core/tenant-ids.js';
import { createPool, ident, withDatabase, type Sql } from '../src/data/driver/index.js';
import { ADMIN_TOKEN, startTestStack, type TestStack } from './helpers.js';
import { fixtures, runCli } from './fixtures/platform.js';

const isolations = ['pooled', 'schema', 'database'] as const satisfies readonly Isolation[];
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

let stack: TestStack;
before(async () => { stack = await startTestStack(); });
after(async () => { await stack?.close(); });

async function status(slug: string): Promise<{ id: string; status: string } | undefined> {
  const [row] = await stack.admin.query<{ id: string; status: string }>('select id::text, status from tenantry.tenants where slug = $1', [slug]);
  return row;
}

/** Ledger versions of the tenant's target (its schema, its database, or the shared schema). */
async function ledger(id: string, isolation: Isolation): Promise<number[]> {
  const target = (await listTargets(stack.admin, stack.databaseUrl)).find((t) =>
    t.isolation === isolation && (isolation === 'pooled' || t.tenantId === id));
  assert.ok(target, `no migration target for ${isolation} tenant ${id}`);
  const sql: Sql = target.databaseUrl === stack.databaseUrl ? stack.admin : createPool(target.databaseUrl, { max: 1 });
  try {
    return (await sql.query<{ version: number }>(`select version from ${ident(target.schema)}.tenantry_migrations order by version`)).map((r) => r.version);
  } finally {
    if (sql !== stack.admin) await sql.end();
  }
}

/** Owner rows of the tenant where its placement keeps them (superuser: bypasses RLS). */
async function owners(id: string, email: string): Promise<number> {
  const store = await stack.storeOf(id);
  const [row] = await store.sql.query<{ n: number }>(`select count(*)::int as n from ${store.table('users')} where tenant_id = $1 and email = $2`, [id, email]);
  return row!.n;
}

async function login(slug: string, email: string, password: string): Promise<number> {
  const res = await stack.app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': slug }, payload: { email, password } });
  return res.statusCode;
}

describe('a creation cut off after provisioning is resumed by creating it again', () => {
  for (const isolation of isolations) {
    it(`${isolation}: provisioning → 404 while cut off; the admin API resumes it to active, same id, one owner`, async () => {
      const slug = `resume-${isolation}`;
      const id = uuidv7();
      await assert.rejects(withPlatformScope({ actor: 'test', reason: 'crash' }, () => stack.tenantry.createTenant({ id, slug, name: slug, isolation }, async () => {
        await stack.tenantry.db.query("insert into tickets (id, title) values ($1, 'half-made')", [uuidv7()]);
        throw new Error('simulated crash after provisioning');
      })), /simulated crash/);
      assert.deepEqual(await status(slug), { id, status: 'provisioning' });
      // A tenant that is not ready serves nothing.
      const early = await stack.app.inject({ method: 'GET', url: '/api/v1/tickets', headers: { 'x-tenant': slug } });
      assert.equal(early.statusCode, 404, early.body);
      assert.equal(early.json().code, 'tenant_not_found');

      // Another placement under the same slug is not a resume: the slug is taken.
      const other = isolations.find((i) => i !== isolation)!;
      const clash = await stack.app.inject({
        method: 'POST', url: '/admin/api/tenants', headers: admin,
        payload: { slug, name: slug, isolation: other, owner: { email: `o@${slug}.test`, name: 'O', password: 'correct horse battery' } },
      });
      assert.equal(clash.statusCode, 409, clash.body);
      assert.equal(clash.json().code, 'tenant_slug_taken');
      assert.equal((await status(slug))?.status, 'provisioning');

      const owner = { email: `owner@${slug}.test`, name: 'Owner', password: 'correct horse battery staple' };
      for (let attempt = 1; attempt <= 2; attempt++) {
        const res = await stack.app.inject({ method: 'POST', url: '/admin/api/tenants', headers: admin, payload: { slug, name: slug, isolation, owner } });
        if (attempt === 2) {
          // Once active, the slug is simply taken.
          assert.equal(res.statusCode, 409, res.body);
          assert.equal(res.json().code, 'tenant_slug_taken');
          break;
        }
        assert.equal(res.statusCode, 201, res.body);
        const body = res.json();
        assert.equal(body.id, id);
        assert.equal(body.status, 'active');
        assert.equal(body.isolation, isolation);
        // Timestamps as everywhere else in the API (tickets, users): ISO 8601, UTC, milliseconds.
        for (const k of ['created_at', 'updated_at']) assert.match(body[k], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, k);
      }
      assert.deepEqual(await status(slug), { id, status: 'active' });
      assert.equal(await owners(id, owner.email), 1);
      assert.equal(await login(slug, owner.email, owner.password), 200);
      // The half-made ticket committed before the crash is the tenant's, and only the tenant's.
      const token = (await stack.app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': slug }, payload: { email: owner.email, password: owner.password } })).json().access_token;
      const list = await stack.app.inject({ method: 'GET', url: '/api/v1/tickets', headers: { 'x-tenant': slug, authorization: `Bearer ${token}` } });
      assert.equal(list.statusCode, 200, list.body);
      assert.deepEqual(list.json().data.map((t: { title: string }) => t.title), ['half-made']);
      const [audit] = await stack.admin.query<{ n: number }>(
        "select count(*)::int as n from tenantry.audit_log where tenant_id = $1 and action = 'tenant.created' and (detail->>'resumed')::boolean", [id]);
      assert.equal(audit!.n, 1);
    });
  }
});

describe('concurrent creations of one slug', () => {
  for (const isolation of ['schema', 'database'] as const) {
    it(`${isolation}: six at once, exactly one creates it, the others get 409 tenant_slug_taken, init ran once`, async () => {
      const slug = `race-${isolation}`;
      let inits = 0;
      const attempts = await Promise.allSettled(Array.from({ length: 6 }, () =>
        withPlatformScope({ actor: 'test', reason: 'race' }, () => stack.tenantry.createTenant({ slug, name: slug, isolation }, async () => {
          inits++;
          await sleep(50);
        }))));
      const won = attempts.filter((a) => a.status === 'fulfilled');
      const lost = attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
      assert.equal(won.length, 1, JSON.stringify(lost.map((l) => String(l.reason))));
      for (const l of lost) assert.ok(isTenantryError(l.reason) && l.reason.code === 'tenant_slug_taken', String(l.reason));
      assert.equal(inits, 1);
      const [n] = await stack.admin.query<{ n: number }>('select count(*)::int as n from tenantry.tenants where slug = $1', [slug]);
      assert.equal(n!.n, 1);
      assert.equal((await status(slug))?.status, 'active');
    });
  }
});

describe('tenantry tenants create, SIGKILLed while provisioning, then run again', () => {
  // The app's migrations, then one that sleeps: provisioning a tenant takes long enough to be killed.
  const PAUSE = fixtures('migrations-pause');

  for (const isolation of ['schema', 'database'] as const) {
    it(`${isolation}: the second run finishes the same tenant (same id, whole ledger, one owner)`, async () => {
      const slug = `killed-${isolation}`;
      const args = ['tenants', 'create', '--slug', slug, '--name', slug, '--isolation', isolation, '--migrations', PAUSE,
        '--owner-email', `owner@${slug}.test`, '--owner-name', 'Owner', '--owner-password', 'correct horse battery staple', '--json'];
      const probe = createPool(withDatabase(stack.databaseUrl, 'postgres'), { max: 1 });
      let id: string | undefined;
      let killedWhileProvisioning = false;
      try {
        const watch = (async () => {
          // Kill once the tenant exists in the catalog and its placement is being migrated (the
          // pause migration is running in its schema or its database).
          for (let i = 0; i < 600; i++) {
            id ??= (await status(slug))?.id;
            if (id) {
              const db = isolation === 'database' ? tenantDatabase(id) : new URL(stack.databaseUrl).pathname.slice(1);
              const [s] = await probe.query<{ n: number }>(
                "select count(*)::int as n from pg_stat_activity where datname = $1 and state = 'active' and query like '%pg_sleep(1.5)%'", [db]);
              if (s!.n > 0) return true;
            }
            await sleep(25);
          }
          return false;
        })();
        const first = runCli(args, stack.databaseUrl, undefined, 60_000);
        killedWhileProvisioning = await watch;
        assert.ok(killedWhileProvisioning, 'provisioning was never seen running');
        // runCli kills on its own timeout only; kill it now through its pid-less handle: the
        // child is found by its command line.
        await killCli(slug);
        const run1 = await first;
        assert.equal(run1.signal, 'SIGKILL', `${run1.code} ${run1.stdout} ${run1.stderr}`);
      } finally {
        await probe.end();
      }
      assert.ok(id);
      assert.deepEqual(await status(slug), { id, status: 'provisioning' });
      // The killed process's sessions end (its lock and its migration transaction go with them).
      for (const deadline = Date.now() + 15_000; ;) {
        const [s] = await stack.admin.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where application_name in ('tenantry-locks', 'tenantry-admin') and query like '%pg_sleep(1.5)%' and state = 'active'");
        const [l] = await stack.admin.query<{ n: number }>("select count(*)::int as n from pg_locks where locktype = 'advisory' and granted and pid in (select pid from pg_stat_activity where application_name = 'tenantry-locks')");
        if (s!.n === 0 && l!.n === 0) break;
        assert.ok(Date.now() < deadline, 'the killed run still has sessions');
        await sleep(50);
      }

      const run2 = await runCli(args, stack.databaseUrl, undefined, 60_000);
      assert.equal(run2.code, 0, run2.stdout + run2.stderr);
      const row = run2.lines[0] as { id: string; status: string; isolation: string };
      assert.equal(row.id, id);
      assert.equal(row.status, 'active');
      assert.equal(row.isolation, isolation);
      assert.deepEqual(await ledger(id, isolation), [1, 2, 3]);
      assert.equal(await owners(id, `owner@${slug}.test`), 1);
      assert.equal(await login(slug, `owner@${slug}.test`, 'correct horse battery staple'), 200);
    });
  }
});

/** SIGKILLs the `tenantry tenants create --slug <slug>` child process. */
async function killCli(slug: string): Promise<void> {
  const { readdir, readFile } = await import('node:fs/promises');
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('bin/tenantry.js') && cmd.includes(`\0${slug}\0`)) process.kill(Number(pid), 'SIGKILL');
  }
}
