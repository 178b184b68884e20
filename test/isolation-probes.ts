/**
 * Isolation probes: checks that return a list of failures (empty = the defence holds) instead of
 * asserting, so that test/rls-self-check.test.ts can weaken the database on purpose and prove each
 * probe goes red, and other tests can assert `deepEqual(await probeX(...), [])`.
 *
 * Data probes query through the DataPlane or a connection of the runtime role `tenantry_app`,
 * never as superuser (a superuser bypasses RLS and would see every row whatever the policies
 * say). The superuser connection is used only for ground truth (how many rows a tenant really
 * has) and for reading the system catalogs.
 */
import { randomUUID } from 'node:crypto';
import { runWithTenant, type Tenant, type Tenantry } from '../src/index.js';
import { roles } from '../src/data/bootstrap.js';
import { createPool, sqlState, withCredentials, type Sql } from '../src/data/driver/index.js';
import type { FixtureTenant } from '../app/fixtures.js';
import { ROLE_PASSWORD } from './helpers.js';

/** What the probes need from a test stack (a TestStack fits). */
export interface ProbeTarget {
  readonly tenantry: Tenantry;
  readonly admin: Sql;
  readonly databaseUrl: string;
  readonly tenants: readonly FixtureTenant[];
}

/** The tenant tables of the helpdesk, in schema `app`. */
export const tenantTables = ['users', 'tickets', 'comments'] as const;

/** URL of the runtime role on the stack's database. */
export function runtimeUrl(target: Pick<ProbeTarget, 'databaseUrl'>): string {
  return withCredentials(target.databaseUrl, roles.app, ROLE_PASSWORD);
}

/** A catalog tenant by id; throws if it does not exist. */
export async function tenantById(target: Pick<ProbeTarget, 'tenantry'>, id: string): Promise<Tenant> {
  const tenant = await target.tenantry.catalog.findById(id);
  if (!tenant) throw new Error(`tenant ${id} is not in the catalog`);
  return tenant;
}

/** Runs fn on a short-lived pool (one connection) of the runtime role. */
export async function withRuntimeConnection<T>(target: Pick<ProbeTarget, 'databaseUrl'>, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = createPool(runtimeUrl(target), { max: 1, applicationName: 'tenantry-probe' });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

function describeError(err: unknown): string {
  const state = sqlState(err);
  return `${state ?? 'no SQLSTATE'}: ${(err as Error)?.message ?? String(err)}`;
}

/**
 * Reads: every tenant sees exactly its own rows in every table through the DataPlane, cannot see
 * another tenant's row even by its primary key, and a runtime-role connection without a tenant
 * (or with a malformed one) sees no row at all.
 */
export async function probeReadIsolation(target: ProbeTarget): Promise<string[]> {
  const failures: string[] = [];
  const db = target.tenantry.db;
  const fixtures = target.tenants.filter((t) => t.isolation === 'pooled');
  if (fixtures.length < 2) return ['probeReadIsolation needs at least two pooled tenants'];

  for (const fixture of fixtures) {
    const tenant = await tenantById(target, fixture.id);
    for (const table of tenantTables) {
      // Ground truth, read as superuser (bypasses RLS on purpose).
      const [truth] = await target.admin.query<{ own: number }>(
        `select count(*)::int as own from app.${table} where tenant_id = $1`, [tenant.id]);
      if (!truth || truth.own === 0) { failures.push(`${fixture.slug}: no ${table} rows to probe with`); continue; }
      let rows: { tenant_id: string }[];
      try {
        rows = await runWithTenant(tenant, () => db.query<{ tenant_id: string }>(`select tenant_id from ${table}`));
      } catch (err) {
        failures.push(`${fixture.slug}: reading ${table} failed (${describeError(err)})`);
        continue;
      }
      const foreign = rows.filter((r) => r.tenant_id !== tenant.id);
      if (foreign.length) {
        failures.push(`${fixture.slug}: ${table} returned ${foreign.length} rows of other tenants`);
      }
      if (rows.length - foreign.length !== truth.own) {
        failures.push(`${fixture.slug}: ${table} returned ${rows.length - foreign.length} own rows, expected ${truth.own}`);
      }
    }
    // Point lookups of the other tenants' rows by primary key.
    for (const other of fixtures) {
      if (other.id === fixture.id) continue;
      const ids = [other.tickets[0]!.id, other.tickets[1]!.id];
      const rows = await runWithTenant(tenant, () =>
        db.query<{ id: string }>('select id from tickets where id = any($1::uuid[])', [ids]));
      if (rows.length) failures.push(`${fixture.slug}: fetched ${rows.length} tickets of ${other.slug} by id`);
      const users = await runWithTenant(tenant, () =>
        db.query<{ id: string }>('select id from users where id = $1', [other.users[0]!.id]));
      if (users.length) failures.push(`${fixture.slug}: fetched a user of ${other.slug} by id`);
    }
  }

  // No tenant, or a malformed one, at the SQL level: zero rows, never all rows, never an error.
  await withRuntimeConnection(target, async (sql) => {
    const contexts: { label: string; value: string | null }[] = [
      { label: 'no app.tenant_id', value: null },
      { label: 'empty app.tenant_id', value: '' },
      { label: 'app.tenant_id = not-a-uuid', value: 'not-a-uuid' },
      { label: "app.tenant_id = ' or true --", value: "' or true --" },
    ];
    for (const { label, value } of contexts) {
      for (const table of tenantTables) {
        try {
          const n = await sql.transaction(async (tx) => {
            if (value !== null) await tx.query("select set_config('app.tenant_id', $1, true)", [value]);
            const [r] = await tx.query<{ n: number }>(`select count(*)::int as n from app.${table}`);
            return r?.n ?? -1;
          });
          if (n !== 0) failures.push(`runtime role with ${label}: ${table} returned ${n} rows`);
        } catch (err) {
          failures.push(`runtime role with ${label}: ${table} failed (${describeError(err)})`);
        }
      }
    }
  });
  return failures;
}

/** Thrown inside a probe transaction to roll it back after a write that should have failed. */
class ProbeRollback extends Error {}

interface Attempt { readonly ok: boolean; readonly code: string | undefined; readonly message: string; readonly rows: number }

/**
 * Runs `setup` then one statement in a tenant transaction that is always rolled back. A failure
 * of a setup statement is reported as such, never mistaken for the probed statement's failure.
 */
async function attempt(target: ProbeTarget, tenant: Tenant, text: string, params: readonly unknown[], setup: readonly string[] = []): Promise<Attempt> {
  let rows = 0;
  let inSetup = true;
  try {
    await runWithTenant(tenant, () => target.tenantry.db.transaction(async (tx) => {
      for (const stmt of setup) await tx.query(stmt);
      inSetup = false;
      rows = (await tx.query(text, params)).length;
      throw new ProbeRollback('rolled back by the probe');
    }));
    return { ok: false, code: undefined, message: 'transaction committed (probe bug)', rows };
  } catch (err) {
    if (err instanceof ProbeRollback) return { ok: true, code: undefined, message: '', rows };
    return { ok: false, code: sqlState(err), message: `${inSetup ? 'setup failed: ' : ''}${(err as Error).message}`, rows };
  }
}

async function fingerprint(admin: Sql): Promise<string> {
  const parts: string[] = [];
  for (const table of tenantTables) {
    const [r] = await admin.query<{ f: string }>(
      `select count(*)::text || ':' || coalesce(md5(string_agg(t::text, ',' order by t.tenant_id, t.id)), '') as f from app.${table} t`);
    parts.push(`${table}=${r?.f}`);
  }
  return parts.join(' ');
}

/**
 * Writes: inside tenant A, writing a row that names tenant B (INSERT, or UPDATE moving A's row to
 * B) must fail with SQLSTATE 42501 (new row violates row-level security policy). Every attempt
 * runs in a transaction that is rolled back, so a broken WITH CHECK corrupts nothing; a positive
 * control (A writing its own row) must succeed, so the probe cannot pass by failing everything.
 */
export async function probeWithCheck(target: ProbeTarget): Promise<string[]> {
  const failures: string[] = [];
  const [fa, fb] = target.tenants.filter((t) => t.isolation === 'pooled');
  if (!fa || !fb) return ['probeWithCheck needs two pooled tenants'];
  const a = await tenantById(target, fa.id);
  const before = await fingerprint(target.admin);

  const control = await attempt(target, a,
    'insert into tickets (id, title) values ($1, $2) returning tenant_id', [randomUUID(), 'probe: own row']);
  if (!control.ok) failures.push(`control: tenant ${fa.slug} could not insert its own ticket (${control.code}: ${control.message})`);

  // No RETURNING and no WHERE on the probed writes: a statement that reads columns of the table
  // also has the new row checked against the SELECT policy's USING, which would hide a broken
  // WITH CHECK. The statements below depend on WITH CHECK alone.
  const cases: { label: string; text: string; params: unknown[]; setup?: string[] }[] = [
    {
      label: `insert into tickets with tenant_id of ${fb.slug}`,
      text: 'insert into tickets (tenant_id, id, title) values ($1, $2, $3)',
      params: [fb.id, randomUUID(), 'probe: foreign row'],
    },
    {
      label: `insert into users with tenant_id of ${fb.slug}`,
      text: "insert into users (tenant_id, id, email, name, role, password_hash) values ($1, $2, $3, 'Probe', 'agent', 'x')",
      params: [fb.id, randomUUID(), `probe-${randomUUID()}@probe.test`],
    },
    {
      label: `insert into comments with tenant_id of ${fb.slug}`,
      text: "insert into comments (tenant_id, id, ticket_id, body) values ($1, $2, $3, 'probe')",
      params: [fb.id, randomUUID(), fb.tickets[1]!.id],
    },
    {
      // Every ticket of A moved to B; A's comments are deleted first (in the same, rolled-back
      // transaction) so that their foreign key cannot be what refuses the move.
      label: `update moving every ${fa.slug} ticket to tenant_id of ${fb.slug}`,
      text: 'update tickets set tenant_id = $1, requester_id = null, assignee_id = null',
      params: [fb.id],
      setup: ['delete from comments'],
    },
    {
      // The usual shape (WHERE id = ...): refused as well (by WITH CHECK, and by USING on the new row).
      label: `update of one ${fa.slug} ticket to tenant_id of ${fb.slug}`,
      text: 'update tickets set tenant_id = $1, requester_id = null, assignee_id = null where id = $2 returning id',
      params: [fb.id, fa.tickets[1]!.id],
    },
  ];
  for (const c of cases) {
    const r = await attempt(target, a, c.text, c.params, c.setup);
    if (r.ok) failures.push(`${c.label}: accepted (${r.rows} row(s)), expected SQLSTATE 42501`);
    else if (r.code !== '42501') failures.push(`${c.label}: failed with ${r.code ?? 'no SQLSTATE'} (${r.message}), expected 42501`);
  }

  const after = await fingerprint(target.admin);
  if (after !== before) failures.push('tenant tables changed during the write probe');
  return failures;
}

/**
 * The shape of the defence, from the system catalogs (read as superuser; no data is read): every
 * table of the schema (the migration ledger aside) has a tenant_id column, RLS enabled and forced,
 * and every command is covered by permissive policies whose USING and WITH CHECK are present,
 * restrict by the tenant and are not a constant. A FOR ALL policy without WITH CHECK still
 * blocks foreign writes (PostgreSQL uses USING in its place), so only this check catches it.
 */
export async function probePolicyShape(admin: Sql, schema = 'app'): Promise<string[]> {
  const failures: string[] = [];
  const tables = await admin.query<{ name: string; rls: boolean; force: boolean; has_tenant: boolean }>(`
    select c.relname as name, c.relrowsecurity as rls, c.relforcerowsecurity as force,
      exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped) as has_tenant
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = $1 and c.relkind in ('r', 'p') and c.relname <> 'tenantry_migrations'
    order by c.relname`, [schema]);
  if (!tables.length) return [`schema ${schema} has no tables`];
  const policies = await admin.query<{ table: string; name: string; permissive: string; cmd: string; qual: string | null; with_check: string | null; roles: string }>(`
    select tablename as table, policyname as name, permissive, cmd, qual, with_check, roles::text as roles
    from pg_policies where schemaname = $1`, [schema]);
  const restricts = (expr: string | null) =>
    expr !== null && /\btenant_id\b/.test(expr) && /current_tenant_id\(\)/.test(expr) && !/^\(?\s*true\s*\)?$/i.test(expr.trim());

  for (const t of tables) {
    if (!t.has_tenant) { failures.push(`${t.name}: no tenant_id column`); continue; }
    if (!t.rls) failures.push(`${t.name}: row level security is not enabled`);
    if (!t.force) failures.push(`${t.name}: row level security is not forced`);
    const own = policies.filter((p) => p.table === t.name);
    const permissive = own.filter((p) => p.permissive === 'PERMISSIVE');
    for (const cmd of ['SELECT', 'INSERT', 'UPDATE', 'DELETE']) {
      if (!permissive.some((p) => p.cmd === cmd || p.cmd === 'ALL')) failures.push(`${t.name}: no policy covers ${cmd}`);
    }
    // Permissive policies are OR-ed: a single loose one opens the table.
    for (const p of permissive) {
      const label = `${t.name}.${p.name} (${p.cmd})`;
      if (p.cmd !== 'INSERT' && !restricts(p.qual)) failures.push(`${label}: USING does not restrict by tenant (${p.qual ?? 'absent'})`);
      if (['ALL', 'INSERT', 'UPDATE'].includes(p.cmd) && !restricts(p.with_check)) {
        failures.push(`${label}: WITH CHECK does not restrict by tenant (${p.with_check ?? 'absent'})`);
      }
    }
  }
  return failures;
}

/**
 * FORCE ROW LEVEL SECURITY, observed: the table owner (tenantry_owner, neither superuser nor
 * BYPASSRLS; migrations run as it) in tenant A's context sees only A's rows. Without FORCE the
 * owner bypasses the policies. Runs as the owner role via SET LOCAL ROLE, not as superuser.
 */
export async function probeOwnerForce(target: Pick<ProbeTarget, 'admin' | 'tenants'>): Promise<string[]> {
  const failures: string[] = [];
  const [fa] = target.tenants.filter((t) => t.isolation === 'pooled');
  if (!fa) return ['probeOwnerForce needs a pooled tenant'];
  for (const table of tenantTables) {
    const r = await target.admin.transaction(async (tx) => {
      await tx.query(`set local role ${roles.owner}`);
      await tx.query("select set_config('app.tenant_id', $1, true), set_config('search_path', 'app', true)", [fa.id]);
      const [row] = await tx.query<{ me: string; foreign: number }>(
        `select current_user as me, count(*) filter (where tenant_id <> $1)::int as foreign from app.${table}`, [fa.id]);
      return row;
    });
    if (r?.me !== roles.owner) failures.push(`owner probe ran as ${r?.me}, not ${roles.owner}`);
    else if (r.foreign !== 0) failures.push(`${table}: the owner role in ${fa.slug}'s context sees ${r.foreign} rows of other tenants`);
  }
  return failures;
}

/** All probes; empty when the defence is intact. */
export async function probeAll(target: ProbeTarget): Promise<string[]> {
  return [
    ...await probeReadIsolation(target),
    ...await probeWithCheck(target),
    ...await probePolicyShape(target.admin),
    ...await probeOwnerForce(target),
  ];
}
