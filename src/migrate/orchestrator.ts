import { roles } from '../data/bootstrap.js';
import type { Sql } from '../data/driver/index.js';
import { applyMigrations, MigrationChecksumError, type TargetResult } from './apply-migrations.js';
import { auditAll, type AuditReport } from './check.js';
import type { MigrationFile } from './migration-files.js';
import { listTargets, type MigrationTarget } from './targets.js';
import { migrateTenantDatabase } from './tenant-migrator.js';

export interface MigrateOptions {
  /** Targets migrated at once (each holds one admin connection). */
  readonly concurrency?: number;
  /** Migrate this many targets first; go on to the rest only if none failed. */
  readonly canary?: number;
  /** Stop starting new targets after the first failure (the rest are reported `skipped`). */
  readonly stopOnError?: boolean;
  /** Report what each target would get; change nothing. */
  readonly dryRun?: boolean;
  /** Run `auditAll` after migrating (default true; not on a dry run). */
  readonly audit?: boolean;
  /** Called as each target finishes: drives the progress bar or JSON lines. */
  readonly onResult?: (result: TargetRunResult, progress: { done: number; total: number }) => void;
}

export interface TargetRunResult extends Omit<TargetResult, 'status'> {
  readonly status: TargetResult['status'] | 'skipped';
  readonly isolation: MigrationTarget['isolation'];
  readonly tenant: string | null;
  readonly wave: 'canary' | 'main';
  readonly durationMs: number;
}

export interface MigrationRun {
  readonly ok: boolean;
  readonly results: readonly TargetRunResult[];
  readonly counts: Readonly<Record<TargetRunResult['status'], number>>;
  readonly audit: AuditReport | null;
}

/**
 * Applies one migration source to every target — the pooled schema, each tenant schema, each
 * tenant database — with bounded concurrency and optional canary wave. Each target is one
 * transaction under an advisory lock with its own ledger, so the run can be killed at any moment
 * and run again: only what is pending is applied. A failure is a result, not an exception.
 */
export async function migrateAll(admin: Sql, adminUrl: string, files: readonly MigrationFile[], opts: MigrateOptions = {}): Promise<MigrationRun> {
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const all = await listTargets(admin, adminUrl);
  // Canaries are tenant targets (a small blast radius); the shared pooled schema goes with the rest.
  const tenantTargets = all.filter((t) => t.isolation !== 'pooled');
  const canaries = tenantTargets.slice(0, Math.max(0, opts.canary ?? 0));
  const rest = all.filter((t) => !canaries.includes(t));
  const results: TargetRunResult[] = [];
  let stop = false;
  let done = 0;

  const runOne = async (target: MigrationTarget, wave: 'canary' | 'main'): Promise<void> => {
    const started = performance.now();
    let r: TargetResult;
    if (stop) {
      r = { target: target.id, status: 'up_to_date', applied: [] };
      record({ ...r, status: 'skipped' }, target, wave, 0);
      return;
    }
    try {
      r = target.isolation === 'database'
        ? await migrateTenantDatabase(target.databaseUrl, files, target.id, opts.dryRun)
        : await applyMigrations(admin, target.schema, files, {
          ownerRole: roles.owner, grantTo: target.runtimeRole, label: target.id, dryRun: opts.dryRun, audit: true, tenantLog: true,
        });
    } catch (err) {
      // A changed checksum means the source is not the one that was applied: refuse the run.
      if (err instanceof MigrationChecksumError) stop = true;
      r = { target: target.id, status: 'failed', applied: [], error: (err as Error).message };
    }
    if (r.status === 'failed' && opts.stopOnError) stop = true;
    record(r, target, wave, performance.now() - started);
  };

  const record = (r: Omit<TargetRunResult, 'isolation' | 'tenant' | 'wave' | 'durationMs'>, target: MigrationTarget, wave: 'canary' | 'main', ms: number) => {
    const full: TargetRunResult = { ...r, isolation: target.isolation, tenant: target.tenantSlug, wave, durationMs: Math.round(ms) };
    results.push(full);
    done++;
    opts.onResult?.(full, { done, total: all.length });
  };

  const runWave = async (targets: readonly MigrationTarget[], wave: 'canary' | 'main') => {
    const queue = [...targets];
    await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
      for (let t = queue.shift(); t; t = queue.shift()) await runOne(t, wave);
    }));
  };

  await runWave(canaries, 'canary');
  if (results.some((r) => r.status === 'failed')) stop = true;
  await runWave(rest, 'main');

  const counts = { applied: 0, up_to_date: 0, pending: 0, failed: 0, skipped: 0 };
  for (const r of results) counts[r.status]++;
  const audit = opts.dryRun || opts.audit === false ? null : await auditAll(admin, adminUrl, { concurrency, targets: all });
  return { ok: counts.failed === 0 && counts.skipped === 0 && (audit?.ok ?? true), results, counts, audit };
}
