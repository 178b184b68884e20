/**
 * `tenantry/cli`: the `tenantry` command for an application's bin script — the toolkit's commands
 * (migrate, check, tenants …) plus what the application adds to `tenants create` (TenantInit).
 *
 * ```ts
 * import { runCli } from 'tenantry/cli';
 * process.exitCode = await runCli(process.argv.slice(2), { migrationsDir: './migrations' });
 * ```
 */
export { runCli, commands, CliUsageError, type CliOptions, type Command, type TenantInit, type TenantInitOption } from './run-cli.js';
export type { CliContext, CliOption } from './command.js';
