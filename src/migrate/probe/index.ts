/**
 * The behavioural half of the isolation proof (the structural half is policy-proof.ts): on each
 * target, in one transaction that is always rolled back, rows of two synthetic tenants (random
 * UUIDs) are written into every tenant table, and then, as the target's runtime role with each
 * tenant's context, the probe checks that neither tenant can see, change, delete, write or point
 * at the other's rows (isolation-probe.ts).
 *
 * Nothing about the schema is hard-coded: tables, columns, types, CHECK constraints, foreign keys
 * and unique indexes come from the catalog (catalog.ts), and rows are synthesised from them
 * (row-synthesis.ts, row-writer.ts). A table that cannot be filled this way is reported as
 * `probe_skipped`, never passed in silence.
 *
 *   index.ts           probeTargets: catalog, plans, one connection and transaction per target
 *   catalog.ts         what is read of the catalog
 *   row-synthesis.ts   candidate values, which columns a row gives, parents first, the INSERT
 *   row-writer.ts      the setup rows, and retries on the candidates a constraint refuses
 *   session.ts         savepoints and pipelines on the probe's connection
 *   isolation-probe.ts the checks of one target
 */
import { quoteIdent, type Sql, type SqlConnection } from '../../data/driver/index.js';
import type { Finding } from '../audit.js';
import { loadCatalog } from './catalog.js';
import { TargetProbe, type ProbeScope } from './isolation-probe.js';
import { planTables } from './row-synthesis.js';
import { dbError, describe } from './session.js';

export type { ProbeScope } from './isolation-probe.js';

export interface ProbeOptions {
  /** Targets probed at once (each holds one connection for its transaction). */
  readonly concurrency?: number;
  /** Statement and lock timeouts inside the probe transaction, ms. */
  readonly statementTimeoutMs?: number;
}

/**
 * The behavioural probe of many targets of one database. `sql` must be an admin pool (superuser or
 * the owner's member) that can SET ROLE to each target's runtime role. Findings come in the order
 * of `scopes`.
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
      const skip = (object: string, message: string) => out.push({ target: scope.target, check: 'probe_skipped', object, message });
      const tables = catalog.tables.get(scope.schema) ?? [];
      if (!tables.length) continue;
      if (catalog.usage.get(scope.schema) === false) {
        skip(scope.role, `not probed: ${scope.role} has no USAGE on schema ${scope.schema}`);
        continue;
      }
      const { plans, skipped } = planTables(tables, (t) => catalog.privileges(scope.schema, t));
      for (const s of skipped) skip(s.table, `not probed: ${s.reason}`);
      if (!plans.length) continue;
      let conn: SqlConnection | undefined;
      try {
        conn = await sql.connect();
        // search_path as the data plane sets it (the probe's statements name tables unqualified);
        // the timeouts bound a probe that meets a lock held by a running application.
        await conn.pipeline([
          { text: 'begin' },
          {
            text: `select set_config('search_path', $1, true), set_config('statement_timeout', $2, true), set_config('lock_timeout', $2, true)`,
            params: [quoteIdent(scope.schema), timeout],
          },
        ]);
        out.push(...await new TargetProbe(conn, scope, plans, new Map(tables.map((t) => [t.oid, t.name]))).run());
      } catch (err) {
        skip(scope.schema, `the probe failed: ${describe(dbError(err))}`);
      } finally {
        if (conn) {
          // Whatever happened, nothing of the probe is committed; a connection whose rollback
          // failed is closed rather than handed back in an unknown state.
          const ok = await conn.query('rollback').then(() => true, () => false);
          conn.release(!ok);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 2, scopes.length)) }, worker));
  return findings.flat();
}
