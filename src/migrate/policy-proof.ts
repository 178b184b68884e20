/**
 * The structural half of the isolation proof, for the tables of many schemas of one database at
 * once: who can reach each tenant table (privileges granted to a role, to a role it inherits from,
 * to PUBLIC, the owner, pg_read_all_data / pg_write_all_data), which policies apply to each of
 * them for each command, and whether every policy that can let a row through restricts it to the
 * current tenant. Plus the key rules: the primary key and every foreign key lead with tenant_id,
 * and no unique index spans tenants.
 *
 * Only one expression counts as the tenant restriction: `tenant_id = tenantry_rls.current_tenant_id()`
 * (either operand order, the parentheses and no-op casts pg_get_expr prints), whose only function
 * is that very function (checked by OID through pg_depend, so a look-alike in another schema that
 * prints the same unqualified name does not pass) and whose operator is the built-in uuid `=`.
 *
 * BYPASSRLS roles that can reach a tenant table are findings, with one exception: the search role
 * (tenantry_search), as long as it cannot log in and holds SELECT only. What it owns and who can
 * become it are audited in audit.ts (auditSearchRole).
 */
import { roles as tenantryRoles } from '../data/bootstrap.js';
import type { Queryable } from '../data/driver/index.js';

/** What `auditTablesOf` hands over: the tenant tables of the scopes, by oid. */
export interface TenantTable {
  readonly oid: string;
  readonly schema: string;
  readonly name: string;
  readonly owner: string;
}

export interface ProofFinding {
  readonly table: TenantTable;
  readonly check: string;
  readonly object: string;
  readonly message: string;
}

/** The commands RLS governs, as pg_policy.polcmd spells them. */
const COMMANDS = [['SELECT', 'r'], ['INSERT', 'a'], ['UPDATE', 'w'], ['DELETE', 'd']] as const;
type Command = (typeof COMMANDS)[number][0];
const CMD_NAME: Record<string, string> = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' };
const PUBLIC = '0';

export const TENANT_RESTRICTION = 'tenant_id = tenantry_rls.current_tenant_id()';

interface RoleRow { oid: string; name: string; super: boolean; bypass: boolean; login: boolean; me: boolean }
interface EdgeRow { role: string; member: string; inherit: boolean }
interface AclRow { rel: string; grantee: string; privs: string[] }
interface PolicyRow {
  rel: string; name: string; cmd: string; permissive: boolean; roles: string[];
  qual: string | null; with_check: string | null; procs: string[]; operators: string[]; helper: string | null;
}
interface KeyRow { rel: string; name: string; type: 'p' | 'f' | 'u'; cols: (string | null)[]; ref_table: string | null; ref_cols: (string | null)[] | null; ref_tenant: boolean | null }

/**
 * Roles and who has the privileges of whom (has_privs_of_role): a member inherits a role's
 * privileges through a grant with INHERIT (PostgreSQL 16+: per grant; before: the member's
 * rolinherit), transitively. A member without inheritance can still SET ROLE, and is then that
 * role: the role itself is audited as a reacher, so nothing is missed.
 */
class RoleGraph {
  readonly byOid: Map<string, RoleRow>;
  readonly #members = new Map<string, string[]>();
  readonly #heirs = new Map<string, Set<string>>();

  constructor(roles: readonly RoleRow[], edges: readonly EdgeRow[]) {
    this.byOid = new Map(roles.map((r) => [r.oid, r]));
    for (const e of edges) if (e.inherit) this.#members.set(e.role, [...(this.#members.get(e.role) ?? []), e.member]);
  }

  /** The roles that hold the privileges of `role` (itself included). */
  heirs(role: string): Set<string> {
    let out = this.#heirs.get(role);
    if (out) return out;
    out = new Set([role]);
    const queue = [role];
    for (let r = queue.shift(); r !== undefined; r = queue.shift()) {
      for (const m of this.#members.get(r) ?? []) if (!out.has(m)) { out.add(m); queue.push(m); }
    }
    this.#heirs.set(role, out);
    return out;
  }

  name(oid: string): string {
    return oid === PUBLIC ? 'PUBLIC' : (this.byOid.get(oid)?.name ?? `role ${oid}`);
  }

  oidOf(name: string): string | undefined {
    for (const r of this.byOid.values()) if (r.name === name) return r.oid;
    return undefined;
  }
}

/** A role that can reach a table, and the privileges it has there. */
interface Reacher { readonly oid: string; readonly privs: Set<string> }

function reachersOf(table: TenantTable, acl: readonly AclRow[], graph: RoleGraph, predefined: ReadonlyMap<string, readonly string[]>): Reacher[] {
  const granted = new Map<string, Set<string>>();
  const grant = (grantee: string, privs: readonly string[]) => {
    const set = granted.get(grantee) ?? new Set<string>();
    for (const p of privs) set.add(p);
    granted.set(grantee, set);
  };
  for (const row of acl) grant(row.grantee, row.privs);
  // The owner can always grant itself anything back: count it as holding every privilege.
  grant(table.owner, ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']);
  for (const [role, privs] of predefined) grant(role, privs);
  const publicPrivs = granted.get(PUBLIC) ?? new Set<string>();
  const reach = new Map<string, Set<string>>();
  if (publicPrivs.size) reach.set(PUBLIC, new Set(publicPrivs));
  for (const [grantee, privs] of granted) {
    if (grantee === PUBLIC) continue;
    for (const heir of graph.heirs(grantee)) {
      const role = graph.byOid.get(heir);
      // Superusers bypass RLS by design (the admin); predefined roles (pg_read_all_data, ...)
      // reach through their members, which are audited instead.
      if (role?.super || role?.name.startsWith('pg_')) continue;
      const set = reach.get(heir) ?? new Set<string>(publicPrivs);
      for (const p of privs) set.add(p);
      reach.set(heir, set);
    }
  }
  return [...reach].map(([oid, privs]) => ({ oid, privs }));
}

/** An expression as CREATE POLICY shows it: in parentheses. */
const paren = (expr: string | null) => (expr === null ? '(none)' : expr.startsWith('(') && unwrap(expr) !== expr ? expr : `(${expr})`);

/** Strips whitespace and every pair of parentheses that encloses the whole string. */
function unwrap(text: string): string {
  let s = text.trim();
  for (;;) {
    if (!s.startsWith('(') || !s.endsWith(')')) return s;
    let depth = 0;
    let closesAtEnd = true;
    for (let i = 0; i < s.length; i++) {
      if (s[i] === '(') depth++;
      else if (s[i] === ')' && --depth === 0 && i < s.length - 1) { closesAtEnd = false; break; }
    }
    if (!closesAtEnd) return s;
    s = s.slice(1, -1).trim();
  }
}

/** Splits at the one top-level ` = ` (outside parentheses and quotes); null if there is not exactly one. */
function splitEquality(s: string): [string, string] | null {
  let depth = 0;
  let quoted = false;
  let at = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") quoted = !quoted;
    if (quoted) continue;
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (depth === 0 && s.startsWith(' = ', i - 1) && c === '=') {
      if (at >= 0) return null;
      at = i;
    }
  }
  return at < 0 ? null : [s.slice(0, at - 1), s.slice(at + 2)];
}

/** An operand without its no-op casts: `((tenant_id)::uuid)` → tenant_id, with the casts seen. */
function operand(text: string): { core: string; casts: string[] } {
  const casts: string[] = [];
  let s = unwrap(text);
  for (let m = /^(.*)::(uuid|text)$/.exec(s); m; m = /^(.*)::(uuid|text)$/.exec(s)) {
    casts.push(m[2]!);
    s = unwrap(m[1]!);
  }
  return { core: s, casts };
}

/**
 * Is this pg_get_expr output the tenant restriction? `procs` and `operators` are the functions and
 * (non-built-in) operators the expression depends on, from pg_depend; `helper` the OID of
 * tenantry_rls.current_tenant_id() in this database.
 */
export function isTenantRestriction(expr: string | null, deps?: { procs: readonly string[]; operators: readonly string[]; helper: string | null }): boolean {
  if (expr === null) return false;
  const sides = splitEquality(unwrap(expr.replace(/\s+/g, ' ')));
  if (!sides) return false;
  const [a, b] = sides.map(operand) as [ReturnType<typeof operand>, ReturnType<typeof operand>];
  const isColumn = (o: typeof a) => o.core === 'tenant_id' || o.core === '"tenant_id"';
  const isHelper = (o: typeof a) => o.core === 'tenantry_rls.current_tenant_id()' || o.core === 'current_tenant_id()';
  if (!((isColumn(a) && isHelper(b)) || (isColumn(b) && isHelper(a)))) return false;
  // Casts that change nothing: to uuid anywhere, or to text on both sides (uuid's text is canonical).
  const textCasts = (o: typeof a) => o.casts.filter((c) => c === 'text').length;
  if (textCasts(a) !== textCasts(b) || textCasts(a) > 1) return false;
  if (!deps) return true;
  // `=` printed bare is the built-in uuid (or text) equality unless the policy depends on an
  // operator of its own; a user-defined one in either expression of the policy is refused.
  if (deps.helper === null || deps.operators.length) return false;
  // Qualified, the name is the helper (one function of that name and no arguments per schema).
  // Bare, it is whatever the audit's search_path finds first: the policy must then depend on the
  // helper and on no other function.
  const helperSide = isHelper(a) ? a : b;
  if (helperSide.core.startsWith('tenantry_rls.')) return deps.procs.includes(deps.helper);
  return deps.procs.length === 1 && deps.procs[0] === deps.helper;
}

/**
 * The policy and key rules for the tenant tables of the scopes (see the module comment). Runs a
 * handful of catalog queries for all of them together.
 */
export async function proveTables(sql: Queryable, tables: readonly TenantTable[]): Promise<ProofFinding[]> {
  if (!tables.length) return [];
  const findings: ProofFinding[] = [];
  const oids = tables.map((t) => t.oid);

  const roles = await sql.query<RoleRow>(`
    select oid::text as oid, rolname as name, rolsuper as super, rolbypassrls as bypass, rolcanlogin as login,
      rolname = session_user as me from pg_roles`);
  // pg_auth_members.inherit_option exists from PostgreSQL 16; before, the member's rolinherit decides.
  const edges = await sql.query<EdgeRow>(`
    select m.roleid::text as role, m.member::text as member,
      coalesce((to_jsonb(m) ->> 'inherit_option')::boolean, r.rolinherit) as inherit
    from pg_auth_members m join pg_roles r on r.oid = m.member`);
  const graph = new RoleGraph(roles, edges);
  const predefined = new Map<string, readonly string[]>();
  const readAll = graph.oidOf('pg_read_all_data');
  const writeAll = graph.oidOf('pg_write_all_data');
  if (readAll) predefined.set(readAll, ['SELECT']);
  if (writeAll) predefined.set(writeAll, ['INSERT', 'UPDATE', 'DELETE']);

  // Table privileges, and column privileges (a column grant is enough to read or write rows).
  const acl = await sql.query<AclRow>(`
    select c.oid::text as rel, x.grantee::text as grantee, array_agg(distinct x.privilege_type)::text[] as privs
    from pg_class c cross join lateral aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) x
    where c.oid = any($1::oid[])
    group by 1, 2
    union all
    select a.attrelid::text, x.grantee::text, array_agg(distinct x.privilege_type)::text[]
    from pg_attribute a cross join lateral aclexplode(a.attacl) x
    where a.attrelid = any($1::oid[]) and a.attacl is not null and a.attnum > 0 and not a.attisdropped
    group by 1, 2`, [oids]);
  const aclOf = new Map<string, AclRow[]>();
  for (const row of acl) aclOf.set(row.rel, [...(aclOf.get(row.rel) ?? []), row]);

  const policies = await sql.query<PolicyRow>(`
    select p.polrelid::text as rel, p.polname as name, p.polcmd::text as cmd, p.polpermissive as permissive,
      p.polroles::text[] as roles,
      pg_get_expr(p.polqual, p.polrelid) as qual, pg_get_expr(p.polwithcheck, p.polrelid) as with_check,
      array(select distinct d.refobjid::text from pg_depend d
            where d.classid = 'pg_policy'::regclass and d.objid = p.oid and d.refclassid = 'pg_proc'::regclass) as procs,
      array(select distinct d.refobjid::text from pg_depend d
            where d.classid = 'pg_policy'::regclass and d.objid = p.oid and d.refclassid = 'pg_operator'::regclass) as operators,
      to_regprocedure('tenantry_rls.current_tenant_id()')::oid::text as helper
    from pg_policy p where p.polrelid = any($1::oid[])
    order by p.polrelid, p.polname`, [oids]);
  const policiesOf = new Map<string, PolicyRow[]>();
  for (const p of policies) policiesOf.set(p.rel, [...(policiesOf.get(p.rel) ?? []), p]);

  const keys = await sql.query<KeyRow>(`
    select k.conrelid::text as rel, k.conname as name, k.contype::text as type,
      array(select a.attname::text from unnest(k.conkey) with ordinality u(n, i)
            join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.i) as cols,
      case when k.contype = 'f' then k.confrelid::regclass::text end as ref_table,
      case when k.contype = 'f' then array(select a.attname::text from unnest(k.confkey) with ordinality u(n, i)
            join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.i) end as ref_cols,
      case when k.contype = 'f' then exists (select 1 from pg_attribute a where a.attrelid = k.confrelid
            and a.attname = 'tenant_id' and not a.attisdropped) end as ref_tenant
    from pg_constraint k where k.conrelid = any($1::oid[]) and k.contype in ('p', 'f')
    union all
    select i.indrelid::text, ic.relname::text, 'u',
      array(select a.attname::text from unnest(i.indkey::int2[]) with ordinality u(n, o)
            left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.n
            where u.o <= i.indnkeyatts order by u.o), null, null, null
    from pg_index i join pg_class ic on ic.oid = i.indexrelid
    where i.indrelid = any($1::oid[]) and i.indisunique and not i.indisprimary
    order by 1, 2`, [oids]);

  const keysOf = new Map<string, KeyRow[]>();
  for (const k of keys) keysOf.set(k.rel, [...(keysOf.get(k.rel) ?? []), k]);

  for (const table of tables) {
    const add = (check: string, object: string, message: string) => findings.push({ table, check, object, message });
    const own = policiesOf.get(table.oid) ?? [];
    const rolesText = (p: PolicyRow) => p.roles.map((r) => graph.name(r)).join(', ');

    // 1. Every permissive policy is OR-ed with the others: each must be the tenant restriction,
    //    whoever it is for (a policy for a role that cannot reach the table today does once it is granted).
    for (const p of own.filter((x) => x.permissive)) {
      const deps = { procs: p.procs, operators: p.operators, helper: p.helper };
      const cmd = CMD_NAME[p.cmd] ?? p.cmd;
      if (p.cmd !== 'a' && !isTenantRestriction(p.qual, deps)) {
        add('policy_using', `${table.name}.${p.name}`,
          `permissive ${cmd} policy for ${rolesText(p)} has USING ${paren(p.qual)}, not ${TENANT_RESTRICTION}: it is OR-ed with the others and lets those rows through`);
      }
      if (p.cmd !== 'r' && p.cmd !== 'd' && !isTenantRestriction(p.with_check, deps)) {
        add('policy_with_check', `${table.name}.${p.name}`, p.with_check === null
          ? `permissive ${cmd} policy for ${rolesText(p)} has no WITH CHECK (absent: ${p.cmd === 'a' ? 'no row passes' : 'it falls back to USING, which a later edit can loosen'}); expected ${TENANT_RESTRICTION}`
          : `permissive ${cmd} policy for ${rolesText(p)} has WITH CHECK ${paren(p.with_check)}, not ${TENANT_RESTRICTION}: rows of other tenants can be written`);
      }
    }

    // 2. Every role that can reach the table, for every command it holds a privilege for, gets
    //    at least one permissive policy (without one, or with restrictive ones only, RLS refuses
    //    every row: the command is broken, and the proof above covers nothing for that role).
    const reachers = reachersOf(table, aclOf.get(table.oid) ?? [], graph, predefined);
    const missing = new Map<Command, string[]>();
    const bypass: string[] = [];
    const truncate: string[] = [];
    const ownerHeirs = graph.heirs(table.owner);
    for (const r of reachers) {
      const role = graph.byOid.get(r.oid);
      if (role?.bypass && !role.me) {
        const extra = [...r.privs].filter((p) => p !== 'SELECT').sort();
        if (role.name !== tenantryRoles.search) bypass.push(role.name);
        else if (role.login || extra.length) {
          add('table_access', table.name, `${role.name} (the search role: BYPASSRLS) ${[
            ...(role.login ? ['can log in'] : []), ...(extra.length ? [`can ${extra.join(', ')}`] : []),
          ].join(' and ')}: it may only SELECT, through the functions it owns`);
        }
      }
      if (r.privs.has('TRUNCATE') && !ownerHeirs.has(r.oid)) truncate.push(graph.name(r.oid));
      const applies = (p: PolicyRow) => p.roles.includes(PUBLIC) || (r.oid !== PUBLIC && p.roles.some((x) => graph.heirs(x).has(r.oid)));
      for (const [command, code] of COMMANDS) {
        if (!r.privs.has(command)) continue;
        const applicable = own.filter((p) => (p.cmd === code || p.cmd === '*') && applies(p));
        if (!applicable.some((p) => p.permissive)) missing.set(command, [...(missing.get(command) ?? []), graph.name(r.oid)]);
      }
    }
    for (const [command, names] of missing) {
      const restrictiveOnly = own.some((p) => !p.permissive && (p.cmd === '*' || CMD_NAME[p.cmd] === command));
      add('policy', table.name, `no permissive ${command} policy applies to ${names.sort().join(', ')}, which can ${command}` +
        (restrictiveOnly ? ' (restrictive policies only: they narrow, never grant)' : ''));
    }
    if (bypass.length) add('table_access', table.name, `${bypass.sort().join(', ')} can reach the table and ${bypass.length > 1 ? 'have' : 'has'} BYPASSRLS: no policy applies`);
    if (truncate.length) add('table_access', table.name, `${truncate.sort().join(', ')} can TRUNCATE it (not subject to row level security: every tenant's rows)`);

    // 3. Keys: the primary key and every foreign key lead with tenant_id (a reference can never
    //    cross tenants, and the keys distribute by tenant_id), and no unique index spans tenants.
    const tableKeys = keysOf.get(table.oid) ?? [];
    const pk = tableKeys.find((k) => k.type === 'p');
    if (!pk) add('tenant_pk', table.name, 'has no primary key (it must lead with tenant_id)');
    else if (pk.cols[0] !== 'tenant_id') add('tenant_pk', `${table.name}.${pk.name}`, `primary key (${pk.cols.join(', ')}) does not lead with tenant_id`);
    for (const fk of tableKeys.filter((k) => k.type === 'f')) {
      const object = `${table.name}.${fk.name}`;
      const at = fk.cols.indexOf('tenant_id');
      const target = `${fk.ref_table}(${(fk.ref_cols ?? []).join(', ')})`;
      if (!fk.ref_tenant) add('tenant_fk', object, `foreign key (${fk.cols.join(', ')}) references ${target}, a table without tenant_id`);
      else if (at < 0) add('tenant_fk', object, `foreign key (${fk.cols.join(', ')}) references ${target} without tenant_id: a row can point at another tenant's row`);
      else if (fk.ref_cols?.[at] !== 'tenant_id') add('tenant_fk', object, `foreign key (${fk.cols.join(', ')}) maps tenant_id to ${fk.ref_cols?.[at]} of ${fk.ref_table}`);
      else if (at !== 0) add('tenant_fk', object, `foreign key (${fk.cols.join(', ')}) does not lead with tenant_id`);
    }
    for (const u of tableKeys.filter((k) => k.type === 'u')) {
      if (!u.cols.includes('tenant_id')) {
        add('tenant_unique', `${table.name}.${u.name}`, `unique index on (${u.cols.map((c) => c ?? 'expression').join(', ')}) without tenant_id: values are unique across tenants (an insert tells whether another tenant holds one)`);
      }
    }
  }
  return findings;
}
