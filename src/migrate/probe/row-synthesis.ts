/**
 * Rows for tables the probe knows only from the catalog: candidate values per column type (the
 * literals of the column's CHECK constraints first, enum labels, domains, varchar lengths), which
 * columns a row must give (NOT NULL without a default, foreign keys to other probed tables), the
 * order tables are filled in (parents first), and the INSERT of a row. Pure: writing the rows,
 * with retries on the candidates a constraint refuses, is row-writer.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { quoteIdent, type Statement } from '../../data/driver/index.js';
import type { ColumnInfo, ForeignKey, Privileges, TableInfo } from './catalog.js';

/** String and number literals of a constraint definition: the values it is most likely to accept. */
function literals(def: string): { strings: string[]; numbers: string[] } {
  const strings: string[] = [];
  const numbers: string[] = [];
  const withoutStrings = def.replace(/'((?:[^']|'')*)'/g, (_, s: string) => { strings.push(s.replace(/''/g, "'")); return ' '; });
  // Numbers outside identifiers (`col2`), qualified names and quoted names.
  for (const m of withoutStrings.matchAll(/(?<![\w.$"])-?\d+(?:\.\d+)?(?![\w.$"])/g)) numbers.push(m[0]);
  return { strings, numbers };
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/**
 * Candidate values (text, given to the column's input function) for a column, best first; empty
 * when its type cannot be synthesised.
 *
 * Hazards for callers: random parts are fresh on every call (so that two rows never collide on a
 * unique column), which is why a plan stores the *index* of the candidate that worked, never the
 * value; an index is only meaningful while the list keeps its length and order from call to
 * call. `fit` de-duplicates, so in the rare call where a random number equals one of the fixed
 * ones ('1', '10', …) the list is one shorter and later indexes shift for that call.
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
export function candidatesOf(table: TableInfo, col: ColumnInfo): string[] {
  return candidates(col, table.checks.filter((k) => k.cols.includes(col.name)).map((k) => k.def));
}

export function columnOf(table: TableInfo, name: string): ColumnInfo | undefined {
  return table.columns.find((c) => c.name === name);
}

/** A foreign key that a row cannot leave NULL: one of its columns (tenant_id aside) is NOT NULL. */
export function isRequired(table: TableInfo, fk: ForeignKey): boolean {
  return fk.cols.some((c) => c !== 'tenant_id' && columnOf(table, c)?.notnull);
}

/** The plan's foreign keys to another probed table (not to itself): their parents are filled first. */
export function parentKeysOf(plan: TablePlan): ForeignKey[] {
  return plan.parentKeys.filter((fk) => fk.refOid !== plan.table.oid);
}

/**
 * A column whose value comes from a parent's setup row (a foreign key to another table): it is
 * never given a candidate, and never moved to another one when a constraint refuses the row.
 */
export function isSetByParent(plan: Pick<TablePlan, 'table' | 'parentKeys'>, column: string): boolean {
  return plan.parentKeys.some((fk) => fk.refOid !== plan.table.oid && fk.cols.includes(column));
}

/** What the probe knows about filling one table: the columns it gives values, and their chosen candidates. */
export interface TablePlan {
  readonly table: TableInfo;
  readonly privileges: Privileges;
  /** Foreign keys whose parent is a probed table of the same target (possibly this one). */
  readonly parentKeys: ForeignKey[];
  /** Columns given a value in every row (others take their default or NULL). Grows as the setup rows learn. */
  readonly explicit: Set<string>;
  /** Index of the candidate each explicit column uses (see candidates: indexes, not values). */
  readonly choice: Map<string, number>;
  /** Columns other tables' foreign keys read from this one's rows. */
  readonly referenced: Set<string>;
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

/**
 * Plans the tables of one target, parents first, or says why a table cannot be probed: a
 * required foreign key to a table outside the probed ones (no row to point at), or a column
 * that must be given a value of a type the probe cannot make.
 */
export function planTables(tables: readonly TableInfo[], privileges: (t: TableInfo) => Privileges): { plans: TablePlan[]; skipped: { table: string; reason: string }[] } {
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
      const required = isRequired(table, fk);
      if (oids.has(fk.refOid)) {
        parentKeys.push(fk);
        // A nullable self-reference stays NULL; a required one points the row at itself, so the
        // columns it references need values of their own.
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
      const col = columnOf(table, name);
      if (!col || name === 'tenant_id' || isSetByParent({ table, parentKeys }, name)) continue;
      if (!candidatesOf(table, col).length) {
        reason = `column ${name} is of type ${col.type_name}, for which the probe cannot make a value`;
      }
    }
    if (reason) { skipped.push({ table: table.name, reason }); continue; }
    plans.push({ table, privileges: privileges(table), parentKeys, explicit, choice: new Map(), referenced: referenced.get(table.oid) ?? new Set() });
  }
  return { plans, skipped };
}

/** One setup row: the text values of its referenced columns (what children's keys copy). */
export type RowKey = Record<string, string | null>;

/** How a row deviates from the plan: whose parent rows its keys point at, trial candidates. */
export interface RowVariant {
  /** The tenant whose setup row a foreign key points at (default: the row's own tenant). */
  readonly parentOf?: (fk: ForeignKey) => string;
  readonly choice?: ReadonlyMap<string, number>;
  readonly explicit?: ReadonlySet<string>;
}

/**
 * The values of a new row of `tenant` in the plan's table: the explicit columns' candidates, the
 * foreign keys copied from the setup rows (`setupRow(tenant, table oid)`), tenant_id. The map's
 * order is the INSERT's column order.
 */
export function rowValues(plan: TablePlan, tenant: string, setupRow: (tenant: string, oid: string) => RowKey | undefined,
  variant: RowVariant = {}): Map<string, string | null> {
  const { parentOf = () => tenant, choice = plan.choice, explicit = plan.explicit } = variant;
  const values = new Map<string, string | null>();
  for (const col of plan.table.columns) {
    if (!explicit.has(col.name) || col.name === 'tenant_id') continue;
    values.set(col.name, candidatesOf(plan.table, col)[choice.get(col.name) ?? 0] ?? null);
  }
  // Keys pointing at another tenant's parent last: where keys share a column, theirs wins (the
  // probe of a cross-tenant key must really point across).
  const keys = [...plan.parentKeys].sort((x, y) => Number(parentOf(x) !== tenant) - Number(parentOf(y) !== tenant));
  for (const fk of keys) {
    if (fk.refOid === plan.table.oid) {
      // A self-reference: nullable, it stays NULL; otherwise the row points at itself.
      fk.cols.forEach((c, i) => { if (c !== 'tenant_id' && explicit.has(c)) values.set(c, values.get(fk.refCols[i]!) ?? null); });
      continue;
    }
    const parent = setupRow(parentOf(fk), fk.refOid);
    fk.cols.forEach((c, i) => { if (c !== 'tenant_id') values.set(c, parent?.[fk.refCols[i]!] ?? null); });
  }
  values.set('tenant_id', tenant);
  return values;
}

/**
 * The INSERT of a row; `returning`: the columns children's keys read (as text), for a setup row.
 * Unqualified: the probe's transaction has the target's search_path, as the data plane does.
 */
export function insertStatement(plan: TablePlan, values: ReadonlyMap<string, string | null>, returning: boolean): Statement {
  const cols = [...values.keys()];
  const ret = returning && plan.referenced.size
    ? ` returning ${[...plan.referenced].map((c) => `${quoteIdent(c)}::text as ${quoteIdent(c)}`).join(', ')}`
    : '';
  return {
    text: `insert into ${quoteIdent(plan.table.name)} (${cols.map(quoteIdent).join(', ')}) values (${cols.map((_, i) => `$${i + 1}`).join(', ')})${ret}`,
    params: [...values.values()],
  };
}
