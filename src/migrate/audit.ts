import type { Sql } from '../data/postgres-driver.js';

/** One way a target falls short of the isolation rules. */
export interface Finding {
  readonly target: string;
  readonly check: string;
  readonly object: string;
  readonly message: string;
}

type Query = Pick<Sql, 'unsafe'>;

const LEDGER = 'tenantry_migrations';

/**
 * The table rules, for one schema: every table has `tenant_id uuid NOT NULL`, RLS enabled and
 * forced, policies covering every command with USING and WITH CHECK (neither a constant true), and
 * an index whose first column is tenant_id. Runs inside the migration's transaction too, so a
 * migration that adds a table breaking them is rolled back on that target.
 */
export async function auditTables(sql: Query, schema: string, target: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (check: string, object: string, message: string) => findings.push({ target, check, object, message });
  const tables = await sql.unsafe<{
    name: string; rls: boolean; force: boolean; tenant_type: string | null; tenant_notnull: boolean | null; tenant_index: boolean;
  }[]>(`
    select c.relname as name, c.relrowsecurity as rls, c.relforcerowsecurity as force,
      format_type(a.atttypid, a.atttypmod) as tenant_type, a.attnotnull as tenant_notnull,
      exists (select 1 from pg_index i where i.indrelid = c.oid and a.attnum is not null and i.indkey[0] = a.attnum) as tenant_index
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    left join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
    where n.nspname = $1 and c.relkind in ('r', 'p') and c.relname <> $2
    order by c.relname`, [schema, LEDGER]);
  const policies = await sql.unsafe<{ table: string; name: string; cmd: string; qual: string | null; with_check: string | null; permissive: string }[]>(`
    select tablename as table, policyname as name, cmd, qual, with_check, permissive
    from pg_policies where schemaname = $1`, [schema]);
  for (const t of tables) {
    if (t.tenant_type === null) { add('tenant_id', t.name, 'has no tenant_id column'); continue; }
    if (t.tenant_type !== 'uuid') add('tenant_id', t.name, `tenant_id is ${t.tenant_type}, not uuid`);
    if (!t.tenant_notnull) add('tenant_id', t.name, 'tenant_id is nullable');
    if (!t.rls) add('rls_enabled', t.name, 'row level security is not enabled');
    if (!t.force) add('rls_forced', t.name, 'row level security is not forced (the owner bypasses it)');
    if (!t.tenant_index) add('tenant_index', t.name, 'no index leads with tenant_id');
    const own = policies.filter((p) => p.table === t.name && p.permissive === 'PERMISSIVE');
    const covers = (cmd: string) => own.filter((p) => p.cmd === cmd || p.cmd === 'ALL');
    const trivial = (expr: string | null) => expr === null || /^\(?\s*true\s*\)?$/i.test(expr.trim());
    for (const cmd of ['SELECT', 'INSERT', 'UPDATE', 'DELETE']) {
      const ps = covers(cmd);
      if (!ps.length) { add('policy', t.name, `no policy for ${cmd}`); continue; }
      for (const p of ps) {
        if (cmd !== 'INSERT' && trivial(p.qual)) add('policy_using', `${t.name}.${p.name}`, `${cmd} policy has no restricting USING`);
        if ((cmd === 'INSERT' || cmd === 'UPDATE') && (p.with_check === null || trivial(p.with_check))) {
          add('policy_with_check', `${t.name}.${p.name}`, `${cmd} policy has no restricting WITH CHECK`);
        }
      }
    }
  }
  return findings;
}

/**
 * Objects that would let code escape RLS or the search path: SECURITY DEFINER functions without a
 * pinned search_path, and views that run with their owner's rights (no security_invoker).
 */
export async function auditRoutinesAndViews(sql: Query, schema: string, target: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  const fns = await sql.unsafe<{ name: string }[]>(`
    select p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as name
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = $1 and p.prosecdef
      and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search\\_path=%')`, [schema]);
  for (const f of fns) findings.push({ target, check: 'security_definer', object: f.name, message: 'SECURITY DEFINER function without a pinned search_path' });
  const views = await sql.unsafe<{ name: string }[]>(`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = $1 and c.relkind in ('v', 'm')
      and not coalesce('security_invoker=true' = any(c.reloptions) or 'security_invoker=on' = any(c.reloptions), false)`, [schema]);
  for (const v of views) findings.push({ target, check: 'view_security_invoker', object: v.name, message: 'view without security_invoker bypasses RLS of its tables' });
  return findings;
}

/**
 * The runtime role of a target: not superuser, not BYPASSRLS, owns nothing, and can CREATE
 * nowhere (database, any schema, temporary tables).
 */
export async function auditRole(sql: Query, role: string, target: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (check: string, message: string) => findings.push({ target, check, object: role, message });
  const [r] = await sql.unsafe<{ super: boolean; bypass: boolean; createdb: boolean; createrole: boolean; db_create: boolean; temp: boolean }[]>(`
    select rolsuper as super, rolbypassrls as bypass, rolcreatedb as createdb, rolcreaterole as createrole,
      has_database_privilege($1, current_database(), 'CREATE') as db_create,
      has_database_privilege($1, current_database(), 'TEMP') as temp
    from pg_roles where rolname = $1`, [role]);
  if (!r) { add('runtime_role', 'role does not exist'); return findings; }
  if (r.super) add('runtime_role', 'is superuser');
  if (r.bypass) add('runtime_role', 'has BYPASSRLS');
  if (r.createdb || r.createrole) add('runtime_role', 'can create databases or roles');
  if (r.db_create) add('runtime_role_create', 'can CREATE schemas in the database');
  if (r.temp) add('runtime_role_create', 'can create temporary tables');
  const schemas = await sql.unsafe<{ name: string }[]>(`
    select nspname as name from pg_namespace
    where nspname not like 'pg\\_%' and nspname <> 'information_schema' and has_schema_privilege($1, oid, 'CREATE')`, [role]);
  for (const s of schemas) add('runtime_role_create', `can CREATE in schema ${s.name}`);
  const owned = await sql.unsafe<{ name: string }[]>(`
    select n.nspname || '.' || c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relowner = (select oid from pg_roles where rolname = $1) limit 20`, [role]);
  for (const o of owned) add('runtime_role_owner', `owns ${o.name}`);
  return findings;
}

/**
 * The shape of a schema as sorted lines (columns, constraints, indexes, policies, RLS flags),
 * printed with the schema itself on the search path so that names compare across targets.
 */
export async function schemaShape(sql: Sql, schema: string): Promise<string[]> {
  return sql.begin(async (tx) => {
    await tx.unsafe(`select set_config('search_path', $1, true)`, [`"${schema}"`]);
    const rows = await tx.unsafe<{ line: string }[]>(`
      select 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
             || case when a.attnotnull then ' not null' else '' end
             || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') as line
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
      where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm') and c.relname <> $2
      union all
      select 'constraint ' || c.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
      from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname <> $2
      union all
      -- pg_get_indexdef always qualifies the table: strip this target's schema name.
      select 'index ' || replace(pg_get_indexdef(i.indexrelid), ' ON ' || quote_ident($1) || '.', ' ON ')
      from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname <> $2
      union all
      select 'policy ' || tablename || '.' || policyname || ' ' || cmd || ' ' || permissive
             || ' using ' || coalesce(qual, '-') || ' check ' || coalesce(with_check, '-')
      from pg_policies where schemaname = $1
      union all
      select 'rls ' || c.relname || ' ' || c.relrowsecurity || ' ' || c.relforcerowsecurity
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relkind in ('r', 'p') and c.relname <> $2`, [schema, LEDGER]);
    return rows.map((r) => r.line).sort();
  });
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
