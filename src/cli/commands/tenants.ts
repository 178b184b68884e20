import type { Isolation, Tenant } from '../../catalog/types.js';
import { withPlatformScope } from '../../context/tenant-context.js';
import { DatabaseNotPreparedError } from '../../data/bootstrap.js';
import { Tenantry } from '../../tenantry.js';
import { CliUsageError, migrationsOption, type CliContext, type Command } from '../command.js';
import { table } from '../format.js';
import { intFlag } from './migrate.js';
import { limitsView, scalarLimits, type LimitsPatch } from '../../limits/index.js';

/** A tenant as the CLI prints it (JSON and text). */
function tenantRow(t: Tenant) {
  return { id: t.id, slug: t.slug, name: t.name, status: t.status, plan: t.plan, isolation: t.isolation, shard: t.shard, created_at: t.createdAt };
}

/**
 * Runs `fn` with the toolkit started on the CLI's database, in the platform scope (actor `cli`).
 * `ddl: false` starts it without bootstrap and migrations — reading and changing catalog rows needs
 * no DDL, so a role that cannot create anything can run the command; a database tenantry has not
 * prepared yet is prepared as before (the command worked on a fresh database and still does).
 */
async function withTenantry<T>(ctx: CliContext, reason: string, opts: { ddl: boolean }, fn: (tenantry: Tenantry) => Promise<T>): Promise<T> {
  const options = { databaseUrl: await ctx.databaseUrl(), migrationsDir: ctx.migrationsDir(), appPlans: ctx.appPlans };
  let tenantry: Tenantry;
  if (opts.ddl) {
    tenantry = await Tenantry.start(options);
  } else {
    try {
      tenantry = await Tenantry.start({ ...options, bootstrap: false, migrate: false });
    } catch (err) {
      if (!(err instanceof DatabaseNotPreparedError)) throw err;
      tenantry = await Tenantry.start(options);
    }
  }
  try {
    return await withPlatformScope({ actor: 'cli', reason }, () => fn(tenantry));
  } finally {
    await tenantry.close();
  }
}

/** The tenant named by the first positional argument (id or slug), or exit 2. */
async function named(ctx: CliContext, command: string, tenantry: Tenantry): Promise<Tenant> {
  const key = ctx.positionals[0];
  if (!key) throw new CliUsageError(`tenants ${command} needs a tenant id or slug`);
  const t = await tenantry.catalog.findBySlugOrId(key);
  if (!t) throw new CliUsageError(`no tenant "${key}"`);
  return t;
}

export const list: Command = {
  name: 'tenants list',
  summary: 'list tenants',
  options: { limit: { type: 'string', arg: 'N', default: '1000', description: 'at most N tenants, in id order' } },
  json: 'one JSON array',
  async run(ctx) {
    const limit = intFlag(ctx.values.limit, 'limit', 1000);
    const tenants = (await withTenantry(ctx, 'list tenants', { ddl: false }, (t) => t.catalog.list({ limit }))).map(tenantRow);
    ctx.emit(tenants, () => table(['id', 'slug', 'name', 'status', 'plan', 'isolation'], tenants.map((t) => [t.id, t.slug, t.name, t.status, t.plan, t.isolation])));
    return 0;
  },
};

const isolations: readonly Isolation[] = ['pooled', 'schema', 'database'];

export const create: Command = {
  name: 'tenants create',
  summary: 'create a tenant in any placement',
  description: `Creates the tenant's catalog row, its placement (schema or database, migrated) and what the
application adds, then makes it active. Running it again finishes a creation that was cut off.`,
  options: {
    slug: { type: 'string', arg: 'SLUG', required: true, description: 'the tenant\'s slug (its subdomain)' },
    name: { type: 'string', arg: 'NAME', required: true, description: 'display name' },
    plan: { type: 'string', arg: 'PLAN', description: 'plan; decides the placement when --isolation is not given (default free)' },
    isolation: { type: 'string', arg: 'pooled|schema|database', description: 'placement of the tenant\'s data' },
    migrations: migrationsOption,
  },
  json: 'the tenant as one JSON object',
  takesTenantInit: true,
  async run(ctx) {
    const slug = ctx.values.slug as string | undefined;
    const name = ctx.values.name as string | undefined;
    if (!slug || !name) throw new CliUsageError('tenants create needs --slug and --name');
    const isolation = ctx.values.isolation as Isolation | undefined;
    if (isolation && !isolations.includes(isolation)) throw new CliUsageError('--isolation must be pooled, schema or database');
    const init = ctx.tenantInit;
    const initValues = Object.fromEntries(Object.keys(init?.options ?? {}).map((k) => [k, ctx.values[k]]));
    const initInput: unknown = init ? init.parse(initValues) : undefined;
    const { tenant } = await withTenantry(ctx, `create tenant ${slug}`, { ddl: true }, (tenantry) => tenantry.createTenant(
      { slug, name, plan: ctx.values.plan as string | undefined, isolation },
      (t) => init?.run(tenantry, t, initInput) ?? Promise.resolve()));
    ctx.emit(tenantRow(tenant), () => `created ${tenant.slug} (${tenant.id}), ${tenant.isolation} placement`);
    return 0;
  },
};

export const show: Command = {
  name: 'tenants show',
  summary: 'show a tenant (id or slug)',
  positionals: 'ID|SLUG',
  options: {},
  json: 'the tenant as one JSON object',
  async run(ctx) {
    const t = tenantRow(await withTenantry(ctx, 'show tenant', { ddl: false }, (tenantry) => named(ctx, 'show', tenantry)));
    ctx.emit(t, () => Object.entries(t).map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n'));
    return 0;
  },
};

function statusCommand(verb: 'suspend' | 'resume', summary: string): Command {
  return {
    name: `tenants ${verb}`,
    summary,
    positionals: 'ID|SLUG',
    options: {},
    json: 'the tenant as one JSON object',
    async run(ctx) {
      const updated = await withTenantry(ctx, `${verb} tenant`, { ddl: false }, async (tenantry) => {
        const t = await named(ctx, verb, tenantry);
        return (await tenantry.setTenantStatus(t.id, verb === 'suspend' ? 'suspended' : 'active'))!;
      });
      ctx.emit(tenantRow(updated), () => `${updated.slug}: ${updated.status}`);
      return 0;
    },
  };
}

export const suspend = statusCommand('suspend', 'suspend a tenant');
export const resume = statusCommand('resume', 'resume a suspended tenant');

/** `key=value` of --set: a limit (`burst=100`, `quotas.users=10`), `null` resets it to the plan. */
function parseSet(pairs: readonly string[]): LimitsPatch {
  const patch: Record<string, unknown> = {};
  const quotas: Record<string, number | null> = {};
  for (const pair of pairs) {
    const m = /^([a-z_]+(?:\.[a-z0-9_]+)?)=(.*)$/.exec(pair);
    if (!m) throw new CliUsageError(`--set ${pair}: expected key=value (e.g. requests_per_second=50, quotas.users=10, burst=null)`);
    const [, key, raw] = m as unknown as [string, string, string];
    const value = raw === 'null' ? null : Number(raw);
    if (value !== null && (raw.trim() === '' || !Number.isFinite(value))) throw new CliUsageError(`--set ${pair}: the value must be a number or null`);
    if (key.startsWith('quotas.')) quotas[key.slice('quotas.'.length)] = value;
    else patch[key] = value;
  }
  if (Object.keys(quotas).length) patch.quotas = quotas;
  return patch as LimitsPatch;
}

export const limits: Command = {
  name: 'tenants limits',
  summary: 'show or change a tenant\'s limits',
  description: `Shows the tenant's effective limits and where each comes from (its plan, or its own
override). --set changes them: a limit (requests_per_second, burst, concurrent_requests,
db_connections, statement_timeout_ms) or a quota (quotas.<name>), with a number, or null to go
back to the plan. Every running instance applies a change at once.`,
  positionals: 'ID|SLUG',
  options: {
    set: { type: 'string', arg: 'KEY=VALUE', multiple: true, description: 'change a limit (repeatable); null resets it to the plan' },
  },
  json: 'the limits as one JSON object',
  async run(ctx) {
    const sets = (ctx.values.set as unknown as string[] | undefined) ?? [];
    const patch = parseSet(sets);
    const view = await withTenantry(ctx, sets.length ? 'change tenant limits' : 'show tenant limits', { ddl: false }, async (tenantry) => {
      const t = await named(ctx, 'limits', tenantry);
      const updated = sets.length ? await tenantry.tenants.setLimits(t.id, patch) : t;
      return limitsView(tenantry.plans, updated!);
    });
    ctx.emit(view, () => [
      `${view.tenant} (plan ${view.plan})`,
      ...scalarLimits.map((k) => `  ${k.padEnd(22)} ${String(view.limits[k]).padStart(10)}  ${view.sources[k]}`),
      ...Object.keys(view.limits.quotas).map((q) => `  ${('quotas.' + q).padEnd(22)} ${String(view.limits.quotas[q] ?? 'unlimited').padStart(10)}  ${view.sources.quotas[q]}`),
    ].join('\n'));
    return 0;
  },
};

/** The `tenants` command group. */
export const tenantsCommands: readonly Command[] = [list, create, show, suspend, resume, limits];
