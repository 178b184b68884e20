import { roles, schemas } from '../data/bootstrap.js';
import { createPool, type Sql } from '../data/postgres-driver.js';
import { auditRole, auditRoutinesAndViews, auditTables, diffShapes, schemaShape, type Finding } from './audit.js';
import { listTargets, type MigrationTarget } from './targets.js';

export interface AuditReport {
  readonly ok: boolean;
  readonly targets: number;
  readonly findings: readonly Finding[];
}

/** Runs `fn` on an admin connection to the target's database (shared for the control database). */
export async function withTargetSql<T>(admin: Sql, adminUrl: string, target: MigrationTarget, fn: (sql: Sql) => Promise<T>): Promise<T> {
  if (target.databaseUrl === adminUrl) return fn(admin);
  const sql = createPool(target.databaseUrl, { max: 1, applicationName: 'tenantry-check' });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/**
 * `tenantry check`: the isolation and drift audit of every target. Each target's tables, functions,
 * views and runtime role are checked, and its shape is compared with the reference — the pooled
 * schema of the control database.
 */
export async function auditAll(admin: Sql, adminUrl: string, opts: { concurrency?: number; targets?: readonly MigrationTarget[] } = {}): Promise<AuditReport> {
  const targets = opts.targets ?? (await listTargets(admin, adminUrl));
  const reference = await schemaShape(admin, schemas.pooled);
  const findings: Finding[] = [];
  findings.push(...await auditRole(admin, roles.app, 'database:control'));
  findings.push(...await auditRoutinesAndViews(admin, schemas.rls, 'database:control'));
  const queue = [...targets];
  const worker = async () => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      const target = t;
      const found = await withTargetSql(admin, adminUrl, target, async (sql) => [
        ...await auditTables(sql, target.schema, target.id),
        ...await auditRoutinesAndViews(sql, target.schema, target.id),
        ...(target.runtimeRole !== roles.app || target.databaseUrl !== adminUrl ? await auditRole(sql, target.runtimeRole, target.id) : []),
        ...diffShapes(reference, await schemaShape(sql, target.schema), target.id),
      ]).catch((err: Error) => [{ target: target.id, check: 'reachable', object: target.id, message: err.message }]);
      findings.push(...found);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  return { ok: findings.length === 0, targets: targets.length, findings };
}
