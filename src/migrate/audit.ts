import type { Queryable, Sql } from '../data/driver/index.js';
import { roles } from '../data/bootstrap.js';
import { proveTables, type TenantTable } from './policy-proof.js';

/** One way a target falls short of the isolation rules. */
export interface Finding {
  readonly target: string;
  readonly check: string;
  readonly object: string;
  readonly message: string;
}

type Query = Queryable;

/** Each target's migration ledger: not a tenant table, left out of the table rules and of the probe. */
export const LEDGER = 'tenantry_migrations';

/** A schema to audit, and the target its findings are reported under. */
export interface AuditScope {
  readonly schema: string;
  readonly target: string;
}

/**
 * The catalog queries below each take every schema of a database at once (`nspname = any($1)`):
 * pg_class has no index that leads with the namespace, so a query per schema would scan it once
 * per tenant, and an audit of n schema tenants would cost n².
 */
function targetsBySchema(scopes: readonly AuditScope[]): Map<string, string> {
  return new Map(scopes.map((s) => [s.schema, s.target]));
}

/**
 * The table rules, for one schema: every table has `tenant_id uuid NOT NULL`, RLS enabled and
 * forced, an index whose first column is tenant_id, a primary key and foreign keys that lead with
 * tenant_id, no unique index across tenants, and policies proven to restrict every command of
 * every role that can reach the table to the current tenant (see policy-proof.ts). Runs inside
 * the migration's transaction too, so a migration that adds a table breaking them is rolled back
 * on that target.
 */
export async function auditTables(sql: Query, schema: string, target: string): Promise<Finding[]> {
  return auditTablesOf(sql, [{ schema, target }]);
}

/** auditTables for many schemas of one database, in a handful of catalog queries. */
export async function auditTablesOf(sql: Query, scopes: readonly AuditScope[]): Promise<Finding[]> {
  const targetOf = targetsBySchema(scopes);
  const names = [...targetOf.keys()];
  const findings: Finding[] = [];
  const tables = await sql.query<{
    oid: string; owner: string; schema: string; name: string; rls: boolean; force: boolean;
    tenant_type: string | null; tenant_notnull: boolean | null; tenant_index: boolean;
  }>(`
    select c.oid::text as oid, c.relowner::text as owner, n.nspname as schema, c.relname as name,
      c.relrowsecurity as rls, c.relforcerowsecurity as force,
      format_type(a.atttypid, a.atttypmod) as tenant_type, a.attnotnull as tenant_notnull,
      exists (select 1 from pg_index i where i.indrelid = c.oid and a.attnum is not null and i.indkey[0] = a.attnum) as tenant_index
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    left join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
    where n.nspname = any($1::text[]) and c.relkind in ('r', 'p') and c.relname <> $2
    order by n.nspname, c.relname`, [names, LEDGER]);
  const tenantTables: TenantTable[] = [];
  for (const t of tables) {
    const target = targetOf.get(t.schema)!;
    const add = (check: string, object: string, message: string) => findings.push({ target, check, object, message });
    if (t.tenant_type === null) { add('tenant_id', t.name, 'has no tenant_id column'); continue; }
    if (t.tenant_type !== 'uuid') add('tenant_id', t.name, `tenant_id is ${t.tenant_type}, not uuid`);
    if (!t.tenant_notnull) add('tenant_id', t.name, 'tenant_id is nullable');
    if (!t.rls) add('rls_enabled', t.name, 'row level security is not enabled');
    if (!t.force) add('rls_forced', t.name, 'row level security is not forced (the owner bypasses it)');
    if (!t.tenant_index) add('tenant_index', t.name, 'no index leads with tenant_id');
    tenantTables.push({ oid: t.oid, schema: t.schema, name: t.name, owner: t.owner });
  }
  for (const f of await proveTables(sql, tenantTables)) {
    findings.push({ target: targetOf.get(f.table.schema)!, check: f.check, object: f.object, message: f.message });
  }
  // Findings in table order, each table's in the order they were found.
  const rank = new Map(tables.map((t, i) => [`${t.schema}\0${t.name}`, i]));
  const tableOf = (f: Finding) => f.object.split('.')[0]!;
  const schemaOf = new Map(scopes.map((s) => [s.target, s.schema]));
  return findings
    .map((f, i) => ({ f, i, r: rank.get(`${schemaOf.get(f.target)}\0${tableOf(f)}`) ?? -1 }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.f);
}

/**
 * Objects that would let code escape RLS or the search path: SECURITY DEFINER functions without a
 * pinned search_path, and views that run with their owner's rights (no security_invoker).
 */
export async function auditRoutinesAndViews(sql: Query, schema: string, target: string): Promise<Finding[]> {
  return auditRoutinesAndViewsOf(sql, [{ schema, target }]);
}

/** auditRoutinesAndViews for many schemas of one database. */
export async function auditRoutinesAndViewsOf(sql: Query, scopes: readonly AuditScope[]): Promise<Finding[]> {
  const targetOf = targetsBySchema(scopes);
  const names = [...targetOf.keys()];
  const findings: Finding[] = [];
  const fns = await sql.query<{ schema: string; name: string }>(`
    select n.nspname as schema, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as name
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = any($1::text[]) and p.prosecdef
      and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search\\_path=%')`, [names]);
  for (const f of fns) findings.push({ target: targetOf.get(f.schema)!, check: 'security_definer', object: f.name, message: 'SECURITY DEFINER function without a pinned search_path' });
  const views = await sql.query<{ schema: string; name: string }>(`
    select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any($1::text[]) and c.relkind in ('v', 'm')
      and not coalesce('security_invoker=true' = any(c.reloptions) or 'security_invoker=on' = any(c.reloptions), false)`, [names]);
  for (const v of views) findings.push({ target: targetOf.get(v.schema)!, check: 'view_security_invoker', object: v.name, message: 'view without security_invoker bypasses RLS of its tables' });
  return findings;
}

/**
 * The search role (roles.search: NOLOGIN, BYPASSRLS, owner of search functions; see bootstrap.ts)
 * in one database. Its SELECT on tenant tables is accepted by the policy proof (policy-proof.ts,
 * which reports it if it can log in or write there); this is the rest of what it must be:
 *
 * - (`cluster`, once per server) superuser, CREATEDB, CREATEROLE, REPLICATION or LOGIN; a member
 *   of another role (it would hold that role's privileges with BYPASSRLS); a role that can log in
 *   and become it (SET ROLE) without being a member of the owner role, such as a runtime role;
 * - it owns nothing but functions, and holds no privilege on a relation that is not a tenant table
 *   (the catalog, a ledger, a table without tenant_id or row level security);
 * - every SECURITY DEFINER function it owns names `tenantry_rls.current_tenant_id()` in its body
 *   (a textual check: it shows that the author restricted it, not that the restriction is right),
 *   is not executable by PUBLIC, and pins its search_path (outside the audited schemas; inside them
 *   the security_definer check says so).
 *
 * A missing search role is no finding: search functions then run as their caller. Findings about a
 * function go to the target of its schema, the others to `databaseTarget`.
 */
export async function auditSearchRole(sql: Query, scopes: readonly AuditScope[], databaseTarget: string, opts: { cluster: boolean }): Promise<Finding[]> {
  const [role] = await sql.query<{ oid: string; login: boolean; super: boolean; createdb: boolean; createrole: boolean; replication: boolean }>(`
    select oid::text as oid, rolcanlogin as login, rolsuper as super, rolcreatedb as createdb, rolcreaterole as createrole,
      rolreplication as replication
    from pg_roles where rolname = $1`, [roles.search]);
  if (!role) return [];
  const findings: Finding[] = [];
  const name = roles.search;
  const add = (check: string, object: string, message: string, target = databaseTarget) => findings.push({ target, check, object, message });
  if (opts.cluster) {
    if (role.super) add('search_role', name, 'is superuser');
    if (role.login) add('search_role', name, 'can log in: BYPASSRLS with SELECT on every tenant\'s searched columns');
    if (role.createdb || role.createrole) add('search_role', name, 'can create databases or roles');
    if (role.replication) add('search_role', name, 'has REPLICATION');
    const memberOf = await sql.query<{ role: string }>(`
      select r.rolname as role from pg_auth_members m join pg_roles r on r.oid = m.roleid
      where m.member = $1::oid order by 1`, [role.oid]);
    for (const m of memberOf) add('search_role', name, `is a member of ${m.role}: it holds its privileges, with BYPASSRLS`);
    const becomers = await sql.query<{ role: string }>(`
      select r.rolname as role from pg_roles r
      where r.rolcanlogin and not r.rolsuper and r.oid <> $1::oid
        and pg_has_role(r.oid, $1::oid, 'MEMBER') and not pg_has_role(r.oid, $2, 'MEMBER')
      order by 1`, [role.oid, roles.owner]);
    for (const b of becomers) add('search_role', name, `${b.role} can log in and SET ROLE to it (BYPASSRLS) without being the owner role`);
  }
  const targetOf = targetsBySchema(scopes);
  const owned = await sql.query<{ object: string }>(`
    select 'relation ' || c.oid::regclass::text as object from pg_class c where c.relowner = $1::oid
    union all select 'schema ' || quote_ident(n.nspname) from pg_namespace n where n.nspowner = $1::oid
    union all select 'type ' || t.oid::regtype::text from pg_type t where t.typowner = $1::oid and t.typrelid = 0
    order by 1`, [role.oid]);
  for (const o of owned) add('search_role', name, `owns ${o.object}: it may own functions only`);
  // Privileges granted to it (on a table or a column) on anything but a tenant table (tenant_id and
  // row level security; those are the policy proof's, which audits them in every target).
  const grants = await sql.query<{ object: string; privs: string[] }>(`
    with granted as (
      select c.oid, x.privilege_type from pg_class c cross join lateral aclexplode(c.relacl) x where x.grantee = $1::oid
      union
      select a.attrelid, x.privilege_type from pg_attribute a cross join lateral aclexplode(a.attacl) x
      where x.grantee = $1::oid and a.attnum > 0 and not a.attisdropped
    )
    select c.oid::regclass::text as object, array_agg(distinct g.privilege_type order by g.privilege_type)::text[] as privs
    from granted g join pg_class c on c.oid = g.oid join pg_namespace n on n.oid = c.relnamespace
    where not (c.relkind in ('r', 'p') and c.relname <> $2 and c.relrowsecurity
               and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped))
    group by c.oid order by 1`, [role.oid, LEDGER]);
  for (const g of grants) add('search_role', name, `holds ${g.privs.join(', ')} on ${g.object}, which is not a tenant table`);
  const fns = await sql.query<{ schema: string; name: string; definer: boolean; restricted: boolean; public_execute: boolean; pinned: boolean }>(`
    select n.nspname as schema, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as name,
      p.prosecdef as definer,
      strpos(case when p.prosqlbody is null then p.prosrc else pg_get_functiondef(p.oid) end,
             'tenantry_rls.current_tenant_id()') > 0 as restricted,
      exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x
              where x.grantee = 0 and x.privilege_type = 'EXECUTE') as public_execute,
      exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search\\_path=%') as pinned
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where p.proowner = $1::oid order by 1, 2`, [role.oid]);
  for (const f of fns) {
    if (!f.definer) continue;
    const target = targetOf.get(f.schema) ?? databaseTarget;
    const object = targetOf.has(f.schema) ? f.name : `${f.schema}.${f.name}`;
    if (!f.restricted) add('search_function', object, `SECURITY DEFINER function of ${name} (BYPASSRLS) whose body does not name tenantry_rls.current_tenant_id(): nothing restricts it to the current tenant`, target);
    if (f.public_execute) add('search_function', object, `SECURITY DEFINER function of ${name} (BYPASSRLS) that PUBLIC can execute: only the runtime role may`, target);
    if (!f.pinned && !targetOf.has(f.schema)) add('search_function', object, 'SECURITY DEFINER function without a pinned search_path', target);
  }
  return findings;
}

/** A runtime role to audit, and the target its findings are reported under. */
export interface RoleScope {
  readonly role: string;
  readonly target: string;
}

/**
 * The runtime role of a target: not superuser, not BYPASSRLS, owns nothing, and can CREATE
 * nowhere (database, any schema, temporary tables).
 */
export async function auditRole(sql: Query, role: string, target: string): Promise<Finding[]> {
  return auditRolesOf(sql, [{ role, target }]);
}

/** auditRole for many roles, in three catalog queries. */
export async function auditRolesOf(sql: Query, scopes: readonly RoleScope[]): Promise<Finding[]> {
  if (!scopes.length) return [];
  const findings: Finding[] = [];
  const names = scopes.map((s) => s.role);
  const rows = await sql.query<{ role: string; super: boolean; bypass: boolean; createdb: boolean; createrole: boolean; db_create: boolean; temp: boolean }>(`
    select rolname as role, rolsuper as super, rolbypassrls as bypass, rolcreatedb as createdb, rolcreaterole as createrole,
      has_database_privilege(oid, current_database(), 'CREATE') as db_create,
      has_database_privilege(oid, current_database(), 'TEMP') as temp
    from pg_roles where rolname = any($1::text[])`, [names]);
  // A schema a role can CREATE in: one it owns or is a member of the owner of, or whose ACL
  // grants CREATE to it, to a role it belongs to, or to PUBLIC. has_schema_privilege answers that
  // exactly; the pre-filter keeps it to schemas where the answer can be yes for a non-superuser
  // (an ACL with a CREATE grant, or an owner that is not a superuser).
  const creatable = await sql.query<{ role: string; schema: string }>(`
    select r.rolname as role, n.nspname as schema
    from pg_namespace n
    join pg_roles o on o.oid = n.nspowner
    cross join pg_roles r
    where r.rolname = any($1::text[])
      and n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'
      and (not o.rolsuper or exists (select 1 from aclexplode(n.nspacl) x where x.privilege_type = 'CREATE'))
      and has_schema_privilege(r.oid, n.oid, 'CREATE')`, [names]);
  const owned = await sql.query<{ role: string; name: string }>(`
    select r.rolname as role, n.nspname || '.' || c.relname as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace join pg_roles r on r.oid = c.relowner
    where r.rolname = any($1::text[])`, [names]);
  for (const { role, target } of scopes) {
    const add = (check: string, message: string) => findings.push({ target, check, object: role, message });
    const r = rows.find((x) => x.role === role);
    if (!r) { add('runtime_role', 'role does not exist'); continue; }
    if (r.super) add('runtime_role', 'is superuser');
    if (r.bypass) add('runtime_role', 'has BYPASSRLS');
    if (r.createdb || r.createrole) add('runtime_role', 'can create databases or roles');
    if (r.db_create) add('runtime_role_create', 'can CREATE schemas in the database');
    if (r.temp) add('runtime_role_create', 'can create temporary tables');
    for (const s of creatable) if (s.role === role) add('runtime_role_create', `can CREATE in schema ${s.schema}`);
    for (const o of owned.filter((x) => x.role === role).slice(0, 20)) add('runtime_role_owner', `owns ${o.name}`);
  }
  return findings;
}

/**
 * The shape of a schema as sorted lines (columns, constraints, indexes, policies, RLS flags), with
 * the schema's own name taken out of qualified names so that shapes compare across targets.
 */
export async function schemaShape(sql: Sql, schema: string): Promise<string[]> {
  return (await schemaShapes(sql, [schema])).get(schema) ?? [];
}

/** schemaShape for many schemas of one database, in one catalog query. */
export async function schemaShapes(sql: Sql, names: readonly string[]): Promise<Map<string, string[]>> {
  return sql.transaction(async (tx) => {
    // Nothing but pg_catalog on the search path: every name outside it prints qualified, the
    // same way for every target, and the target's own qualification is stripped below.
    await tx.query(`select set_config('search_path', 'pg_catalog', true)`);
    const rows = await tx.query<{ schema: string; line: string }>(`
      select n.nspname as schema, 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
             || case when a.attnotnull then ' not null' else '' end
             || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') as line
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
      where n.nspname = any($1::text[]) and c.relkind in ('r', 'p', 'v', 'm') and c.relname <> $2
      union all
      select n.nspname, 'constraint ' || c.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
      from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = any($1::text[]) and c.relname <> $2
      union all
      select n.nspname, 'index ' || pg_get_indexdef(i.indexrelid)
      from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = any($1::text[]) and c.relname <> $2
      union all
      select schemaname, 'policy ' || tablename || '.' || policyname || ' ' || cmd || ' ' || permissive
             || ' using ' || coalesce(qual, '-') || ' check ' || coalesce(with_check, '-')
      from pg_policies where schemaname = any($1::text[])
      union all
      select n.nspname, 'rls ' || c.relname || ' ' || c.relrowsecurity || ' ' || c.relforcerowsecurity
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = any($1::text[]) and c.relkind in ('r', 'p') and c.relname <> $2`, [[...names], LEDGER]);
    const out = new Map<string, string[]>(names.map((n) => [n, []]));
    for (const r of rows) out.get(r.schema)?.push(unqualify(r.line, r.schema));
    for (const lines of out.values()) lines.sort();
    return out;
  });
}

/** Removes `schema.` and `"schema".` qualifications of the schema's own objects from a line. */
function unqualify(line: string, schema: string): string {
  const quoted = `"${schema.replace(/"/g, '""')}".`;
  return line.split(quoted).join('').split(new RegExp(`(?<![A-Za-z0-9_$".])${schema.replace(/[$]/g, '\\$')}\\.`)).join('');
}

/** Lines of `shape` missing from or extra to `reference`, as drift findings. */
export function diffShapes(reference: readonly string[], shape: readonly string[], target: string): Finding[] {
  const ref = new Set(reference);
  const got = new Set(shape);
  const findings: Finding[] = [];
  for (const line of reference) if (!got.has(line)) findings.push({ target, check: 'drift', object: line, message: 'missing (present in the reference)' });
  for (const line of shape) if (!ref.has(line)) findings.push({ target, check: 'drift', object: line, message: 'unexpected (absent from the reference)' });
  return findings;
}
