import type { Sql } from '../data/driver/index.js';
import { ident } from '../data/driver/index.js';
import type { MigrationFile } from './migration-files.js';
import { auditTables } from './audit.js';
import { TENANT_LOG_TABLE, tenantLogDdl } from '../audit-log/tenant-log-sql.js';

export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly durationMs: number;
}

export interface TargetResult {
  readonly target: string;
  readonly status: 'applied' | 'up_to_date' | 'pending' | 'failed';
  readonly applied: readonly AppliedMigration[];
  readonly error?: string;
}

export class MigrationChecksumError extends Error {
  constructor(target: string, version: number, name: string) {
    super(`migration ${version}_${name} was already applied to ${target} with a different checksum; ` +
      'applied migrations are immutable: add a new migration instead');
    this.name = 'MigrationChecksumError';
  }
}

/** Rolls back a dry run's transaction (which may have created the ledger table). */
class DryRun extends Error {}

export interface ApplyOptions {
  /** Role that owns the objects the migrations create (never the runtime role). */
  readonly ownerRole: string;
  /** A label for results and errors, e.g. "shard default / schema app". */
  readonly label?: string;
  /**
   * The runtime role of this target: gets USAGE on the schema, DML on its tables and EXECUTE on
   * its functions (re-granted after every run, so what a migration adds is usable at once), never
   * the ledger.
   */
  readonly grantTo?: string;
  /** Only report what would be applied. */
  readonly dryRun?: boolean;
  /**
   * Check the isolation rules of the schema's tables before committing (auditTables); a
   * migration that breaks them is rolled back on this target and reported as failed.
   */
  readonly audit?: boolean;
  /**
   * A tenant target: it gets the tenant audit log table (tenantry_audit_log, see
   * src/audit-log/tenant-log-sql.ts) before its migrations, and its runtime role may only read and
   * insert entries.
   */
  readonly tenantLog?: boolean;
  /** Tables of the schema the runtime role may read and insert into, never update or delete (audit logs). */
  readonly appendOnly?: readonly string[];
}

/**
 * Applies pending migrations to one schema, in one transaction, under an advisory lock keyed by
 * the schema, so two runners never interleave on a target and a crash leaves nothing half-done.
 * The files are written without schema names: search_path decides where they land, which is what
 * lets one migration source serve every placement.
 */
export async function applyMigrations(
  admin: Sql,
  schema: string,
  files: readonly MigrationFile[],
  options: ApplyOptions,
): Promise<TargetResult> {
  const label = options.label ?? schema;
  const applied: AppliedMigration[] = [];
  try {
    await admin.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['tenantry.migrate', schema]);
      await tx.query(`set local role ${ident(options.ownerRole)}`);
      await tx.query(`select set_config('search_path', $1, true)`, [ident(schema)]);
      await tx.query(`create table if not exists ${ident(schema)}.tenantry_migrations (
        version integer primary key,
        name text not null,
        checksum text not null,
        applied_at timestamptz not null default now(),
        duration_ms integer not null
      )`);
      if (options.tenantLog && !options.dryRun) {
        // Created once (its ALTERs would otherwise lock the log against appends on every run).
        const [log] = await tx.query<{ present: boolean }>('select to_regclass($1) is not null as present', [`${ident(schema)}.tenantry_audit_log`]);
        if (!log?.present) for (const ddl of tenantLogDdl(ident(schema))) await tx.query(ddl);
      }
      const done = await tx.query<{ version: number; name: string; checksum: string }>(
        `select version, name, checksum from ${ident(schema)}.tenantry_migrations order by version`,
      );
      const byVersion = new Map(done.map((r) => [r.version, r]));
      for (const file of files) {
        const prior = byVersion.get(file.version);
        if (prior) {
          if (prior.checksum !== file.checksum) throw new MigrationChecksumError(label, file.version, file.name);
          continue;
        }
        if (options.dryRun) {
          applied.push({ version: file.version, name: file.name, durationMs: 0 });
          continue;
        }
        const started = performance.now();
        await tx.execute(file.sql);
        const durationMs = Math.round(performance.now() - started);
        await tx.query(
          `insert into ${ident(schema)}.tenantry_migrations (version, name, checksum, duration_ms) values ($1, $2, $3, $4)`,
          [file.version, file.name, file.checksum, durationMs],
        );
        applied.push({ version: file.version, name: file.name, durationMs });
      }
      if (options.grantTo && !options.dryRun) {
        const role = ident(options.grantTo);
        await tx.query(`grant usage on schema ${ident(schema)} to ${role}`);
        await tx.query(`grant select, insert, update, delete on all tables in schema ${ident(schema)} to ${role}`);
        await tx.query(`revoke all on ${ident(schema)}.tenantry_migrations from ${role}`);
        const appendOnly = [...(options.appendOnly ?? []), ...(options.tenantLog ? [TENANT_LOG_TABLE] : [])];
        for (const table of appendOnly) await tx.query(`revoke update, delete, truncate on ${ident(schema)}.${ident(table)} from ${role}`);
        // Functions too, for those a migration took from PUBLIC (a search function owned by the
        // search role): only the target's runtime role calls them. The rest keep PUBLIC's default.
        await tx.query(`grant execute on all functions in schema ${ident(schema)} to ${role}`);
      }
      if (options.audit && applied.length && !options.dryRun) {
        const findings = await auditTables(tx as unknown as Sql, schema, label);
        if (findings.length) {
          throw new Error(`isolation audit failed, rolled back: ${findings.map((f) => `${f.object}: ${f.message}`).join('; ')}`);
        }
      }
      if (options.dryRun) throw new DryRun();
    });
    return { target: label, status: applied.length ? 'applied' : 'up_to_date', applied };
  } catch (err) {
    if (err instanceof DryRun) return { target: label, status: applied.length ? 'pending' : 'up_to_date', applied };
    if (err instanceof MigrationChecksumError) throw err;
    return { target: label, status: 'failed', applied: [], error: (err as Error).message };
  }
}
