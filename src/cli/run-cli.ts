import { parseArgs, type ParseArgsConfig } from 'node:util';
import { bootstrapDatabase } from '../data/bootstrap.js';
import { createPool } from '../data/driver/index.js';
import { attachOrStartEmbedded, type EmbeddedServer } from '../embedded/embedded-postgres.js';
import { withPlatformScope } from '../context/tenant-context.js';
import { auditAll, type AuditReport } from '../migrate/check.js';
import { loadMigrations } from '../migrate/migration-files.js';
import { migrateAll, type TargetRunResult } from '../migrate/orchestrator.js';
import { migrateCatalog, Tenantry } from '../tenantry.js';
import type { Isolation, Tenant } from '../catalog/types.js';
import { isTenantryError } from '../errors.js';

/** A flag the application adds to `tenants create` (see TenantInit). */
export interface TenantInitOption {
  readonly type: 'string' | 'boolean';
  /** One line for `--help`. */
  readonly description: string;
}

/**
 * What an application adds to `tenants create`: its own flags, and the step that runs inside the
 * new tenant's context before the tenant becomes active (the `init` of Tenantry.createTenant; e.g.
 * the app's first user). The toolkit knows nothing of what the flags mean.
 */
export interface TenantInit<T = unknown> {
  readonly options: Readonly<Record<string, TenantInitOption>>;
  /**
   * Turns the flags into what `run` needs, before anything is started; throw CliUsageError for a
   * bad combination (exit status 2).
   */
  parse(values: Readonly<Record<string, string | boolean | undefined>>): T;
  /** Inside the new tenant's context. Must be idempotent: a creation cut off half-way is resumed by running it again. */
  run(tenantry: Tenantry, tenant: Tenant, input: T): Promise<void>;
}

export interface CliOptions {
  /** Default folder of tenant migrations (overridden by --migrations or TENANTRY_MIGRATIONS_DIR). */
  readonly migrationsDir: string;
  /** The application's part of `tenants create` (flags and an init step). */
  readonly tenantInit?: TenantInit;
  readonly stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env?: NodeJS.ProcessEnv;
}

const common = {
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  migrations: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const usage: Record<string, string> = {
  main: `Usage: tenantry <command> [options]

Commands:
  migrate              apply pending tenant migrations to every target
  check                isolation and drift audit of every target
  tenants list         list tenants
  tenants create       create a tenant in any placement
  tenants show ID      show a tenant (id or slug)
  tenants suspend ID   suspend a tenant
  tenants resume ID    resume a suspended tenant

Every command takes --json and --help. The database is DATABASE_URL, or the embedded
PostgreSQL of TENANTRY_DATA_DIR (default ./.tenantry) — the one \`npm start\` runs, if it is up.`,
  migrate: `Usage: tenantry migrate [--concurrency N] [--canary N] [--stop-on-error] [--dry-run] [--migrations DIR] [--json]

Applies the tenant migration files to the pooled schema, every tenant schema and every tenant
database. Each target is migrated in its own transaction under an advisory lock and keeps its own
ledger: the command can be killed at any moment and run again. Then the isolation audit runs.

  --concurrency N    targets migrated at once (default 4)
  --canary N         migrate N tenant targets first; stop if any fails (default 0)
  --stop-on-error    start no new target after the first failure
  --dry-run          print the plan: what each target would get
  --migrations DIR   folder of NNNN_name.sql files (default: the app's migrations)
  --json             JSON lines: one per target, then a summary

Exit status: 0 when every target is migrated and the audit passes, 1 otherwise.`,
  check: `Usage: tenantry check [--json]

Audits every target: each tenant table has tenant_id uuid NOT NULL, RLS enabled and forced,
policies for every command with USING and WITH CHECK, an index leading with tenant_id; the runtime
roles are not owners, superusers or BYPASSRLS and cannot CREATE; no SECURITY DEFINER function
without a pinned search_path; no view without security_invoker; every target's schema equals the
reference (drift). Exit status 0 when clean, 1 with findings.`,
  tenants: `Usage: tenantry tenants <list|create|show|suspend|resume> [options] [--json]

  list [--limit N]
  create --slug SLUG --name NAME [--plan PLAN] [--isolation pooled|schema|database]{init}
  show ID|SLUG
  suspend ID|SLUG
  resume ID|SLUG`,
};

/** A wrong command line: the message is printed and the exit status is 2. */
export class CliUsageError extends Error {}

/** The usage of `tenants`, with the flags the application adds to `create`. */
function tenantsUsage(init: TenantInit | undefined): string {
  const lines = Object.entries(init?.options ?? {}).map(([name, o]) => `\n         [--${name}${o.type === 'string' ? ' VALUE' : ''}]  ${o.description}`);
  return usage.tenants!.replace('{init}', lines.join(''));
}

/** Runs the `tenantry` command line; returns the exit status. */
export async function runCli(argv: readonly string[], opts: CliOptions): Promise<number> {
  const out = opts.stdout ?? process.stdout;
  const err = opts.stderr ?? process.stderr;
  const env = opts.env ?? process.env;
  const print = (s: string) => out.write(s + '\n');
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    print(usage.main!);
    return command ? 0 : 2;
  }
  let embedded: EmbeddedServer | undefined;
  const databaseUrl = async () => {
    if (env.DATABASE_URL) return env.DATABASE_URL;
    embedded = await attachOrStartEmbedded(env.TENANTRY_DATA_DIR ?? '.tenantry');
    return embedded.url;
  };
  try {
    switch (command) {
      case 'migrate': return await migrateCommand(rest, opts, print, err, databaseUrl, env);
      case 'check': return await checkCommand(rest, print, databaseUrl);
      case 'tenants': return await tenantsCommand(rest, opts, print, databaseUrl, env);
      default: throw new CliUsageError(`unknown command "${command}"\n\n${usage.main}`);
    }
  } catch (e) {
    if (e instanceof CliUsageError) { err.write(e.message + '\n'); return 2; }
    if (isTenantryError(e)) { err.write(`error: ${e.code}: ${e.message}\n`); return 1; }
    err.write(`error: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await embedded?.stop();
  }
}

function parse<T extends ParseArgsConfig['options']>(args: readonly string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: [...args], options: { ...common, ...options }, allowPositionals, strict: true });
  } catch (e) {
    throw new CliUsageError((e as Error).message);
  }
}

function positiveInt(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CliUsageError(`--${name} must be an integer ≥ ${min}`);
  return n;
}

async function migrateCommand(args: readonly string[], opts: CliOptions, print: (s: string) => void,
  err: NodeJS.WritableStream & { isTTY?: boolean }, databaseUrl: () => Promise<string>, env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parse(args, {
    concurrency: { type: 'string' }, canary: { type: 'string' },
    'stop-on-error': { type: 'boolean', default: false }, 'dry-run': { type: 'boolean', default: false },
  });
  if (values.help) { print(usage.migrate!); return 0; }
  const concurrency = positiveInt(values.concurrency, 'concurrency', 4);
  const canary = positiveInt(values.canary, 'canary', 0, 0);
  const files = await loadMigrations(values.migrations ?? env.TENANTRY_MIGRATIONS_DIR ?? opts.migrationsDir);
  const url = await databaseUrl();
  const admin = createPool(url, { max: concurrency + 1, applicationName: 'tenantry-migrate' });
  const json = values.json || !err.isTTY;
  try {
    // The roles are cluster-wide: bootstrap with the configured password (as Tenantry.start does),
    // never a generated one that would lock out the servers already running on this cluster.
    const rolePassword = env.TENANTRY_DB_ROLE_PASSWORD;
    await bootstrapDatabase(admin, rolePassword ? { app: rolePassword, platform: rolePassword } : undefined);
    const catalog = await migrateCatalog(admin);
    if (catalog.status === 'failed') throw new Error(`catalog migration failed: ${catalog.error}`);
    const bar = !json ? progressBar(err) : undefined;
    const run = await migrateAll(admin, url, files, {
      concurrency, canary, stopOnError: values['stop-on-error'], dryRun: values['dry-run'],
      onResult: (r, p) => (json ? print(JSON.stringify({ event: 'target', ...r })) : bar!(r, p)),
    });
    if (json) {
      print(JSON.stringify({ event: 'summary', ok: run.ok, counts: run.counts, audit: run.audit }));
    } else {
      err.write('\n');
      print(table(['target', 'tenant', 'wave', 'status', 'applied', 'ms', 'error'], run.results.map((r) => [
        r.target, r.tenant ?? '-', r.wave, r.status, r.applied.map((a) => a.version).join(',') || '-', String(r.durationMs), r.error ?? '',
      ])));
      print(`\n${Object.entries(run.counts).map(([k, v]) => `${k}: ${v}`).join('  ')}`);
      if (run.audit) printAudit(run.audit, print);
    }
    return run.ok ? 0 : 1;
  } finally {
    await admin.end();
  }
}

async function checkCommand(args: readonly string[], print: (s: string) => void, databaseUrl: () => Promise<string>): Promise<number> {
  const { values } = parse(args, {});
  if (values.help) { print(usage.check!); return 0; }
  const url = await databaseUrl();
  const admin = createPool(url, { max: 5, applicationName: 'tenantry-check' });
  try {
    const report = await auditAll(admin, url);
    if (values.json) print(JSON.stringify(report));
    else printAudit(report, print);
    return report.ok ? 0 : 1;
  } finally {
    await admin.end();
  }
}

function tenantRow(t: Tenant) {
  return { id: t.id, slug: t.slug, name: t.name, status: t.status, plan: t.plan, isolation: t.isolation, shard: t.shard, created_at: t.createdAt };
}

async function tenantsCommand(args: readonly string[], opts: CliOptions, print: (s: string) => void,
  databaseUrl: () => Promise<string>, env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = args;
  const help = tenantsUsage(opts.tenantInit);
  if (!sub || sub === '--help' || sub === '-h') { print(help); return sub ? 0 : 2; }
  const own = {
    slug: { type: 'string' }, name: { type: 'string' }, plan: { type: 'string' }, isolation: { type: 'string' }, limit: { type: 'string' },
  } as const;
  const initOptions = Object.fromEntries(Object.entries(opts.tenantInit?.options ?? {}).map(([k, o]) => {
    if (k in own || k in common) throw new Error(`the application's tenant init flag --${k} clashes with a flag of the CLI`);
    return [k, { type: o.type }];
  }));
  const { values, positionals } = parse(rest, { ...own, ...initOptions }, true);
  if (values.help) { print(help); return 0; }
  if (!['list', 'create', 'show', 'suspend', 'resume'].includes(sub)) throw new CliUsageError(`unknown tenants command "${sub}"\n\n${help}`);
  const initValues = Object.fromEntries(Object.keys(initOptions).map((k) => [k, (values as Record<string, string | boolean | undefined>)[k]]));
  const initInput: unknown = sub === 'create' && opts.tenantInit ? opts.tenantInit.parse(initValues) : undefined;
  const tenantry = await Tenantry.start({ databaseUrl: await databaseUrl(), migrationsDir: values.migrations ?? env.TENANTRY_MIGRATIONS_DIR ?? opts.migrationsDir });
  const scoped = <T>(reason: string, fn: () => Promise<T>) => withPlatformScope({ actor: 'cli', reason }, fn);
  const emit = (value: unknown, human: () => string) => print(values.json ? JSON.stringify(value) : human());
  const find = async () => {
    const key = positionals[0];
    if (!key) throw new CliUsageError(`tenants ${sub} needs a tenant id or slug`);
    const t = await scoped(`${sub} tenant`, () => tenantry.catalog.findBySlugOrId(key));
    if (!t) throw new CliUsageError(`no tenant "${key}"`);
    return t;
  };
  try {
    switch (sub) {
      case 'list': {
        const limit = positiveInt(values.limit, 'limit', 1000);
        const tenants = (await scoped('list tenants', () => tenantry.catalog.list({ limit }))).map(tenantRow);
        emit(tenants, () => table(['id', 'slug', 'name', 'status', 'plan', 'isolation'], tenants.map((t) => [t.id, t.slug, t.name, t.status, t.plan, t.isolation])));
        return 0;
      }
      case 'show': {
        const t = tenantRow(await find());
        emit(t, () => Object.entries(t).map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n'));
        return 0;
      }
      case 'suspend':
      case 'resume': {
        const t = await find();
        const updated = await scoped(`${sub} tenant`, () => tenantry.setTenantStatus(t.id, sub === 'suspend' ? 'suspended' : 'active'));
        emit(tenantRow(updated!), () => `${updated!.slug}: ${updated!.status}`);
        return 0;
      }
      case 'create': {
        if (!values.slug || !values.name) throw new CliUsageError('tenants create needs --slug and --name');
        const isolation = values.isolation as Isolation | undefined;
        if (isolation && !['pooled', 'schema', 'database'].includes(isolation)) throw new CliUsageError('--isolation must be pooled, schema or database');
        const init = opts.tenantInit;
        const { tenant } = await scoped(`create tenant ${values.slug}`, () => tenantry.createTenant(
          { slug: values.slug!, name: values.name!, plan: values.plan, isolation },
          (t) => init?.run(tenantry, t, initInput) ?? Promise.resolve()));
        emit(tenantRow(tenant), () => `created ${tenant.slug} (${tenant.id}), ${tenant.isolation} placement`);
        return 0;
      }
    }
    return 2;
  } finally {
    await tenantry.close();
  }
}

function printAudit(report: AuditReport, print: (s: string) => void): void {
  if (report.ok) { print(`audit: ${report.targets} targets, no findings`); return; }
  print(`audit: ${report.targets} targets, ${report.findings.length} findings`);
  print(table(['target', 'check', 'object', 'message'], report.findings.map((f) => [f.target, f.check, f.object, f.message])));
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length))));
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').slice(0, 60).padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function progressBar(stream: NodeJS.WritableStream) {
  const failed: string[] = [];
  return (r: TargetRunResult, p: { done: number; total: number }) => {
    if (r.status === 'failed') failed.push(r.target);
    const width = 30;
    const filled = Math.round((p.done / Math.max(1, p.total)) * width);
    stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total}  failed ${failed.length}  ${r.target.slice(0, 40).padEnd(40)}`);
  };
}
