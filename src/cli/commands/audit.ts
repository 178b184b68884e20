import { UnknownTenantError, verifyTenantAudit, type TenantAuditReport } from '../../audit-log/verify.js';
import { CliUsageError, type Command } from '../command.js';

function chainLine(name: string, c: TenantAuditReport['tenantLog'] | TenantAuditReport['platformLog']): string {
  const anchor = 'anchor' in c ? c.anchor : null;
  const state = 'missing' in c && c.missing ? 'no log table (the placement has not been migrated since)'
    : c.firstBroken !== null ? `BROKEN at seq ${c.firstBroken}`
      : anchor && !anchor.holds ? `BROKEN: the anchored entry seq ${anchor.seq} is gone or re-hashed (entries removed at the end, or the chain rewritten)`
        : 'intact';
  const head = c.head ? `, head seq ${c.head.seq} ${c.head.hash}` : '';
  const legacy = 'unchained' in c && c.unchained ? `, ${c.unchained} older ${c.unchained === 1 ? 'entry' : 'entries'} outside the chain` : '';
  return `${name.padEnd(13)} ${c.entries} ${c.entries === 1 ? 'entry' : 'entries'}, ${state}${head}${legacy}`;
}

export const verify: Command = {
  name: 'audit verify',
  summary: 'verify a tenant\'s audit log chains',
  positionals: 'SLUG',
  description: `Recomputes every hash of the tenant's audit log (in its placement) and of the platform log's
entries about it (in the catalog), as the admin URL's user: an entry edited, re-hashed or removed
— even by a role that owns the tables — breaks the chain at that entry, and the report names the
first broken seq. The chain must also still hold its anchor, the newest head the instances wrote
to the catalog (every few seconds): removing the newest entries, or re-hashing the whole chain
after an edit, is caught as well, up to the last anchor. Keep the printed heads somewhere the
database's owner cannot write (a ticket, a notary) to cover the catalog too. Reads only.`,
  options: {},
  json: 'the report as one JSON object',
  exitStatus: 'Exit status: 0 when both chains are intact, 1 when one is broken, 2 for an unknown tenant.',
  async run(ctx) {
    const slug = ctx.positionals[0];
    if (!slug || ctx.positionals.length > 1) throw new CliUsageError('audit verify needs one tenant slug');
    let report: TenantAuditReport;
    try {
      report = await verifyTenantAudit(await ctx.databaseUrl(), slug);
    } catch (err) {
      if (err instanceof UnknownTenantError) throw new CliUsageError(err.message);
      throw err;
    }
    ctx.emit(report, () => [
      `${report.tenant.slug} (${report.tenant.id}), ${report.tenant.isolation} placement: ${report.ok ? 'intact' : 'BROKEN'}`,
      chainLine('tenant log', report.tenantLog),
      chainLine('platform log', report.platformLog),
    ].join('\n'));
    return report.ok ? 0 : 1;
  },
};

/** The `audit` command group. */
export const auditCommands: readonly Command[] = [verify];
