/**
 * An audit that cannot be fooled: each way of weakening isolation that a literal-minded audit
 * misses is made by hand (as superuser) on every placement at once — the pooled schema, a schema
 * tenant, a database tenant — and `auditAll` must go red on each target, with the structural
 * finding (policy proof, keys) and, where the weakening changes what a tenant can do, the
 * behavioural one (the probe writes and reads rows of two synthetic tenants as the runtime role,
 * rolled back). Then everything is restored and the audit is clean again.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { runWithTenant, type Tenant } from '../src/index.js';
import { auditAll, type AuditReport } from '../src/migrate/check.js';
import type { Finding } from '../src/migrate/audit.js';
import type { MigrationTarget } from '../src/migrate/targets.js';
import { ident } from '../src/data/driver/index.js';
import { auditHelpers } from './audit-helpers.js';
import { createPlatform, runCli, type Platform } from './fixtures/platform.js';

const POLICY = 'tenant_id = tenantry_rls.current_tenant_id()';

describe('an audit that cannot be fooled', () => {
  let p: Platform;
  let targets: MigrationTarget[];
  let pooled: MigrationTarget;
  let schema: MigrationTarget;
  let database: MigrationTarget;
  let acme: Tenant;
  let globex: Tenant;
  let globexTicket: string;

  const { audit, show, on, assertClean, breakAndRestore: weakened } = auditHelpers(() => p);
  /** Runs the same DDL on the pooled schema, the schema tenant and the database tenant. */
  const everywhere = async (ddl: (s: string, t: MigrationTarget) => string) => {
    for (const t of targets) await on(t, (sql, s) => sql.execute(ddl(s, t)));
  };
  const of = (r: AuditReport, target: MigrationTarget, check: string, object?: string | RegExp): Finding[] =>
    r.findings.filter((f) => f.target === target.id && f.check === check &&
      (object === undefined || (typeof object === 'string' ? f.object === object : object.test(f.object))));
  const has = (r: AuditReport, target: MigrationTarget, check: string, object?: string | RegExp, message?: RegExp) => {
    const found = of(r, target, check, object).filter((f) => !message || message.test(f.message));
    assert.ok(found.length, `${target.id}: expected ${check} ${object ?? ''} ${message ?? ''} in ${show(r)}`);
  };
  const hasNo = (r: AuditReport, target: MigrationTarget, check: string | RegExp) => {
    const found = r.findings.filter((f) => f.target === target.id && (typeof check === 'string' ? f.check === check : check.test(f.check)));
    assert.deepEqual(found, [], `${target.id}: unexpected ${check}`);
  };
  const runtimeRole = (t: MigrationTarget) => t.runtimeRole;

  /** Every policy of tickets dropped, the standard one created again. */
  const restoreTicketPolicies = () => everywhere((s) => `
    do $$ declare r record; begin
      for r in select polname from pg_policy where polrelid = '${s}.tickets'::regclass loop
        execute format('drop policy %I on ${s}.tickets', r.polname);
      end loop;
    end $$;
    create policy tenant_isolation on ${s}.tickets using (${POLICY}) with check (${POLICY});`);

  before(async () => {
    p = await createPlatform(['schema', 'database', 'pooled', 'pooled'], 'fool');
    targets = await p.targets();
    [pooled, schema, database] = targets as [MigrationTarget, MigrationTarget, MigrationTarget];
    assert.deepEqual(targets.map((t) => t.isolation), ['pooled', 'schema', 'database']);
    [acme, globex] = p.tenants.filter((t) => t.isolation === 'pooled') as [Tenant, Tenant];
    // Each pooled tenant writes a ticket through the data plane.
    globexTicket = randomUUID();
    await runWithTenant(acme, () => p.tenantry.db.query('insert into tickets (id, title) values ($1, $2)', [randomUUID(), 'acme ticket']));
    await runWithTenant(globex, () => p.tenantry.db.query('insert into tickets (id, title) values ($1, $2)', [globexTicket, 'globex secret']));
  });
  after(async () => { await p?.close(); });

  it('a fresh platform is clean, structurally and behaviourally, in every placement', async () => {
    await assertClean('start');
    const structural = await auditAll(p.admin, p.url, { probe: false });
    assert.deepEqual(structural.findings, []);
  });

  it('the outside finding: tickets USING (tenant_id IS NOT NULL) leaks through the data plane, and the audit says so', async () => {
    const readGlobex = () => runWithTenant(acme, () => p.tenantry.db.query<{ title: string }>('select title from tickets where id = $1', [globexTicket]));
    assert.deepEqual(await readGlobex(), [], 'intact: acme cannot read globex\'s ticket');
    await weakened('tenant_id is not null',
      () => everywhere((s) => `alter policy tenant_isolation on ${s}.tickets using (tenant_id is not null)`),
      restoreTicketPolicies,
      async (r) => {
        // The leak is real: acme reads globex's ticket through the toolkit's own data plane.
        assert.deepEqual(await readGlobex(), [{ title: 'globex secret' }]);
        for (const t of targets) {
          has(r, t, 'policy_using', 'tickets.tenant_isolation', /tenant_id IS NOT NULL/);
          hasNo(r, t, 'policy_with_check');
          has(r, t, 'probe_read', 'tickets', /sees \d+ row\(s\) of other tenants/);
          has(r, t, 'probe_update', 'tickets', /reached .* row \(refused only by WITH CHECK\)/);
          has(r, t, 'probe_delete', 'tickets', /deleted 1 row\(s\) of synthetic tenant/);
          // The other tables are intact: nothing is reported for them.
          assert.deepEqual(r.findings.filter((f) => f.target === t.id && !f.object.startsWith('tickets')), [], show(r));
        }
      });
    assert.deepEqual(await readGlobex(), [], 'restored: the leak is closed');
  });

  it('an extra permissive USING (true) policy, OR-ed in', async () => {
    await weakened('extra permissive',
      () => everywhere((s) => `create policy leak on ${s}.tickets for select using (true)`),
      restoreTicketPolicies,
      (r) => {
        for (const t of targets) {
          has(r, t, 'policy_using', 'tickets.leak', /OR-ed/);
          has(r, t, 'probe_read', 'tickets');
          assert.equal(of(r, t, 'policy_using', 'tickets.tenant_isolation').length, 0, show(r));
        }
      });
  });

  it('a permissive USING (true) policy for a role that cannot reach the table yet: structural only', async () => {
    await weakened('dormant policy',
      () => everywhere((s) => `create policy leak on ${s}.tickets to tenantry_platform using (true) with check (true)`),
      restoreTicketPolicies,
      (r) => {
        for (const t of targets) {
          has(r, t, 'policy_using', 'tickets.leak', /for tenantry_platform/);
          has(r, t, 'policy_with_check', 'tickets.leak');
          hasNo(r, t, /^probe_/);
        }
      });
  });

  it('the tenant policy for another role only: the runtime role has none', async () => {
    await weakened('policy for another role',
      () => everywhere((s) => `drop policy tenant_isolation on ${s}.tickets;
        create policy tenant_isolation on ${s}.tickets to tenantry_platform using (${POLICY}) with check (${POLICY})`),
      restoreTicketPolicies,
      (r) => {
        for (const t of targets) {
          for (const cmd of ['SELECT', 'INSERT', 'UPDATE', 'DELETE']) {
            has(r, t, 'policy', 'tickets', new RegExp(`no permissive ${cmd} policy applies to .*${runtimeRole(t)}`));
          }
          hasNo(r, t, 'policy_using');
          // Behaviour: the tenant can no longer use its own rows (RLS refuses everything).
          has(r, t, 'probe_read', 'tickets', /does not see its own row/);
          has(r, t, 'probe_insert', 'tickets', /could not insert its own row/);
          has(r, t, 'probe_update', 'tickets', /changed nothing/);
          has(r, t, 'probe_delete', 'tickets', /deleted nothing/);
        }
      });
  });

  it('a missing command: FOR SELECT only while the role can INSERT, UPDATE and DELETE', async () => {
    await weakened('select only',
      () => everywhere((s) => `drop policy tenant_isolation on ${s}.tickets;
        create policy tenant_isolation on ${s}.tickets for select using (${POLICY})`),
      restoreTicketPolicies,
      (r) => {
        for (const t of targets) {
          for (const cmd of ['INSERT', 'UPDATE', 'DELETE']) has(r, t, 'policy', 'tickets', new RegExp(`no permissive ${cmd} policy`));
          assert.equal(of(r, t, 'policy', 'tickets').filter((f) => /SELECT/.test(f.message)).length, 0, show(r));
          has(r, t, 'probe_insert', 'tickets', /could not insert its own row/);
          has(r, t, 'probe_update', 'tickets', /changed nothing/);
          has(r, t, 'probe_delete', 'tickets', /deleted nothing/);
          hasNo(r, t, 'probe_read');
        }
      });
  });

  it('a permissive UPDATE or DELETE policy USING (true): invisible to SELECT, caught by writes without WHERE', async () => {
    // A WHERE clause that reads columns adds the SELECT policies, so `update ... where` cannot
    // reach the other tenant's row here — but `update tickets set ...` with no WHERE can.
    await weakened('update/delete using true',
      () => everywhere((s) => `create policy leak_update on ${s}.tickets for update using (true);
        create policy leak_delete on ${s}.users for delete using (true)`),
      () => everywhere((s) => `drop policy if exists leak_update on ${s}.tickets; drop policy if exists leak_delete on ${s}.users`),
      (r) => {
        for (const t of targets) {
          has(r, t, 'policy_using', 'tickets.leak_update');
          has(r, t, 'policy_using', 'users.leak_delete');
          hasNo(r, t, 'probe_read');
          has(r, t, 'probe_update', 'tickets', /update without WHERE (reached|changed) synthetic tenant .'s row/);
          has(r, t, 'probe_delete', 'users', /delete without WHERE deleted synthetic tenant .'s row/);
        }
      });
  });

  it('a helper that ignores the context passes the structural proof; only the probe can tell', async () => {
    const defs = new Map<string, string>();
    await weakened('constant helper',
      async () => {
        for (const t of [pooled, database]) {
          const [def] = await on(t, (sql) => sql.query<{ def: string }>(`select pg_get_functiondef('tenantry_rls.current_tenant_id()'::regprocedure) as def`));
          defs.set(t.databaseUrl, def!.def);
          await on(t, (sql) => sql.execute(`create or replace function tenantry_rls.current_tenant_id() returns uuid
            language sql stable as $fn$ select '00000000-0000-4000-8000-000000000000'::uuid $fn$`));
        }
      },
      async () => { for (const t of [pooled, database]) await on(t, (sql) => sql.execute(defs.get(t.databaseUrl)!)); },
      async (r) => {
        for (const t of targets) {
          assert.deepEqual(r.findings.filter((f) => f.target === t.id && !f.check.startsWith('probe_')), [], show(r));
          has(r, t, 'probe_read', 'users', /does not see its own row/);
          has(r, t, 'probe_insert', 'tickets', /could not insert its own row/);
        }
        // `tenantry check --no-probe` runs the structural part only, which this passes: exit 0.
        const structural = await runCli(['check', '--no-probe', '--json'], p.url);
        assert.equal(structural.code, 0, structural.stderr + structural.stdout);
        assert.deepEqual((structural.lines[0] as unknown as AuditReport).findings, []);
      });
  });

  it('a restrictive-only setup: no permissive policy at all', async () => {
    await weakened('restrictive only',
      () => everywhere((s) => `drop policy tenant_isolation on ${s}.tickets;
        create policy tenant_isolation on ${s}.tickets as restrictive using (${POLICY}) with check (${POLICY})`),
      restoreTicketPolicies,
      (r) => {
        for (const t of targets) {
          has(r, t, 'policy', 'tickets', /restrictive policies only/);
          has(r, t, 'probe_read', 'tickets', /does not see its own row/);
        }
      });
  });

  it('WITH CHECK dropped: structural only (PostgreSQL then checks new rows with USING)', async () => {
    await weakened('no with check',
      () => everywhere((s) => `drop policy tenant_isolation on ${s}.tickets;
        create policy tenant_isolation on ${s}.tickets using (${POLICY})`),
      restoreTicketPolicies,
      (r) => {
        for (const t of targets) {
          has(r, t, 'policy_with_check', 'tickets.tenant_isolation', /no WITH CHECK/);
          hasNo(r, t, /^probe_/);
        }
      });
  });

  it('WITH CHECK (tenant_id IS NOT NULL): rows of another tenant can be written', async () => {
    await weakened('with check not null',
      () => everywhere((s) => `alter policy tenant_isolation on ${s}.tickets with check (tenant_id is not null)`),
      restoreTicketPolicies,
      (r) => {
        for (const t of targets) {
          has(r, t, 'policy_with_check', 'tickets.tenant_isolation', /rows of other tenants can be written/);
          hasNo(r, t, 'policy_using');
          has(r, t, 'probe_insert', 'tickets', /inserted a row of synthetic tenant/);
          has(r, t, 'probe_update', 'tickets', /moved its own row|moving .* not refused by row level security/);
          hasNo(r, t, 'probe_read');
        }
      });
  });

  it('USING (true) in place of the tenant policy, and a look-alike helper in another schema', async () => {
    await weakened('using true',
      () => everywhere((s) => `alter policy tenant_isolation on ${s}.tickets using (true)`),
      restoreTicketPolicies,
      (r) => { for (const t of targets) { has(r, t, 'policy_using', 'tickets.tenant_isolation'); has(r, t, 'probe_read', 'tickets'); } });
    // public.current_tenant_id() prints as a bare `current_tenant_id()` (public is on the audit's
    // search path), like the real helper would: the policy's dependency (pg_depend) tells them apart.
    await weakened('look-alike helper',
      () => everywhere((s) => `create or replace function public.current_tenant_id() returns uuid language sql stable as 'select null::uuid';
        alter policy tenant_isolation on ${s}.tickets using (tenant_id = public.current_tenant_id())`),
      async () => {
        await restoreTicketPolicies();
        await everywhere(() => 'drop function if exists public.current_tenant_id()');
      },
      (r) => { for (const t of targets) has(r, t, 'policy_using', 'tickets.tenant_isolation'); });
  });

  it('a primary key that does not lead with tenant_id', async () => {
    await weakened('pk order',
      () => everywhere((s) => `alter table ${s}.comments drop constraint comments_pkey;
        alter table ${s}.comments add constraint comments_pkey primary key (id, tenant_id)`),
      () => everywhere((s) => `alter table ${s}.comments drop constraint if exists comments_pkey;
        alter table ${s}.comments add constraint comments_pkey primary key (tenant_id, id)`),
      (r) => {
        for (const t of targets) {
          has(r, t, 'tenant_pk', 'comments.comments_pkey', /does not lead with tenant_id/);
          hasNo(r, t, /^probe_/);
        }
      });
  });

  it('a foreign key without tenant_id: structural, and the probe points a row at the other tenant\'s', async () => {
    const fks = new Map<string, { name: string; def: string }>();
    await weakened('fk without tenant_id',
      async () => {
        for (const t of targets) {
          const [fk] = await on(t, (sql, s) => sql.query<{ name: string; def: string }>(`
            select conname as name, pg_get_constraintdef(oid) as def from pg_constraint
            where conrelid = '${s}.comments'::regclass and confrelid = '${s}.users'::regclass`));
          fks.set(t.id, fk!);
        }
        await everywhere((s, t) => `alter table ${s}.comments drop constraint ${ident(fks.get(t.id)!.name)};
          create unique index users_id_key on ${s}.users (id);
          alter table ${s}.comments add constraint comments_author_fkey foreign key (author_id) references ${s}.users (id)`);
      },
      () => everywhere((s, t) => `alter table ${s}.comments drop constraint if exists comments_author_fkey;
        drop index if exists ${s}.users_id_key;
        alter table ${s}.comments add constraint ${ident(fks.get(t.id)!.name)} ${fks.get(t.id)!.def}`),
      (r) => {
        for (const t of targets) {
          has(r, t, 'tenant_fk', 'comments.comments_author_fkey', /without tenant_id/);
          has(r, t, 'tenant_unique', 'users.users_id_key');
          has(r, t, 'probe_fk', 'comments.comments_author_fkey', /pointing at synthetic tenant .* row of users/);
        }
      });
    await weakened('fk not led by tenant_id',
      () => everywhere((s) => `create unique index users_id_tenant_key on ${s}.users (id, tenant_id);
        alter table ${s}.comments add constraint comments_author2_fkey foreign key (author_id, tenant_id) references ${s}.users (id, tenant_id)`),
      () => everywhere((s) => `alter table ${s}.comments drop constraint if exists comments_author2_fkey;
        drop index if exists ${s}.users_id_tenant_key`),
      (r) => {
        for (const t of targets) {
          has(r, t, 'tenant_fk', 'comments.comments_author2_fkey', /does not lead with tenant_id/);
          hasNo(r, t, 'tenant_unique');
          hasNo(r, t, /^probe_/);
        }
      });
  });

  it('a role granted the table with BYPASSRLS, or TRUNCATE for the runtime role', async () => {
    await weakened('bypass reacher',
      async () => {
        await p.admin.execute('create role fool_reporting nologin bypassrls');
        await everywhere((s) => `grant usage on schema ${s} to fool_reporting; grant select on ${s}.users to fool_reporting;
          grant truncate on ${s}.comments to ${ident(schema.runtimeRole)}, tenantry_app`);
      },
      async () => {
        await everywhere((s) => `revoke all on ${s}.users from fool_reporting; revoke usage on schema ${s} from fool_reporting;
          revoke truncate on ${s}.comments from ${ident(schema.runtimeRole)}, tenantry_app`);
        await p.admin.execute('drop role fool_reporting');
      },
      (r) => {
        for (const t of targets) {
          has(r, t, 'table_access', 'users', /fool_reporting .*BYPASSRLS/);
          has(r, t, 'table_access', 'comments', /TRUNCATE/);
        }
      });
  });

  describe('the search role (tenantry_search): NOLOGIN, BYPASSRLS, SELECT only, owner of functions that restrict themselves', () => {
    const SEARCH = 'search_tickets(text, text, uuid, integer)';
    const control = (r: AuditReport, check: string, message: RegExp) =>
      assert.ok(r.findings.some((f) => f.target === 'database:control' && f.check === check && message.test(f.message)), `database:control: expected ${check} ${message} in ${show(r)}`);

    it('as migrated: search_tickets is SECURITY DEFINER, owned by tenantry_search, executable by the runtime role only', async () => {
      for (const t of targets) {
        const [fn] = await on(t, (sql, s) => sql.query<{ owner: string; definer: boolean; runtime: boolean; public: boolean }>(`
          select pg_get_userbyid(p.proowner) as owner, p.prosecdef as definer,
            has_function_privilege($1, p.oid, 'EXECUTE') as runtime,
            exists (select 1 from aclexplode(p.proacl) x where x.grantee = 0) as public
          from pg_proc p where p.oid = '${s}.${SEARCH}'::regprocedure`, [t.runtimeRole]));
        assert.deepEqual(fn, { owner: 'tenantry_search', definer: true, runtime: true, public: false }, t.id);
      }
    });

    it('that can log in', async () => {
      await weakened('search role login',
        () => p.admin.execute('alter role tenantry_search login'),
        () => p.admin.execute('alter role tenantry_search nologin'),
        (r) => {
          control(r, 'search_role', /can log in/);
          for (const t of targets) has(r, t, 'table_access', 'tickets', /tenantry_search \(the search role: BYPASSRLS\) can log in/);
        });
    });

    it('that can write', async () => {
      await weakened('search role writes',
        () => everywhere((s) => `grant insert, update on ${s}.tickets to tenantry_search`),
        () => everywhere((s) => `revoke insert, update on ${s}.tickets from tenantry_search`),
        (r) => {
          for (const t of targets) has(r, t, 'table_access', 'tickets', /tenantry_search .*can INSERT, UPDATE/);
        });
    });

    it('that can read the catalog, or that a runtime role can become', async () => {
      await weakened('search role reach',
        () => p.admin.execute('grant usage on schema tenantry to tenantry_search; grant select on tenantry.tenants to tenantry_search; grant tenantry_search to tenantry_app'),
        () => p.admin.execute('revoke select on tenantry.tenants from tenantry_search; revoke usage on schema tenantry from tenantry_search; revoke tenantry_search from tenantry_app'),
        (r) => {
          control(r, 'search_role', /holds SELECT on tenantry\.tenants, which is not a tenant table/);
          control(r, 'search_role', /tenantry_app can log in and SET ROLE to it/);
        });
    });

    it('another BYPASSRLS role that can read a tenant table is not accepted as a search role', async () => {
      await weakened('another bypass role',
        async () => {
          await p.admin.execute('create role fool_search nologin bypassrls');
          await everywhere((s) => `grant usage on schema ${s} to fool_search; grant select (tenant_id, id, title) on ${s}.tickets to fool_search`);
        },
        async () => {
          await everywhere((s) => `revoke all on ${s}.tickets from fool_search; revoke usage on schema ${s} from fool_search`);
          await p.admin.execute('drop role fool_search');
        },
        (r) => {
          for (const t of targets) has(r, t, 'table_access', 'tickets', /fool_search .*BYPASSRLS/);
        });
    });

    it('a SECURITY DEFINER function of tenantry_search that does not restrict itself to the current tenant, or that PUBLIC can run', async () => {
      // The leak is real: through it, acme reads globex's ticket id (pooled placement).
      const leak = (s: string, t: MigrationTarget) => `
        create function ${s}.all_ticket_ids() returns setof uuid language sql stable security definer
          set search_path = ${s}, pg_temp as $f$ select id from tickets $f$;
        revoke all on function ${s}.all_ticket_ids() from public;
        grant execute on function ${s}.all_ticket_ids() to ${ident(t.runtimeRole)};
        alter function ${s}.all_ticket_ids() owner to tenantry_search;
        grant execute on function ${s}.${SEARCH} to public;`;
      await weakened('unrestricted search function',
        () => everywhere(leak),
        () => everywhere((s) => `drop function ${s}.all_ticket_ids(); revoke execute on function ${s}.${SEARCH} from public`),
        async (r) => {
          const ids = await runWithTenant(acme, () => p.tenantry.db.query<{ id: string }>('select s.id from all_ticket_ids() as s(id)'));
          assert.ok(ids.some((x) => x.id === globexTicket), 'acme reads globex\'s id through the function');
          for (const t of targets) {
            has(r, t, 'search_function', 'all_ticket_ids()', /does not name tenantry_rls\.current_tenant_id\(\)/);
            has(r, t, 'search_function', /^search_tickets\(/, /PUBLIC can execute/);
          }
        });
    });
  });

  it('a new table of any shape is probed generically; one the probe cannot fill is reported, never passed', async () => {
    // An enum, a CHECK with literals, a domain with a CHECK, a varchar(3), a self-reference and a
    // unique index: the probe fills all of it from the catalog. Only drift is reported.
    const shapes = (s: string, role: string) => `
      create type ${s}.mood as enum ('calm', 'busy');
      create domain ${s}.percent as int check (value between 0 and 100);
      create table ${s}.tasks (
        tenant_id uuid not null default tenantry_rls.current_tenant_id(),
        id bigint generated always as identity,
        code varchar(3) not null,
        kind text not null check (kind in ('bug', 'chore')),
        mood ${s}.mood not null,
        done ${s}.percent not null,
        parent_id bigint,
        primary key (tenant_id, id),
        unique (tenant_id, code),
        foreign key (tenant_id, parent_id) references ${s}.tasks (tenant_id, id)
      );
      alter table ${s}.tasks enable row level security;
      alter table ${s}.tasks force row level security;
      create policy tenant_isolation on ${s}.tasks using (${POLICY}) with check (${POLICY});
      grant select, insert, update, delete on ${s}.tasks to ${ident(role)};`;
    const drop = (s: string) => `drop table if exists ${s}.tasks; drop table if exists ${s}.odd_child; drop table if exists ${s}.odd;
      drop domain if exists ${s}.percent; drop type if exists ${s}.mood; drop type if exists ${s}.pair`;
    try {
      await everywhere((s, t) => shapes(s, t.runtimeRole));
      const r = await audit();
      for (const t of targets) {
        assert.deepEqual(r.findings.filter((f) => f.target === t.id && f.check !== 'drift'), [], show(r));
      }
      // The probe really covered it: an extra permissive policy on it goes red behaviourally.
      await everywhere((s) => `create policy leak on ${s}.tasks for select using (true)`);
      const leaky = await audit();
      for (const t of targets) has(leaky, t, 'probe_read', 'tasks', /of other tenants/);
      await everywhere((s) => `drop policy leak on ${s}.tasks`);
      // A column of a composite type cannot be synthesised: probe_skipped, not a silent pass.
      await on(schema, (sql, s) => sql.execute(`create type ${s}.pair as (a int, b int);
        create table ${s}.odd (tenant_id uuid not null, id uuid not null, p ${s}.pair not null, primary key (tenant_id, id));
        alter table ${s}.odd enable row level security; alter table ${s}.odd force row level security;
        create policy tenant_isolation on ${s}.odd using (${POLICY}) with check (${POLICY});
        grant select, insert, update, delete on ${s}.odd to ${ident(schema.runtimeRole)};
        create table ${s}.odd_child (tenant_id uuid not null, id uuid not null, odd_id uuid not null, primary key (tenant_id, id),
          foreign key (tenant_id, odd_id) references ${s}.odd (tenant_id, id));
        alter table ${s}.odd_child enable row level security; alter table ${s}.odd_child force row level security;
        create policy tenant_isolation on ${s}.odd_child using (${POLICY}) with check (${POLICY});
        grant select, insert, update, delete on ${s}.odd_child to ${ident(schema.runtimeRole)}`));
      const odd = await audit();
      has(odd, schema, 'probe_skipped', 'odd', /column p is of type .*pair/);
      // And a table that needs a row of it cannot be probed either: said, not passed.
      has(odd, schema, 'probe_skipped', 'odd_child', /needs a row of odd/);
    } finally {
      await everywhere(drop);
    }
    await assertClean('dropping the new tables');
  });

  it('the probe leaves nothing behind', async () => {
    const snapshot = async () => {
      const out: Record<string, unknown> = {};
      for (const t of targets) {
        out[t.id] = await on(t, async (sql, s) => {
          const rows = await sql.query<{ n: number; ids: string[] }>(`
            select (select count(*) from ${s}.users)::int + (select count(*) from ${s}.tickets)::int + (select count(*) from ${s}.comments)::int as n,
              array(select distinct tenant_id::text from ${s}.users union select distinct tenant_id::text from ${s}.tickets
                    union select distinct tenant_id::text from ${s}.comments order by 1) as ids`);
          return rows[0];
        });
      }
      return out;
    };
    const before = await snapshot();
    // Weakened so that the probe's writes would stick to foreign rows if it committed.
    await everywhere((s) => `alter policy tenant_isolation on ${s}.tickets using (true) with check (true)`);
    try {
      assert.equal((await audit()).ok, false);
    } finally {
      await restoreTicketPolicies();
    }
    await assertClean('the probe');
    assert.deepEqual(await snapshot(), before);
    const [open] = await p.admin.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity
      where application_name = 'tenantry-check' and state like 'idle in transaction%'`);
    assert.equal(open!.n, 0, 'no probe transaction left open');
  });

  it('tenantry check --json goes red (exit 1) on the outside finding, and green after', async () => {
    await everywhere((s) => `alter policy tenant_isolation on ${s}.tickets using (tenant_id is not null)`);
    try {
      const run = await runCli(['check', '--json'], p.url);
      assert.equal(run.code, 1, run.stderr + run.stdout);
      const report = run.lines[0] as unknown as AuditReport;
      for (const t of targets) {
        has(report, t, 'policy_using', 'tickets.tenant_isolation');
        has(report, t, 'probe_read', 'tickets');
      }
    } finally {
      await restoreTicketPolicies();
    }
    const clean = await runCli(['check', '--json'], p.url);
    assert.equal(clean.code, 0, clean.stderr + clean.stdout);
  });
});
