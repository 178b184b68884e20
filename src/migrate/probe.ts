/**
 * The behavioural half of the isolation proof: on each target, in one transaction that is always
 * rolled back, rows of two synthetic tenants (random UUIDs) are written into every tenant table,
 * and then, as the target's runtime role with each tenant's context (exactly what the data plane
 * sets: app.tenant_id, the target's search_path, SET LOCAL ROLE), the probe checks that the tenant
 * sees, updates and deletes its own rows and none of the other's, can insert its own rows and not
 * the other's (42501, row level security), cannot move its row to the other tenant, and cannot
 * point a foreign key at the other's row; without a context, nothing is visible.
 *
 * Nothing about the schema is hard-coded: tables, columns, types, CHECK constraints, foreign keys
 * and unique indexes come from the catalog. Parents are filled before children (foreign keys);
 * values are synthesised per column type (literals of the column's CHECK constraints first), and a
 * constraint that refuses a value moves that column to its next candidate. A table that cannot be
 * filled this way is reported as `probe_skipped`, never passed in silence.
 *
 * The setup rows are written as the admin (so a broken policy cannot stop the probe before it
 * starts); every check runs as the runtime role. Each probed statement runs inside a savepoint
 * that is rolled back, so one outcome never leaks into the next.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { quoteIdent, sqlState, type Row, type Sql, type SqlConnection, type Statement } from '../data/driver/index.js';
import type { Finding } from './audit.js';

/** A target to probe: its schema (the data plane's search_path) and the role its transactions run as. */
export interface ProbeScope {
  readonly schema: string;
  readonly target: string;
  readonly role: string;
}

export interface ProbeOptions {
  /** Targets probed at once (each holds one connection for its transaction). */
  readonly concurrency?: number;
  /** Statement and lock timeouts inside the probe transaction, ms. */
  readonly statementTimeoutMs?: number;
}

const LEDGER = 'tenantry_migrations';
const SAVEPOINT = 'tenantry_probe';

interface ColumnInfo {
  readonly rel: string;
  readonly name: string;
  readonly notnull: boolean;
  readonly has_default: boolean;
  readonly generated: boolean;
  readonly identity_always: boolean;
  readonly type_name: string;
  readonly base_name: string;
  readonly category: string;
  readonly typtype: string;
  readonly domain: string | null;
  readonly max_len: number | null;
  readonly labels: string[];
  readonly domain_checks: string[];
}

interface TableInfo {
  readonly oid: string;
  readonly schema: string;
  readonly name: string;
  readonly columns: ColumnInfo[];
  readonly checks: { name: string; cols: string[]; def: string }[];
  readonly fks: ForeignKey[];
  readonly uniques: { name: string; cols: string[] }[];
}

interface ForeignKey {
  readonly name: string;
  readonly cols: string[];
  readonly refOid: string;
  readonly refCols: string[];
}

interface Privileges { select: boolean; insert: boolean; update: boolean; delete: boolean }

interface DbError { code: string | undefined; message: string; constraint?: string; column?: string; dataType?: string }

function dbError(err: unknown): DbError {
  const e = err as { message?: string; constraint?: string; column?: string; dataType?: string };
  return { code: sqlState(err), message: e?.message ?? String(err), constraint: e?.constraint, column: e?.column, dataType: e?.dataType };
}

const describe = (e: DbError) => `${e.code ?? 'error'}: ${e.message}`;
const isRlsRefusal = (e: DbError | undefined) => e?.code === '42501';

/** Reads the catalog of every schema of `scopes` (one database) in a few queries. */
async function loadCatalog(sql: Sql, scopes: readonly ProbeScope[]): Promise<{ tables: Map<string, TableInfo[]>; privileges: Map<string, Privileges>; usage: Map<string, boolean> }> {
  const schemas = scopes.map((s) => s.schema);
  const tableRows = await sql.query<{ oid: string; schema: string; name: string }>(`
    select c.oid::text as oid, n.nspname as schema, c.relname as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped and a.atttypid = 'uuid'::regtype
    where n.nspname = any($1::text[]) and c.relkind in ('r', 'p') and not c.relispartition and c.relname <> $2
    order by n.nspname, c.relname`, [schemas, LEDGER]);
  const oids = tableRows.map((t) => t.oid);
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

  const columnsOf = new Map<string, ColumnInfo[]>();
  for (const c of columns) columnsOf.set(c.rel, [...(columnsOf.get(c.rel) ?? []), c]);
  const constraintsOf = new Map<string, typeof constraints>();
  for (const k of constraints) constraintsOf.set(k.rel, [...(constraintsOf.get(k.rel) ?? []), k]);
  const tables = new Map<string, TableInfo[]>();
  for (const t of tableRows) {
    const cons = constraintsOf.get(t.oid) ?? [];
    tables.set(t.schema, [...(tables.get(t.schema) ?? []), {
      oid: t.oid, schema: t.schema, name: t.name,
      columns: columnsOf.get(t.oid) ?? [],
      checks: cons.filter((k) => k.type === 'c').map((k) => ({ name: k.name, cols: k.cols, def: k.def })),
      fks: cons.filter((k) => k.type === 'f').map((k) => ({ name: k.name, cols: k.cols, refOid: k.ref!, refCols: k.ref_cols ?? [] })),
      uniques: cons.filter((k) => k.type === 'u').map((k) => ({ name: k.name, cols: k.cols })),
    }]);
  }
  const privileges = new Map<string, Privileges>();
  const usage = new Map<string, boolean>();
  for (const p of privs) {
    privileges.set(`${p.schema}\0${p.rel}`, { select: p.select, insert: p.insert, update: p.update, delete: p.delete });
    usage.set(p.schema, p.usage);
  }
  return { tables, privileges, usage };
}

/** String and number literals of a constraint definition: the values it is most likely to accept. */
function literals(def: string): { strings: string[]; numbers: string[] } {
  const strings: string[] = [];
  const numbers: string[] = [];
  const withoutStrings = def.replace(/'((?:[^']|'')*)'/g, (_, s: string) => { strings.push(s.replace(/''/g, "'")); return ' '; });
  for (const m of withoutStrings.matchAll(/(?<![\w.$"])-?\d+(?:\.\d+)?(?![\w.$"])/g)) numbers.push(m[0]);
  return { strings, numbers };
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/**
 * Candidate values (text, given to the column's input function) for a column, best first; empty
 * when its type cannot be synthesised. Random parts are fresh on every call, so two rows never
 * collide on a unique column.
 */
function candidates(col: ColumnInfo, checks: readonly string[]): string[] {
  const lit = { strings: [] as string[], numbers: [] as string[] };
  for (const def of [...checks, ...col.domain_checks]) {
    const l = literals(def);
    lit.strings.push(...l.strings);
    lit.numbers.push(...l.numbers);
  }
  const fit = (values: string[]) => [...new Set(values)].map((v) => (col.max_len !== null ? v.slice(0, col.max_len) : v));
  if (col.typtype === 'e') return fit(col.labels);
  switch (col.base_name) {
    case 'uuid': return [randomUUID()];
    case 'bool': return ['true', 'false'];
    case 'date': return ['2000-01-01', 'today'];
    case 'timestamp': return ['2000-01-01 00:00:00', 'now'];
    case 'timestamptz': return ['2000-01-01 00:00:00+00', 'now'];
    case 'time': return ['12:00:00'];
    case 'timetz': return ['12:00:00+00'];
    case 'interval': return ['1 day', '1 second'];
    case 'json': case 'jsonb': return ['{}', '[]', 'null'];
    case 'bytea': return ['\\x00'];
    case 'inet': return ['10.0.0.1'];
    case 'cidr': return ['10.0.0.0/8'];
    case 'macaddr': return ['08:00:2b:01:02:03'];
    case 'macaddr8': return ['08:00:2b:01:02:03:04:05'];
    case 'xml': return ['<p/>'];
    case 'tsvector': case 'tsquery': return ['probe'];
    case 'point': return ['(0,0)'];
    case 'money': return ['1', '0'];
    default: break;
  }
  if (col.category === 'A') return ['{}'];
  if (col.category === 'S') {
    const token = `p${hex(6)}`;
    return fit([...lit.strings, token, `${token}@example.com`, 'probe', 'x', '']);
  }
  if (col.category === 'N') {
    const small = col.base_name === 'int2' ? 30_000 : 1_000_000;
    return fit([...lit.numbers, String(1 + Math.floor(Math.random() * small)), '1', '0', '2', '10', '100', '-1']);
  }
  if (col.category === 'V') return ['1', '0'];
  if (col.category === 'R') return ['empty'];
  return [];
}

/** The candidates of a column of `table`, with the literals of the CHECK constraints on it. */
function candidatesOf(table: TableInfo, col: ColumnInfo): string[] {
  return candidates(col, table.checks.filter((k) => k.cols.includes(col.name)).map((k) => k.def));
}

/** What the probe knows about filling one table: the columns it gives values, and their chosen candidates. */
interface TablePlan {
  readonly table: TableInfo;
  readonly privileges: Privileges;
  /** Foreign keys whose parent is a probed table of the same target (possibly this one). */
  readonly parentKeys: ForeignKey[];
  /** Columns given a value in every row (others take their default or NULL). */
  readonly explicit: Set<string>;
  /** Index of the candidate each explicit column uses. */
  readonly choice: Map<string, number>;
  /** Columns other tables' foreign keys read from this one's rows. */
  readonly referenced: Set<string>;
}

/** One setup row: the text values of its referenced columns. */
type RowKey = Record<string, string | null>;

/** Where a group of probed statements ended: the rows of each, or the server's error. */
type Result = { readonly rows: Row[][]; readonly error?: undefined } | { readonly rows?: undefined; readonly error: DbError };

/** Probed statements, run inside a savepoint that is rolled back, and what their outcome means. */
interface Check {
  readonly stmts: readonly Statement[];
  readonly judge: (result: Result) => void;
}

const ctx = (tenant: string | null): Statement => ({ text: `select set_config('app.tenant_id', $1, true)`, params: [tenant ?? ''] });
const SP: Statement = { text: `savepoint ${SAVEPOINT}` };
const UNDO: Statement[] = [{ text: `rollback to savepoint ${SAVEPOINT}` }, { text: `release savepoint ${SAVEPOINT}` }];
const KEEP: Statement = { text: `release savepoint ${SAVEPOINT}` };

/**
 * The probe of one target, on one connection, in one transaction (rolled back by the caller).
 * Round trips are few: the checks expected to succeed run as one pipeline per tenant (each in its
 * own savepoint, rolled back and released, so no subtransaction outlives its check); only when
 * that pipeline fails are they run one by one to tell which failed. Statements expected to fail
 * (writes refused by row level security) take a round trip each: an error ends a pipeline.
 */
class TargetProbe {
  readonly #conn: SqlConnection;
  readonly #scope: ProbeScope;
  readonly #plans: TablePlan[];
  readonly #findings: Finding[] = [];
  readonly #seen = new Set<string>();
  /** Setup rows per tenant and table oid. */
  readonly #rows = new Map<string, RowKey>();
  readonly #tenants = [randomUUID(), randomUUID()] as const;
  /** A failed pipeline left the transaction aborted inside the savepoint: undo it first. */
  #pending = false;

  /** Names of every tenant table of the target, probed or not. */
  readonly #names: ReadonlyMap<string, string>;

  constructor(conn: SqlConnection, scope: ProbeScope, plans: TablePlan[], names: ReadonlyMap<string, string>) {
    this.#conn = conn;
    this.#scope = scope;
    this.#plans = plans;
    this.#names = names;
  }

  /** Records a finding; the same finding for the other synthetic tenant is not repeated. */
  #add(check: string, object: string, message: string): void {
    const key = `${check}\0${object}\0${message.replace(/synthetic tenant [AB]/g, 'T')}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.#findings.push({ target: this.#scope.target, check, object, message });
  }

  #label(tenant: string): string {
    return tenant === this.#tenants[0] ? 'synthetic tenant A' : 'synthetic tenant B';
  }

  /** One pipeline (one round trip), after undoing a failed one. */
  async #pipe(stmts: readonly Statement[]): Promise<Row[][]> {
    const prefix = this.#pending ? UNDO : [];
    this.#pending = false;
    try {
      return (await this.#conn.pipeline([...prefix, ...stmts])).slice(prefix.length);
    } catch (err) {
      this.#pending = true;
      throw err;
    }
  }

  /** Statements inside a savepoint; kept (`keep`) or rolled back. */
  async #run(stmts: readonly Statement[], keep = false): Promise<Result> {
    try {
      const rows = await this.#pipe([SP, ...stmts, ...(keep ? [KEEP] : UNDO)]);
      return { rows: rows.slice(1, 1 + stmts.length) };
    } catch (err) {
      return { error: dbError(err) };
    }
  }

  /**
   * Runs groups of checks as one pipeline, after `prelude` (statements outside any savepoint, such
   * as the tenant context, which therefore stays set). The checks of a group share a savepoint,
   * rolled back after the group (they must leave each other's rows alone: one table's checks);
   * when the pipeline fails, every check runs alone, in a savepoint of its own.
   */
  async #checks(groups: readonly (readonly Check[])[], prelude: readonly Statement[] = []): Promise<void> {
    const live = groups.filter((g) => g.length);
    let rows: Row[][] | undefined;
    try {
      rows = (await this.#pipe([...prelude, ...live.flatMap((g) => [SP, ...g.flatMap((c) => c.stmts), ...UNDO])])).slice(prelude.length);
    } catch (err) {
      // A prelude that failed leaves the transaction aborted outside the savepoint: give up.
      if (prelude.length) {
        try { await this.#pipe(prelude); } catch { throw err; }
      }
      for (const c of live.flat()) c.judge(await this.#run(c.stmts));
      return;
    }
    let at = 0;
    for (const g of live) {
      at += 1;
      for (const c of g) {
        c.judge({ rows: rows.slice(at, at + c.stmts.length) });
        at += c.stmts.length;
      }
      at += UNDO.length;
    }
  }

  /**
   * The values of a new row of `tenant` in the plan's table: tenant_id, the foreign keys (to the
   * setup rows of `parentOf(fk)`, by default the tenant itself), the explicit columns' candidates.
   */
  #row(plan: TablePlan, tenant: string, parentOf: (fk: ForeignKey) => string = () => tenant, choice: ReadonlyMap<string, number> = plan.choice,
    explicit: ReadonlySet<string> = plan.explicit): Map<string, string | null> {
    const values = new Map<string, string | null>();
    for (const col of plan.table.columns) {
      if (!explicit.has(col.name) || col.name === 'tenant_id') continue;
      values.set(col.name, candidatesOf(plan.table, col)[choice.get(col.name) ?? 0] ?? null);
    }
    // Keys pointing at another tenant's parent last: where keys share a column, theirs wins.
    const keys = [...plan.parentKeys].sort((x, y) => Number(parentOf(x) !== tenant) - Number(parentOf(y) !== tenant));
    for (const fk of keys) {
      if (fk.refOid === plan.table.oid) {
        // A self-reference: nullable, it stays NULL; otherwise the row points at itself.
        fk.cols.forEach((c, i) => { if (c !== 'tenant_id' && explicit.has(c)) values.set(c, values.get(fk.refCols[i]!) ?? null); });
        continue;
      }
      const parent = this.#rows.get(`${parentOf(fk)}\0${fk.refOid}`);
      fk.cols.forEach((c, i) => { if (c !== 'tenant_id') values.set(c, parent?.[fk.refCols[i]!] ?? null); });
    }
    values.set('tenant_id', tenant);
    return values;
  }

  #insert(plan: TablePlan, values: Map<string, string | null>, returning: boolean): Statement {
    const cols = [...values.keys()];
    const ret = returning && plan.referenced.size
      ? ` returning ${[...plan.referenced].map((c) => `${quoteIdent(c)}::text as ${quoteIdent(c)}`).join(', ')}`
      : '';
    return {
      text: `insert into ${quoteIdent(plan.table.name)} (${cols.map(quoteIdent).join(', ')}) values (${cols.map((_, i) => `$${i + 1}`).join(', ')})${ret}`,
      params: [...values.values()],
    };
  }

  /**
   * Writes a row of `tenant` into the plan's table, moving columns to their next candidate while a
   * CHECK, NOT NULL or unique constraint refuses them. `keep`: the row stays (a setup row, written
   * as the admin; the candidates that worked become the plan's), otherwise it is rolled back (a
   * probed insert). Row level security refusals (42501) are returned at once, never retried.
   */
  async #write(plan: TablePlan, tenant: string, keep: boolean): Promise<Result> {
    const table = plan.table;
    const choice = new Map(plan.choice);
    const explicit = new Set(plan.explicit);
    const columnsOf = (e: DbError): string[] => {
      const k = e.constraint ? table.checks.find((c) => c.name === e.constraint) ?? table.uniques.find((u) => u.name === e.constraint) : undefined;
      if (k) return k.cols;
      return e.dataType ? table.columns.filter((c) => c.domain === e.dataType).map((c) => c.name) : [];
    };
    let result: Result = { error: { code: undefined, message: 'no attempt' } };
    for (let attempt = 0; attempt < 24; attempt++) {
      result = await this.#run([this.#insert(plan, this.#row(plan, tenant, undefined, choice, explicit), keep)], keep);
      const e = result.error;
      if (!e) {
        if (keep) {
          for (const [c, n] of choice) plan.choice.set(c, n);
          for (const c of explicit) plan.explicit.add(c);
          this.#rows.set(`${tenant}\0${table.oid}`, (result.rows[0]?.[0] ?? {}) as RowKey);
        }
        return result;
      }
      if (e.code === '23502' && e.column && !explicit.has(e.column)) { explicit.add(e.column); continue; }
      if (e.code !== '23514' && e.code !== '23505') return result;
      const movable = columnsOf(e).filter((c) => c !== 'tenant_id' && !plan.parentKeys.some((fk) => fk.refOid !== table.oid && fk.cols.includes(c)));
      let moved = false;
      for (const c of movable) {
        const col = table.columns.find((x) => x.name === c);
        if (!col) continue;
        if (!explicit.has(c)) { explicit.add(c); moved = true; continue; }
        // A unique conflict on a random value: the next row draws a new one.
        if (e.code === '23505' && (col.base_name === 'uuid' || col.category === 'S' || col.category === 'N') && attempt < 2) { moved = true; continue; }
        const next = (choice.get(c) ?? 0) + 1;
        if (next < candidatesOf(table, col).length) { choice.set(c, next); moved = true; }
      }
      if (!moved) return result;
    }
    return result;
  }

  /**
   * The setup rows, as the admin: one row per tenant in every table, parents before children. A
   * level of tables that need nothing from each other goes in one pipeline; when it fails, table
   * by table with candidate retries. Returns the tables that got their rows.
   */
  async #setup(): Promise<TablePlan[]> {
    const depth = new Map<string, number>();
    for (const plan of this.#plans) {
      depth.set(plan.table.oid, 1 + Math.max(-1, ...plan.parentKeys.filter((fk) => fk.refOid !== plan.table.oid).map((fk) => depth.get(fk.refOid) ?? 0)));
    }
    const levels: TablePlan[][] = [];
    for (const plan of this.#plans) (levels[depth.get(plan.table.oid)!] ??= []).push(plan);
    const done: TablePlan[] = [];
    const required = (plan: TablePlan, fk: ForeignKey) => fk.cols.some((c) => c !== 'tenant_id' && plan.table.columns.find((x) => x.name === c)?.notnull);
    for (const level of levels.filter(Boolean)) {
      const ready: TablePlan[] = [];
      for (const plan of level) {
        const blocked = plan.parentKeys.find((fk) => fk.refOid !== plan.table.oid && !done.some((d) => d.table.oid === fk.refOid) && required(plan, fk));
        if (!blocked) { ready.push(plan); continue; }
        this.#add('probe_skipped', plan.table.name, `not probed: its foreign key ${blocked.name} needs a row of ${this.#names.get(blocked.refOid) ?? blocked.refOid}, which could not be written`);
      }
      const stmts = this.#tenants.flatMap((tenant) => [ctx(tenant), ...ready.map((plan) => this.#insert(plan, this.#row(plan, tenant), true))]);
      const batch = await this.#run(stmts, true);
      if (!batch.error) {
        this.#tenants.forEach((tenant, i) => ready.forEach((plan, j) => {
          this.#rows.set(`${tenant}\0${plan.table.oid}`, (batch.rows[i * (ready.length + 1) + 1 + j]?.[0] ?? {}) as RowKey);
        }));
        done.push(...ready);
        continue;
      }
      for (const plan of ready) {
        let failure: DbError | undefined;
        for (const tenant of this.#tenants) {
          await this.#pipe([ctx(tenant)]);
          const r = await this.#write(plan, tenant, true);
          if (r.error) { failure = r.error; break; }
        }
        if (failure) this.#add('probe_skipped', plan.table.name, `not probed: no synthetic row could be written (${describe(failure)})`);
        else done.push(plan);
      }
    }
    return this.#plans.filter((p) => done.includes(p));
  }

  /**
   * Rows of `other` as `other` sees them (their ctids), before and after `stmt` runs with `self`'s
   * context: a changed list means `stmt` reached them.
   */
  #touching(table: string, stmt: Statement, self: string, other: string): Statement[] {
    const snap: Statement = { text: `select coalesce(array_agg(ctid::text order by ctid), '{}') as c from ${table} where tenant_id = $1`, params: [other] };
    return [ctx(other), snap, ctx(self), stmt, ctx(other), snap, ctx(self)];
  }

  static #touched(rows: Row[][]): 'touched' | 'untouched' | 'inconclusive' {
    const before = (rows[1]?.[0] as { c: string[] } | undefined)?.c ?? [];
    const after = (rows[5]?.[0] as { c: string[] } | undefined)?.c ?? [];
    if (!before.length) return 'inconclusive';
    return before.join() === after.join() ? 'untouched' : 'touched';
  }

  /** Everything one tenant's context is checked for, against the other tenant. */
  async #probeTenant(probed: readonly TablePlan[], self: string, other: string): Promise<void> {
    const me = this.#label(self);
    const them = this.#label(other);
    const role = this.#scope.role;
    // One group per table (its checks share a savepoint, see #checks).
    const groups: Check[][] = [];
    const later: (() => Promise<void>)[] = [];
    for (const plan of probed) {
      const checks: Check[] = [];
      groups.push(checks);
      const t = quoteIdent(plan.table.name);
      const name = plan.table.name;
      const p = plan.privileges;
      const state = { ownUpdated: false, leaked: false, ownInsert: undefined as DbError | undefined };
      if (p.select) {
        checks.push({
          stmts: [{ text: `select count(*) filter (where tenant_id = $1)::int as own,
            count(*) filter (where tenant_id is distinct from $1)::int as foreign from ${t}`, params: [self] }],
          judge: (r) => {
            if (r.error) return this.#add('probe_skipped', name, `reading as ${role} with ${me}'s context failed (${describe(r.error)})`);
            const row = r.rows[0]![0] as { own: number; foreign: number };
            if (row.foreign > 0) this.#add('probe_read', name, `${me}'s context sees ${row.foreign} row(s) of other tenants`);
            if (row.own < 1) this.#add('probe_read', name, `${me}'s context does not see its own row`);
          },
        });
      }
      if (p.update && p.select) {
        checks.push({
          stmts: [{ text: `update ${t} set tenant_id = tenant_id where tenant_id = $1 returning 1 as n`, params: [self] }],
          judge: (r) => {
            if (r.error) this.#add('probe_update', name, `${me} could not update its own row (${describe(r.error)})`);
            else if (!r.rows[0]!.length) this.#add('probe_update', name, `${me}'s update of its own row changed nothing`);
            else state.ownUpdated = true;
          },
        }, {
          stmts: [{ text: `update ${t} set tenant_id = tenant_id where tenant_id = $1 returning 1 as n`, params: [other] }],
          judge: (r) => {
            if (r.error) this.#add('probe_update', name, `${me}'s update reached ${them}'s row (refused only by ${isRlsRefusal(r.error) ? 'WITH CHECK' : describe(r.error)})`);
            else if (r.rows[0]!.length) this.#add('probe_update', name, `${me} updated ${r.rows[0]!.length} row(s) of ${them}`);
            else return;
            state.leaked = true;
          },
        }, {
          // Without WHERE or RETURNING (nothing read), only the UPDATE policies choose the rows: a
          // WHERE that reads columns would add the SELECT policies. Its own rows keep every value
          // (tenant_id set to what it is), so WITH CHECK, a key or a unique index can only refuse
          // a row of another tenant that the update moved.
          stmts: this.#touching(t, { text: `update ${t} set tenant_id = $1`, params: [self] }, self, other),
          judge: (r) => {
            if (r.error && (isRlsRefusal(r.error) || ['23503', '23505'].includes(r.error.code ?? ''))) {
              this.#add('probe_update', name, `${me}'s update without WHERE reached ${them}'s row (refused only by ${isRlsRefusal(r.error) ? 'WITH CHECK' : describe(r.error)})`);
            } else if (r.error) return this.#add('probe_skipped', name, `an update without WHERE as ${role} failed (${describe(r.error)})`);
            else if (TargetProbe.#touched(r.rows) === 'touched') this.#add('probe_update', name, `${me}'s update without WHERE changed ${them}'s row`);
            else return;
            state.leaked = true;
          },
        });
        // Moving its own rows to the other tenant (no WHERE, no RETURNING: WITH CHECK alone
        // decides) must be refused by row level security, before any other constraint.
        later.push(async () => {
          if (!state.ownUpdated || state.leaked) return;
          const r = await this.#run([{ text: `update ${t} set tenant_id = $1`, params: [other] }]);
          if (!r.error) this.#add('probe_update', name, `${me} moved its own row to ${them}`);
          else if (!isRlsRefusal(r.error)) this.#add('probe_update', name, `moving ${me}'s row to ${them} was not refused by row level security (it failed later: ${describe(r.error)})`);
        });
      }
      if (p.delete && p.select) {
        checks.push({
          stmts: [{ text: `delete from ${t} where tenant_id = $1 returning 1 as n`, params: [other] }],
          judge: (r) => {
            if (r.error) this.#add('probe_delete', name, `${me}'s delete reached ${them}'s row (${describe(r.error)})`);
            else if (r.rows[0]!.length) this.#add('probe_delete', name, `${me} deleted ${r.rows[0]!.length} row(s) of ${them}`);
          },
        }, {
          stmts: this.#touching(t, { text: `delete from ${t}` }, self, other),
          // An error (a key that holds its own rows back) proves nothing either way.
          judge: (r) => { if (!r.error && TargetProbe.#touched(r.rows) === 'touched') this.#add('probe_delete', name, `${me}'s delete without WHERE deleted ${them}'s row`); },
        });
      }
      if (p.insert) {
        checks.push({
          stmts: [this.#insert(plan, this.#row(plan, self), false)],
          judge: (r) => { state.ownInsert = r.error; },
        });
        later.push(async () => {
          let own = state.ownInsert;
          // Refused by a constraint (a unique value drawn twice, say): again, with other candidates.
          if (own && !isRlsRefusal(own)) own = (await this.#write(plan, self, false)).error;
          if (own && isRlsRefusal(own)) this.#add('probe_insert', name, `${me} could not insert its own row (${describe(own)})`);
          else if (own) this.#add('probe_skipped', name, `inserting ${me}'s own row as ${role} failed (${describe(own)})`);
          const foreign = await this.#run([this.#insert(plan, this.#row(plan, other), false)]);
          if (!foreign.error) this.#add('probe_insert', name, `${me} inserted a row of ${them}`);
          else if (!isRlsRefusal(foreign.error)) this.#add('probe_insert', name, `${me}'s insert of a row of ${them} was not refused by row level security (${describe(foreign.error)})`);
          // Its own row pointing at the other tenant's parent row: the key must not match (keys
          // do not compare tenants, so one direction is enough).
          if (own || self !== this.#tenants[0]) return;
          for (const fk of plan.parentKeys.filter((k) => k.refOid !== plan.table.oid)) {
            const cross = await this.#run([this.#insert(plan, this.#row(plan, self, (k) => (k === fk ? other : self)), false)]);
            if (!cross.error) this.#add('probe_fk', `${name}.${fk.name}`, `a row of ${me} was written pointing at ${them}'s row of ${this.#names.get(fk.refOid) ?? fk.refOid}`);
          }
        });
      }
    }
    // Its own rows can be deleted (children first, so that no key holds them back).
    const deletable = probed.filter((p) => p.privileges.delete && p.privileges.select).reverse();
    if (deletable.length) {
      groups.push([{
        stmts: deletable.map((plan) => ({ text: `delete from ${quoteIdent(plan.table.name)} where tenant_id = $1 returning 1 as n`, params: [self] })),
        judge: (r) => {
          if (r.error) return this.#add('probe_skipped', this.#scope.schema, `deleting ${me}'s own rows as ${role} failed (${describe(r.error)})`);
          deletable.forEach((plan, i) => {
            if (!r.rows[i]!.length) this.#add('probe_delete', plan.table.name, `${me}'s delete of its own row deleted nothing`);
          });
        },
      }]);
    }
    await this.#checks(groups, [ctx(self)]);
    for (const step of later) await step();
  }

  async run(): Promise<Finding[]> {
    const [a, b] = this.#tenants;
    const probed = await this.#setup();
    if (!probed.length) return this.#findings;

    // From here on, the runtime role, as the data plane runs it.
    try {
      await this.#pipe([{ text: `select set_config('role', $1, true)`, params: [this.#scope.role] }]);
    } catch (err) {
      this.#add('probe_skipped', this.#scope.role, `not probed: cannot act as the runtime role (${describe(dbError(err))})`);
      return this.#findings;
    }
    await this.#probeTenant(probed, a, b);
    await this.#probeTenant(probed, b, a);

    // No context at all: nothing of either tenant is visible.
    const readable = probed.filter((p) => p.privileges.select);
    await this.#checks([[{
      stmts: [ctx(null), ...readable.map((plan) => ({ text: `select count(*)::int as n from ${quoteIdent(plan.table.name)} where tenant_id = any($1::uuid[])`, params: [[a, b]] }))],
      judge: (r) => {
        if (r.error) return this.#add('probe_skipped', this.#scope.schema, `reading without a tenant context failed (${describe(r.error)})`);
        readable.forEach((plan, i) => {
          const n = (r.rows[i + 1]![0] as { n: number }).n;
          if (n > 0) this.#add('probe_read', plan.table.name, `without a tenant context ${n} synthetic row(s) are visible`);
        });
      },
    }]]);
    return this.#findings;
  }
}

/** Tables in an order where each comes after the tables its foreign keys reference (cycles: as found). */
function parentsFirst(tables: readonly TableInfo[]): TableInfo[] {
  const byOid = new Map(tables.map((t) => [t.oid, t]));
  const out: TableInfo[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (t: TableInfo) => {
    if (state.has(t.oid)) return;
    state.set(t.oid, 'visiting');
    for (const fk of t.fks) {
      const parent = byOid.get(fk.refOid);
      if (parent && parent !== t) visit(parent);
    }
    state.set(t.oid, 'done');
    out.push(t);
  };
  for (const t of tables) visit(t);
  return out;
}

/** Plans the tables of one target, or says why a table cannot be probed. */
function plan(tables: readonly TableInfo[], privileges: (t: TableInfo) => Privileges): { plans: TablePlan[]; skipped: { table: string; reason: string }[] } {
  const oids = new Set(tables.map((t) => t.oid));
  const plans: TablePlan[] = [];
  const skipped: { table: string; reason: string }[] = [];
  const referenced = new Map<string, Set<string>>();
  for (const t of tables) {
    for (const fk of t.fks) {
      if (!oids.has(fk.refOid)) continue;
      const set = referenced.get(fk.refOid) ?? new Set<string>();
      for (const c of fk.refCols) set.add(c);
      referenced.set(fk.refOid, set);
    }
  }
  for (const table of parentsFirst(tables)) {
    const explicit = new Set<string>(['tenant_id']);
    const parentKeys: ForeignKey[] = [];
    let reason: string | undefined;
    for (const fk of table.fks) {
      const required = fk.cols.some((c) => c !== 'tenant_id' && table.columns.find((x) => x.name === c)?.notnull);
      if (oids.has(fk.refOid)) {
        parentKeys.push(fk);
        if (fk.refOid !== table.oid || required) for (const c of fk.cols) explicit.add(c);
        if (fk.refOid === table.oid && required) for (const c of fk.refCols) explicit.add(c);
      } else if (required) {
        reason = `its foreign key ${fk.name} references a table outside the probed tenant tables and cannot be NULL`;
      }
    }
    for (const col of table.columns) {
      if (col.generated || col.identity_always) continue;
      if (col.notnull && !col.has_default) explicit.add(col.name);
    }
    for (const name of explicit) {
      const col = table.columns.find((c) => c.name === name);
      if (!col || name === 'tenant_id' || parentKeys.some((fk) => fk.refOid !== table.oid && fk.cols.includes(name))) continue;
      if (!candidatesOf(table, col).length) {
        reason = `column ${name} is of type ${col.type_name}, for which the probe cannot make a value`;
      }
    }
    if (reason) { skipped.push({ table: table.name, reason }); continue; }
    plans.push({ table, privileges: privileges(table), parentKeys, explicit, choice: new Map(), referenced: referenced.get(table.oid) ?? new Set() });
  }
  return { plans, skipped };
}

/**
 * The behavioural probe of many targets of one database. `sql` must be an admin pool (superuser or
 * the owner's member) that can SET ROLE to each target's runtime role.
 */
export async function probeTargets(sql: Sql, scopes: readonly ProbeScope[], opts: ProbeOptions = {}): Promise<Finding[]> {
  if (!scopes.length) return [];
  const catalog = await loadCatalog(sql, scopes);
  const findings: Finding[][] = scopes.map(() => []);
  const timeout = String(opts.statementTimeoutMs ?? 10_000);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < scopes.length; i = next++) {
      const scope = scopes[i]!;
      const out = findings[i]!;
      const tables = catalog.tables.get(scope.schema) ?? [];
      if (!tables.length) continue;
      if (catalog.usage.get(scope.schema) === false) {
        out.push({ target: scope.target, check: 'probe_skipped', object: scope.role, message: `not probed: ${scope.role} has no USAGE on schema ${scope.schema}` });
        continue;
      }
      const none: Privileges = { select: false, insert: false, update: false, delete: false };
      const { plans, skipped } = plan(tables, (t) => catalog.privileges.get(`${scope.schema}\0${t.oid}`) ?? none);
      for (const s of skipped) out.push({ target: scope.target, check: 'probe_skipped', object: s.table, message: `not probed: ${s.reason}` });
      if (!plans.length) continue;
      let conn: SqlConnection | undefined;
      try {
        conn = await sql.connect();
        await conn.pipeline([
          { text: 'begin' },
          {
            text: `select set_config('search_path', $1, true), set_config('statement_timeout', $2, true), set_config('lock_timeout', $2, true)`,
            params: [quoteIdent(scope.schema), timeout],
          },
        ]);
        out.push(...await new TargetProbe(conn, scope, plans, new Map(tables.map((t) => [t.oid, t.name]))).run());
      } catch (err) {
        out.push({ target: scope.target, check: 'probe_skipped', object: scope.schema, message: `the probe failed: ${describe(dbError(err))}` });
      } finally {
        if (conn) {
          const ok = await conn.query('rollback').then(() => true, () => false);
          conn.release(!ok);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 2, scopes.length)) }, worker));
  return findings.flat();
}
