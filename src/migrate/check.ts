import { roles, schemas } from '../data/bootstrap.js';
import { createPool, type Sql } from '../data/driver/index.js';
import { auditRolesOf, auditRoutinesAndViewsOf, auditSearchRole, auditTablesOf, diffShapes, schemaShape, schemaShapes, type Finding } from './audit.js';
import { probeTargets } from './probe/index.js';
import { listTargets, type MigrationTarget } from './targets.js';

export interface AuditReport {
  readonly ok: boolean;
  readonly targets: number;
  readonly findings: readonly Finding[];
}

export interface AuditOptions {
  /** Databases audited at once, and targets of one database probed at once. */
  readonly concurrency?: number;
  /** Only these targets (default: every target of the platform). */
  readonly targets?: readonly MigrationTarget[];
  /**
   * The behavioural probe (probe/): rows of two synthetic tenants written and checked as each
   * target's runtime role, in a transaction that is rolled back. Default true; false leaves the
   * structural checks only.
   */
  readonly probe?: boolean;
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
 * A pool of the admin role on a database for the probe: unnamed statements only (the probe's
 * statements are per table; they must not fill the process-wide cache of statement names that
 * the data plane's statements use).
 */
async function withProbeSql<T>(url: string, max: number, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = createPool(url, { max, prepare: false, applicationName: 'tenantry-check' });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/**
 * `tenantry check`: the isolation and drift audit of every target. Each target's tables, policies,
 * keys, functions, views and runtime role are checked, its shape is compared with the reference —
 * the pooled schema of the control database — and, unless `probe: false`, a behavioural probe
 * writes and reads rows of two synthetic tenants as its runtime role (rolled back). Targets that
 * share a database (the pooled schema and every tenant schema) are audited together, a few catalog
 * queries for all of them; tenant databases one by one, `concurrency` at a time.
 */
export async function auditAll(admin: Sql, adminUrl: string, opts: AuditOptions = {}): Promise<AuditReport> {
  const targets = opts.targets ?? (await listTargets(admin, adminUrl));
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const reference = await schemaShape(admin, schemas.pooled);
  const findings: Finding[] = [];
  findings.push(...await auditRolesOf(admin, [{ role: roles.app, target: 'database:control' }]));
  findings.push(...await auditRoutinesAndViewsOf(admin, [{ schema: schemas.rls, target: 'database:control' }]));
  // The search role: its attributes once (roles are cluster-wide), what it owns and holds here.
  const controlScopes = targets.filter((t) => t.databaseUrl === adminUrl).map((t) => ({ schema: t.schema, target: t.id }));
  findings.push(...await auditSearchRole(admin, controlScopes, 'database:control', { cluster: true }));
  const byDatabase = new Map<string, MigrationTarget[]>();
  for (const t of targets) byDatabase.set(t.databaseUrl, [...(byDatabase.get(t.databaseUrl) ?? []), t]);
  // Big databases first, so that a thousand schema tenants do not wait behind the tenant databases.
  const queue = [...byDatabase.values()].sort((a, b) => b.length - a.length);
  const worker = async () => {
    for (let group = queue.shift(); group; group = queue.shift()) {
      const batch = group;
      const found = await withTargetSql(admin, adminUrl, batch[0]!, async (sql) => {
        const structural = await auditDatabase(sql, batch, reference, adminUrl);
        if (opts.probe === false) return structural;
        // Many targets in one database (schema tenants) are probed several at a time.
        const width = Math.min(batch.length, batch.length > 1 ? concurrency : 1);
        const behavioural = await withProbeSql(batch[0]!.databaseUrl, width, (probeSql) =>
          probeTargets(probeSql, batch.map((t) => ({ schema: t.schema, target: t.id, role: t.runtimeRole })), { concurrency: width }));
        return [...structural, ...behavioural];
      }).catch((err: Error) => batch.map((t) => ({ target: t.id, check: 'reachable', object: t.id, message: err.message })));
      findings.push(...found);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const order = new Map(targets.map((t, i) => [t.id, i]));
  findings.sort((a, b) => (order.get(a.target) ?? -1) - (order.get(b.target) ?? -1));
  return { ok: findings.length === 0, targets: targets.length, findings };
}

/** Audits the targets of one database, a chunk of schemas at a time. */
async function auditDatabase(sql: Sql, group: readonly MigrationTarget[], reference: readonly string[], adminUrl: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (let i = 0; i < group.length; i += 500) {
    const chunk = group.slice(i, i + 500);
    const scopes = chunk.map((t) => ({ schema: t.schema, target: t.id }));
    findings.push(...await auditTablesOf(sql, scopes));
    findings.push(...await auditRoutinesAndViewsOf(sql, scopes));
    // The control database's tenantry_app was audited once above.
    findings.push(...await auditRolesOf(sql, chunk
      .filter((t) => t.runtimeRole !== roles.app || t.databaseUrl !== adminUrl)
      .map((t) => ({ role: t.runtimeRole, target: t.id }))));
    // A tenant database (one target): what the search role owns and holds there.
    if (group[0]!.databaseUrl !== adminUrl && i === 0) findings.push(...await auditSearchRole(sql, scopes, group[0]!.id, { cluster: false }));
    const shapes = await schemaShapes(sql, chunk.map((t) => t.schema));
    for (const t of chunk) findings.push(...diffShapes(reference, shapes.get(t.schema) ?? [], t.id));
  }
  return findings;
}
