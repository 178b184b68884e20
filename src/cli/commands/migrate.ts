import { resolveOption } from '../../config/options.js';
import { loadMigrations } from '../../migrate/migration-files.js';
import type { TargetRunResult } from '../../migrate/orchestrator.js';
import { migratePlatform } from '../../migrate/platform.js';
import { CliUsageError, migrationsOption, type Command, type Stream } from '../command.js';
import { printAudit, table } from '../format.js';

/** --concurrency and friends: an integer ≥ min, or the fallback when absent. */
export function intFlag(value: string | boolean | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < min) throw new CliUsageError(`--${name} must be an integer ≥ ${min}`);
  return n;
}

export const migrate: Command = {
  name: 'migrate',
  summary: 'apply pending tenant migrations to every target',
  description: `Applies the tenant migration files to the pooled schema, every tenant schema and every tenant
database. Each target is migrated in its own transaction under an advisory lock and keeps its own
ledger: the command can be killed at any moment and run again. Then the isolation audit runs.`,
  options: {
    concurrency: { type: 'string', arg: 'N', default: '4', description: 'targets migrated at once' },
    canary: { type: 'string', arg: 'N', default: '0', description: 'migrate N tenant targets first; stop if any fails' },
    'stop-on-error': { type: 'boolean', description: 'start no new target after the first failure' },
    'dry-run': { type: 'boolean', description: 'print the plan: what each target would get' },
    migrations: migrationsOption,
  },
  json: 'JSON lines: one per target, then a summary',
  exitStatus: 'Exit status: 0 when every target is migrated and the audit passes, 1 otherwise.',
  async run(ctx) {
    const concurrency = intFlag(ctx.values.concurrency, 'concurrency', 4);
    const canary = intFlag(ctx.values.canary, 'canary', 0, 0);
    const files = await loadMigrations(ctx.migrationsDir());
    const url = await ctx.databaseUrl();
    const json = ctx.values.json === true || !ctx.stderr.isTTY;
    const bar = json ? undefined : progressBar(ctx.stderr);
    const run = await migratePlatform(url, files, {
      // The roles are cluster-wide: bootstrap with the configured password (as Tenantry.start does),
      // never a generated one that would lock out the servers already running on this cluster.
      rolePasswords: resolveOption('rolePasswords', {}, ctx.env),
      concurrency, canary, stopOnError: ctx.values['stop-on-error'] === true, dryRun: ctx.values['dry-run'] === true,
      onResult: (r, p) => (json ? ctx.print(JSON.stringify({ event: 'target', ...r })) : bar!(r, p)),
    });
    if (json) {
      ctx.print(JSON.stringify({ event: 'summary', ok: run.ok, counts: run.counts, audit: run.audit }));
    } else {
      ctx.stderr.write('\n');
      ctx.print(table(['target', 'tenant', 'wave', 'status', 'applied', 'ms', 'error'], run.results.map((r) => [
        r.target, r.tenant ?? '-', r.wave, r.status, r.applied.map((a) => a.version).join(',') || '-', String(r.durationMs), r.error ?? '',
      ])));
      ctx.print(`\n${Object.entries(run.counts).map(([k, v]) => `${k}: ${v}`).join('  ')}`);
      if (run.audit) printAudit(run.audit, ctx.print);
    }
    return run.ok ? 0 : 1;
  },
};

function progressBar(stream: Stream) {
  const failed: string[] = [];
  return (r: TargetRunResult, p: { done: number; total: number }) => {
    if (r.status === 'failed') failed.push(r.target);
    const width = 30;
    const filled = Math.round((p.done / Math.max(1, p.total)) * width);
    stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total}  failed ${failed.length}  ${r.target.slice(0, 40).padEnd(40)}`);
  };
}

/** The `migrate` command group. */
export const migrateCommands: readonly Command[] = [migrate];
