/**
 * What the probe reads of the catalog, for every probed schema of one database in four queries
 * (one query per schema would scan pg_class once per tenant: see audit.ts): the tenant tables,
 * their columns with what row synthesis needs (base type, enum labels, domain CHECKs, varchar
 * length), their CHECK and foreign key constraints and unique indexes, and what each target's
 * runtime role may do on them.
 */
import type { Sql } from '../../data/driver/index.js';
import { LEDGER } from '../audit.js';

export interface ColumnInfo {
  readonly rel: string;
  readonly name: string;
  readonly notnull: boolean;
  readonly has_default: boolean;
  readonly generated: boolean;
  readonly identity_always: boolean;
  readonly type_name: string;
  /** The type under any domain: what values are synthesised for. */
  readonly base_name: string;
  readonly category: string;
  readonly typtype: string;
  /** The domain's name when the column's type is one: a domain CHECK error names it, not the column. */
  readonly domain: string | null;
  /** varchar(n) and char(n), of the column or of its domain. */
  readonly max_len: number | null;
  readonly labels: string[];
  readonly domain_checks: string[];
}

export interface ForeignKey {
  readonly name: string;
  readonly cols: string[];
  readonly refOid: string;
  readonly refCols: string[];
}

export interface TableInfo {
  readonly oid: string;
  readonly schema: string;
  readonly name: string;
  readonly columns: ColumnInfo[];
  readonly checks: { name: string; cols: string[]; def: string }[];
  readonly fks: ForeignKey[];
  /** Unique constraints and unique indexes (the primary key included), by index name. */
  readonly uniques: { name: string; cols: string[] }[];
}

export interface Privileges { select: boolean; insert: boolean; update: boolean; delete: boolean }

const NO_PRIVILEGES: Privileges = { select: false, insert: false, update: false, delete: false };

export interface ProbeCatalog {
  /** The tenant tables of each schema, by name. */
  readonly tables: ReadonlyMap<string, readonly TableInfo[]>;
  /**
   * Whether the runtime role of a schema's scope has USAGE on it. Absent when the role does not
   * exist: the probe then fails later, and says so, when it cannot act as the role.
   */
  readonly usage: ReadonlyMap<string, boolean>;
  /** What the runtime role of a schema's scope may do on one of its tables (nothing when unknown). */
  privileges(schema: string, table: TableInfo): Privileges;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const group = out.get(key(item));
    if (group) group.push(item);
    else out.set(key(item), [item]);
  }
  return out;
}

/**
 * Reads the catalog of every schema of `scopes` (one database). A tenant table is one with a
 * `tenant_id uuid` column; partitions are left out (their rows go through the partitioned table)
 * and so is the migration ledger.
 */
export async function loadCatalog(sql: Sql, scopes: readonly { readonly schema: string; readonly role: string }[]): Promise<ProbeCatalog> {
  const schemas = scopes.map((s) => s.schema);
  const tableRows = await sql.query<{ oid: string; schema: string; name: string }>(`
    select c.oid::text as oid, n.nspname as schema, c.relname as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped and a.atttypid = 'uuid'::regtype
    where n.nspname = any($1::text[]) and c.relkind in ('r', 'p') and not c.relispartition and c.relname <> $2
    order by n.nspname, c.relname`, [schemas, LEDGER]);
  const oids = tableRows.map((t) => t.oid);
  // max_len: atttypmod of varchar(n) is n + 4 (the varlena header); a domain over varchar(n)
  // carries it in typtypmod, the column then has -1.
  const columns = await sql.query<ColumnInfo>(`
    select a.attrelid::text as rel, a.attname as name, a.attnotnull as notnull, a.atthasdef as has_default,
      a.attgenerated <> '' as generated, a.attidentity = 'a' as identity_always,
      format_type(a.atttypid, a.atttypmod) as type_name, bt.typname as base_name, bt.typcategory as category, bt.typtype as typtype,
      case when t.typtype = 'd' then t.typname::text end as domain,
      case when bt.typname in ('varchar', 'bpchar') and coalesce(nullif(t.typtypmod, -1), a.atttypmod) > 4
           then coalesce(nullif(t.typtypmod, -1), a.atttypmod) - 4 end as max_len,
      array(select e.enumlabel::text from pg_enum e where e.enumtypid = bt.oid order by e.enumsortorder) as labels,
      array(select pg_get_constraintdef(k.oid) from pg_constraint k where k.contypid = t.oid) as domain_checks
    from pg_attribute a
    join pg_type t on t.oid = a.atttypid
    join pg_type bt on bt.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end
    where a.attrelid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped
    order by a.attrelid, a.attnum`, [oids]);
  // Unique indexes, not unique constraints: a 23505 names the index, which a constraint shares.
  const constraints = await sql.query<{ rel: string; name: string; type: string; cols: string[]; ref: string | null; ref_cols: string[] | null; def: string }>(`
    select k.conrelid::text as rel, k.conname as name, k.contype::text as type,
      array(select a.attname::text from unnest(k.conkey) with ordinality u(n, i)
            join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.i) as cols,
      case when k.contype = 'f' then k.confrelid::text end as ref,
      case when k.contype = 'f' then array(select a.attname::text from unnest(k.confkey) with ordinality u(n, i)
            join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.i) end as ref_cols,
      pg_get_constraintdef(k.oid) as def
    from pg_constraint k where k.conrelid = any($1::oid[]) and k.contype in ('c', 'f')
    union all
    select i.indrelid::text, ic.relname::text, 'u',
      array(select a.attname::text from unnest(i.indkey::int2[]) with ordinality u(n, o)
            join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.n
            where u.o <= i.indnkeyatts order by u.o), null, null, ''
    from pg_index i join pg_class ic on ic.oid = i.indexrelid
    where i.indrelid = any($1::oid[]) and i.indisunique
    order by 1, 2`, [oids]);
  const privs = await sql.query<{ schema: string; rel: string; usage: boolean; select: boolean; insert: boolean; update: boolean; delete: boolean }>(`
    select s.schema, c.oid::text as rel,
      has_schema_privilege(r.oid, n.oid, 'USAGE') as usage,
      has_table_privilege(r.oid, c.oid, 'SELECT') as select, has_table_privilege(r.oid, c.oid, 'INSERT') as insert,
      has_table_privilege(r.oid, c.oid, 'UPDATE') as update, has_table_privilege(r.oid, c.oid, 'DELETE') as delete
    from unnest($1::text[], $2::text[]) as s(schema, role)
    join pg_roles r on r.rolname = s.role
    join pg_namespace n on n.nspname = s.schema
    join pg_class c on c.relnamespace = n.oid and c.oid = any($3::oid[])`, [schemas, scopes.map((s) => s.role), oids]);

  const columnsOf = groupBy(columns, (c) => c.rel);
  const constraintsOf = groupBy(constraints, (k) => k.rel);
  const tables = groupBy(tableRows.map((t): TableInfo => {
    const cons = constraintsOf.get(t.oid) ?? [];
    return {
      oid: t.oid, schema: t.schema, name: t.name,
      columns: columnsOf.get(t.oid) ?? [],
      checks: cons.filter((k) => k.type === 'c').map((k) => ({ name: k.name, cols: k.cols, def: k.def })),
      fks: cons.filter((k) => k.type === 'f').map((k) => ({ name: k.name, cols: k.cols, refOid: k.ref!, refCols: k.ref_cols ?? [] })),
      uniques: cons.filter((k) => k.type === 'u').map((k) => ({ name: k.name, cols: k.cols })),
    };
  }), (t) => t.schema);
  const privileges = new Map<string, Privileges>();
  const usage = new Map<string, boolean>();
  for (const p of privs) {
    privileges.set(`${p.schema}\0${p.rel}`, { select: p.select, insert: p.insert, update: p.update, delete: p.delete });
    usage.set(p.schema, p.usage);
  }
  return { tables, usage, privileges: (schema, table) => privileges.get(`${schema}\0${table.oid}`) ?? NO_PRIVILEGES };
}
