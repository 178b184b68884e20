/**
 * Writing synthetic rows: the setup rows (one per synthetic tenant in every probed table, parents
 * before children, written as the admin so that a broken policy cannot stop the probe before it
 * starts), and single rows whose candidates a constraint refuses, retried with the next ones.
 */
import type { Statement } from '../../data/driver/index.js';
import type { ForeignKey } from './catalog.js';
import {
  candidatesOf, columnOf, insertStatement, isRequired, isSetByParent, parentKeysOf, rowValues, type RowKey, type TablePlan,
} from './row-synthesis.js';
import { describe, tenantContext, type DbError, type ProbeSession, type Result } from './session.js';

/** How many rows one write may try before it gives up with the last error. */
const ATTEMPTS = 24;

export class RowWriter {
  readonly #session: ProbeSession;
  /** The setup rows written so far (see RowKey), by tenant and table oid. */
  readonly #rows = new Map<string, RowKey>();
  readonly #setupRow = (tenant: string, oid: string): RowKey | undefined => this.#rows.get(`${tenant}\0${oid}`);

  constructor(session: ProbeSession) {
    this.#session = session;
  }

  #setRow(tenant: string, oid: string, row: RowKey): void {
    this.#rows.set(`${tenant}\0${oid}`, row);
  }

  /** A new row of `tenant` (see rowValues), its foreign keys pointing at the setup rows. */
  values(plan: TablePlan, tenant: string, parentOf?: (fk: ForeignKey) => string): Map<string, string | null> {
    return rowValues(plan, tenant, this.#setupRow, { parentOf });
  }

  /** The INSERT of a new row of `tenant` that the probe expects to be judged, not kept. */
  insert(plan: TablePlan, tenant: string, parentOf?: (fk: ForeignKey) => string): Statement {
    return insertStatement(plan, this.values(plan, tenant, parentOf), false);
  }

  /**
   * Writes a row of `tenant` into the plan's table, moving columns to their next candidate while a
   * CHECK, NOT NULL or unique constraint refuses them. `keep`: the row stays (a setup row, written
   * as the admin; the candidates that worked become the plan's), otherwise it is rolled back (a
   * probed insert). Row level security refusals (42501) are returned at once, never retried: a
   * retry would hide the very refusal the probe looks for.
   */
  async write(plan: TablePlan, tenant: string, keep: boolean): Promise<Result> {
    const table = plan.table;
    const choice = new Map(plan.choice);
    const explicit = new Set(plan.explicit);
    // The columns a refusal is about: a CHECK or unique constraint's, or (a domain CHECK names
    // the domain, not the column) every column of that domain.
    const columnsOf = (e: DbError): string[] => {
      const k = e.constraint ? table.checks.find((c) => c.name === e.constraint) ?? table.uniques.find((u) => u.name === e.constraint) : undefined;
      if (k) return k.cols;
      return e.dataType ? table.columns.filter((c) => c.domain === e.dataType).map((c) => c.name) : [];
    };
    let result: Result = { error: { code: undefined, message: 'no attempt' } };
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      result = await this.#session.run([insertStatement(plan, rowValues(plan, tenant, this.#setupRow, { choice, explicit }), keep)], keep);
      const e = result.error;
      if (!e) {
        if (keep) {
          for (const [c, n] of choice) plan.choice.set(c, n);
          for (const c of explicit) plan.explicit.add(c);
          this.#setRow(tenant, table.oid, (result.rows[0]?.[0] ?? {}) as RowKey);
        }
        return result;
      }
      // NOT NULL on a column left to its default or NULL: give it a value from now on.
      if (e.code === '23502' && e.column && !explicit.has(e.column)) { explicit.add(e.column); continue; }
      if (e.code !== '23514' && e.code !== '23505') return result;
      // Values copied from a parent row, and tenant_id, are what the row is about: never moved.
      const movable = columnsOf(e).filter((c) => c !== 'tenant_id' && !isSetByParent(plan, c));
      let moved = false;
      for (const c of movable) {
        const col = columnOf(table, c);
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
   * by table with candidate retries. A table that gets no rows is reported through `skip`, and so
   * is a table whose required key needs a row of it. Returns the tables that got their rows, in
   * plan order.
   */
  async setup(plans: readonly TablePlan[], tenants: readonly string[], nameOf: (oid: string) => string,
    skip: (table: string, message: string) => void): Promise<TablePlan[]> {
    // Depth: 0 for a table without parents, else one more than its deepest parent. Plans are in
    // parents-first order, so a parent's depth is known when its children are reached; a parent
    // met later (a cycle) or not planned (skipped) counts as 0, and a child that requires a row of
    // it is caught as blocked below.
    const depth = new Map<string, number>();
    for (const plan of plans) {
      depth.set(plan.table.oid, 1 + Math.max(-1, ...parentKeysOf(plan).map((fk) => depth.get(fk.refOid) ?? 0)));
    }
    const levels: TablePlan[][] = [];
    for (const plan of plans) (levels[depth.get(plan.table.oid)!] ??= []).push(plan);
    const done: TablePlan[] = [];
    for (const level of levels.filter(Boolean)) {
      const ready: TablePlan[] = [];
      for (const plan of level) {
        const blocked = parentKeysOf(plan).find((fk) => !done.some((d) => d.table.oid === fk.refOid) && isRequired(plan.table, fk));
        if (!blocked) { ready.push(plan); continue; }
        skip(plan.table.name, `not probed: its foreign key ${blocked.name} needs a row of ${nameOf(blocked.refOid)}, which could not be written`);
      }
      const stmts = tenants.flatMap((tenant) => [tenantContext(tenant), ...ready.map((plan) => insertStatement(plan, this.values(plan, tenant), true))]);
      const batch = await this.#session.run(stmts, true);
      if (!batch.error) {
        // Per tenant: its context, then one row per ready table.
        tenants.forEach((tenant, i) => ready.forEach((plan, j) => {
          this.#setRow(tenant, plan.table.oid, (batch.rows[i * (ready.length + 1) + 1 + j]?.[0] ?? {}) as RowKey);
        }));
        done.push(...ready);
        continue;
      }
      for (const plan of ready) {
        let failure: DbError | undefined;
        for (const tenant of tenants) {
          await this.#session.pipe([tenantContext(tenant)]);
          const r = await this.write(plan, tenant, true);
          if (r.error) { failure = r.error; break; }
        }
        if (failure) skip(plan.table.name, `not probed: no synthetic row could be written (${describe(failure)})`);
        else done.push(plan);
      }
    }
    return plans.filter((p) => done.includes(p));
  }
}
