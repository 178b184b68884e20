/**
 * The isolation checks of one target, once its setup rows are written: as the target's runtime
 * role with each synthetic tenant's context (exactly what the data plane sets: app.tenant_id, the
 * target's search_path, SET LOCAL ROLE), the tenant sees, updates and deletes its own rows and
 * none of the other's, can insert its own rows and not the other's (42501, row level security),
 * cannot move its row to the other tenant, and cannot point a foreign key at the other's row;
 * without a context, nothing is visible.
 *
 * The checks expected to succeed run as one pipeline per tenant (session.ts); the writes expected
 * to be refused, and the checks that depend on an earlier outcome, run after it, one round trip
 * each.
 */
import { randomUUID } from 'node:crypto';
import { quoteIdent, type Row, type SqlConnection, type Statement } from '../../data/driver/index.js';
import type { Finding } from '../audit.js';
import { RowWriter } from './row-writer.js';
import { parentKeysOf, type TablePlan } from './row-synthesis.js';
import { ProbeSession, dbError, describe, isRlsRefusal, tenantContext, type Check, type DbError } from './session.js';

/** A target to probe: its schema (the data plane's search_path) and the role its transactions run as. */
export interface ProbeScope {
  readonly schema: string;
  readonly target: string;
  readonly role: string;
}

/** The update that reads and writes back tenant_id only: every row it reaches keeps its values. */
const updateWhere = (table: string, tenant: string): Statement =>
  ({ text: `update ${table} set tenant_id = tenant_id where tenant_id = $1 returning 1 as n`, params: [tenant] });
const deleteWhere = (table: string, tenant: string): Statement =>
  ({ text: `delete from ${table} where tenant_id = $1 returning 1 as n`, params: [tenant] });

/**
 * `stmt` run with `self`'s context between two snapshots of `other`'s rows, taken with `other`'s
 * context: their ctids, which an update changes even when it changes no value (a new row version)
 * and a delete removes. The context is set back to `self`'s at the end, for the checks that
 * follow in the same savepoint. `touched` reads the two snapshots back from the rows; with no row
 * of `other` visible to `other` there is nothing to compare ('inconclusive', never a finding).
 */
function touching(table: string, stmt: Statement, self: string, other: string): Pick<Check, 'stmts'> & { touched(rows: Row[][]): 'touched' | 'untouched' | 'inconclusive' } {
  const snap: Statement = { text: `select coalesce(array_agg(ctid::text order by ctid), '{}') as c from ${table} where tenant_id = $1`, params: [other] };
  const stmts = [tenantContext(other), snap, tenantContext(self), stmt, tenantContext(other), snap, tenantContext(self)];
  const [BEFORE, AFTER] = [1, 5];
  return {
    stmts,
    touched(rows) {
      const before = (rows[BEFORE]?.[0] as { c: string[] } | undefined)?.c ?? [];
      const after = (rows[AFTER]?.[0] as { c: string[] } | undefined)?.c ?? [];
      if (!before.length) return 'inconclusive';
      return before.join() === after.join() ? 'untouched' : 'touched';
    },
  };
}

/**
 * The probe of one target, on one connection, in one transaction (begun and rolled back by the
 * caller, with the target's search_path and the timeouts set): the setup rows as the admin, then
 * every check as the runtime role.
 */
export class TargetProbe {
  readonly #session: ProbeSession;
  readonly #rows: RowWriter;
  readonly #scope: ProbeScope;
  readonly #plans: TablePlan[];
  readonly #findings: Finding[] = [];
  readonly #seen = new Set<string>();
  readonly #tenants = [randomUUID(), randomUUID()] as const;
  /** Names of every tenant table of the target, probed or not. */
  readonly #names: ReadonlyMap<string, string>;

  constructor(conn: SqlConnection, scope: ProbeScope, plans: TablePlan[], names: ReadonlyMap<string, string>) {
    this.#session = new ProbeSession(conn);
    this.#rows = new RowWriter(this.#session);
    this.#scope = scope;
    this.#plans = plans;
    this.#names = names;
  }

  /**
   * Records a finding; the same finding for the other synthetic tenant is not repeated (the two
   * tenants are random: a message differs only by their labels).
   */
  #add(check: string, object: string, message: string): void {
    const key = `${check}\0${object}\0${message.replace(/synthetic tenant [AB]/g, 'T')}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.#findings.push({ target: this.#scope.target, check, object, message });
  }

  #label(tenant: string): string {
    return tenant === this.#tenants[0] ? 'synthetic tenant A' : 'synthetic tenant B';
  }

  #nameOf(oid: string): string {
    return this.#names.get(oid) ?? oid;
  }

  /** Everything one tenant's context is checked for, against the other tenant. */
  async #probeTenant(probed: readonly TablePlan[], self: string, other: string): Promise<void> {
    const me = this.#label(self);
    const them = this.#label(other);
    const role = this.#scope.role;
    // One group per table (its checks share a savepoint, see ProbeSession.checks).
    const groups: Check[][] = [];
    // What needs an outcome of the pipeline, or is expected to fail: after it, one by one.
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
      // WHERE and RETURNING read columns: they need the SELECT privilege (without it, these
      // statements are refused before any policy is applied).
      if (p.update && p.select) {
        const withoutWhere = touching(t, { text: `update ${t} set tenant_id = $1`, params: [self] }, self, other);
        checks.push({
          stmts: [updateWhere(t, self)],
          judge: (r) => {
            if (r.error) this.#add('probe_update', name, `${me} could not update its own row (${describe(r.error)})`);
            else if (!r.rows[0]!.length) this.#add('probe_update', name, `${me}'s update of its own row changed nothing`);
            else state.ownUpdated = true;
          },
        }, {
          stmts: [updateWhere(t, other)],
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
          stmts: withoutWhere.stmts,
          judge: (r) => {
            if (r.error && (isRlsRefusal(r.error) || ['23503', '23505'].includes(r.error.code ?? ''))) {
              this.#add('probe_update', name, `${me}'s update without WHERE reached ${them}'s row (refused only by ${isRlsRefusal(r.error) ? 'WITH CHECK' : describe(r.error)})`);
            } else if (r.error) return this.#add('probe_skipped', name, `an update without WHERE as ${role} failed (${describe(r.error)})`);
            else if (withoutWhere.touched(r.rows) === 'touched') this.#add('probe_update', name, `${me}'s update without WHERE changed ${them}'s row`);
            else return;
            state.leaked = true;
          },
        });
        // Moving its own rows to the other tenant (no WHERE, no RETURNING: WITH CHECK alone
        // decides) must be refused by row level security, before any other constraint. Only once
        // its own update works and no leak was found (that update would reach the other's rows too).
        later.push(async () => {
          if (!state.ownUpdated || state.leaked) return;
          const r = await this.#session.run([{ text: `update ${t} set tenant_id = $1`, params: [other] }]);
          if (!r.error) this.#add('probe_update', name, `${me} moved its own row to ${them}`);
          else if (!isRlsRefusal(r.error)) this.#add('probe_update', name, `moving ${me}'s row to ${them} was not refused by row level security (it failed later: ${describe(r.error)})`);
        });
      }
      if (p.delete && p.select) {
        const withoutWhere = touching(t, { text: `delete from ${t}` }, self, other);
        checks.push({
          stmts: [deleteWhere(t, other)],
          judge: (r) => {
            if (r.error) this.#add('probe_delete', name, `${me}'s delete reached ${them}'s row (${describe(r.error)})`);
            else if (r.rows[0]!.length) this.#add('probe_delete', name, `${me} deleted ${r.rows[0]!.length} row(s) of ${them}`);
          },
        }, {
          stmts: withoutWhere.stmts,
          // An error (a key that holds its own rows back) proves nothing either way.
          judge: (r) => { if (!r.error && withoutWhere.touched(r.rows) === 'touched') this.#add('probe_delete', name, `${me}'s delete without WHERE deleted ${them}'s row`); },
        });
      }
      if (p.insert) {
        checks.push({
          stmts: [this.#rows.insert(plan, self)],
          judge: (r) => { state.ownInsert = r.error; },
        });
        later.push(async () => {
          let own = state.ownInsert;
          // Refused by a constraint (a unique value drawn twice, say): again, with other candidates.
          if (own && !isRlsRefusal(own)) own = (await this.#rows.write(plan, self, false)).error;
          if (own && isRlsRefusal(own)) this.#add('probe_insert', name, `${me} could not insert its own row (${describe(own)})`);
          else if (own) this.#add('probe_skipped', name, `inserting ${me}'s own row as ${role} failed (${describe(own)})`);
          const foreign = await this.#session.run([this.#rows.insert(plan, other)]);
          if (!foreign.error) this.#add('probe_insert', name, `${me} inserted a row of ${them}`);
          else if (!isRlsRefusal(foreign.error)) this.#add('probe_insert', name, `${me}'s insert of a row of ${them} was not refused by row level security (${describe(foreign.error)})`);
          // Its own row pointing at the other tenant's parent row: the key must not match (keys
          // do not compare tenants, so one direction is enough). Only once its own row can be
          // written: otherwise a refusal of this one proves nothing (that failure is reported above).
          if (own || self !== this.#tenants[0]) return;
          for (const fk of parentKeysOf(plan)) {
            const cross = await this.#session.run([this.#rows.insert(plan, self, (k) => (k === fk ? other : self))]);
            if (!cross.error) this.#add('probe_fk', `${name}.${fk.name}`, `a row of ${me} was written pointing at ${them}'s row of ${this.#nameOf(fk.refOid)}`);
          }
        });
      }
    }
    // Its own rows can be deleted (children first, so that no key holds them back).
    const deletable = probed.filter((p) => p.privileges.delete && p.privileges.select).reverse();
    if (deletable.length) {
      groups.push([{
        stmts: deletable.map((plan) => deleteWhere(quoteIdent(plan.table.name), self)),
        judge: (r) => {
          if (r.error) return this.#add('probe_skipped', this.#scope.schema, `deleting ${me}'s own rows as ${role} failed (${describe(r.error)})`);
          deletable.forEach((plan, i) => {
            if (!r.rows[i]!.length) this.#add('probe_delete', plan.table.name, `${me}'s delete of its own row deleted nothing`);
          });
        },
      }]);
    }
    await this.#session.checks(groups, [tenantContext(self)]);
    for (const step of later) await step();
  }

  async run(): Promise<Finding[]> {
    const [a, b] = this.#tenants;
    const probed = await this.#rows.setup(this.#plans, this.#tenants, (oid) => this.#nameOf(oid),
      (table, message) => this.#add('probe_skipped', table, message));
    if (!probed.length) return this.#findings;

    // From here on, the runtime role, as the data plane runs it.
    try {
      await this.#session.pipe([{ text: `select set_config('role', $1, true)`, params: [this.#scope.role] }]);
    } catch (err) {
      this.#add('probe_skipped', this.#scope.role, `not probed: cannot act as the runtime role (${describe(dbError(err))})`);
      return this.#findings;
    }
    await this.#probeTenant(probed, a, b);
    await this.#probeTenant(probed, b, a);

    // No context at all: nothing of either tenant is visible.
    const readable = probed.filter((p) => p.privileges.select);
    await this.#session.checks([[{
      stmts: [tenantContext(null), ...readable.map((plan) => ({ text: `select count(*)::int as n from ${quoteIdent(plan.table.name)} where tenant_id = any($1::uuid[])`, params: [[a, b]] }))],
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
