import { checkPlatform } from '../../migrate/platform.js';
import type { Command } from '../command.js';
import { printAudit } from '../format.js';

export const check: Command = {
  name: 'check',
  summary: 'isolation and drift audit of every target',
  description: `Audits every target (the pooled schema, each tenant schema, each tenant database) two ways.
Structurally: each tenant table has tenant_id uuid NOT NULL, RLS enabled and forced, an index
leading with tenant_id, a primary key and foreign keys that lead with tenant_id, no unique index
across tenants; every permissive policy is tenant_id = tenantry_rls.current_tenant_id(), and every
role that can reach a table has one for each command it may run; the runtime roles are not owners,
superusers or BYPASSRLS and cannot CREATE; no SECURITY DEFINER function without a pinned
search_path; no view without security_invoker; every target's schema equals the reference (drift).
Behaviourally, unless --no-probe: rows of two synthetic tenants are written and read back as each
target's runtime role, in a transaction that is rolled back. Finding kinds: docs/audit.md.`,
  options: {
    'no-probe': { type: 'boolean', description: 'structural checks only: skip the behavioural probe' },
  },
  json: 'the report as one JSON object',
  exitStatus: 'Exit status: 0 when clean, 1 with findings.',
  async run(ctx) {
    const report = await checkPlatform(await ctx.databaseUrl(), { probe: ctx.values['no-probe'] !== true });
    if (ctx.values.json) ctx.print(JSON.stringify(report));
    else printAudit(report, ctx.print);
    return report.ok ? 0 : 1;
  },
};

/** The `check` command group. */
export const checkCommands: readonly Command[] = [check];
