import { checkPlatform } from '../../migrate/platform.js';
import type { Command } from '../command.js';
import { printAudit } from '../format.js';

export const check: Command = {
  name: 'check',
  summary: 'isolation and drift audit of every target',
  description: `Audits every target: each tenant table has tenant_id uuid NOT NULL, RLS enabled and forced,
policies for every command with USING and WITH CHECK, an index leading with tenant_id; the runtime
roles are not owners, superusers or BYPASSRLS and cannot CREATE; no SECURITY DEFINER function
without a pinned search_path; no view without security_invoker; every target's schema equals the
reference (drift).`,
  options: {},
  json: 'the report as one JSON object',
  exitStatus: 'Exit status: 0 when clean, 1 with findings.',
  async run(ctx) {
    const report = await checkPlatform(await ctx.databaseUrl());
    if (ctx.values.json) ctx.print(JSON.stringify(report));
    else printAudit(report, ctx.print);
    return report.ok ? 0 : 1;
  },
};

/** The `check` command group. */
export const checkCommands: readonly Command[] = [check];
