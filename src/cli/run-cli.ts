import { attachOrStartEmbedded, type EmbeddedServer } from '../embedded/embedded-postgres.js';
import { optionTable } from '../config/options.js';
import { isTenantryError } from '../errors.js';
import {
  CliUsageError, commandHelp, groupHelp, mainHelp, parseCommandLine, type CliContext, type CliOptions, type Command,
} from './command.js';
import { auditCommands } from './commands/audit.js';
import { checkCommands } from './commands/check.js';
import { migrateCommands } from './commands/migrate.js';
import { tenantsCommands } from './commands/tenants.js';

export { CliUsageError, type CliOptions, type Command, type TenantInit, type TenantInitOption } from './command.js';

/** The command table: every `tenantry` command, in the order `tenantry --help` lists them. */
export const commands: readonly Command[] = [...migrateCommands, ...checkCommands, ...tenantsCommands, ...auditCommands];

/** The command `argv` names (its longest name that matches) and the arguments after it. */
function select(argv: readonly string[]): { command: Command; rest: readonly string[] } | undefined {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ');
    const command = commands.find((c) => c.name === name);
    if (command) return { command, rest: argv.slice(words) };
  }
  return undefined;
}

/** Runs the `tenantry` command line; returns the exit status. */
export async function runCli(argv: readonly string[], opts: CliOptions): Promise<number> {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const env = opts.env ?? process.env;
  const print = (s: string) => stdout.write(s + '\n');
  const [first, ...rest] = argv;
  if (!first || first === '--help' || first === '-h' || first === 'help') {
    print(mainHelp(commands));
    return first ? 0 : 2;
  }
  let embedded: EmbeddedServer | undefined;
  try {
    const selected = select(argv);
    if (!selected) {
      // A group (`tenants`) alone or with --help prints the group's usage; anything else is unknown.
      if (commands.some((c) => c.name.startsWith(`${first} `))) {
        const help = groupHelp(first, commands, opts.tenantInit);
        const [sub] = rest;
        if (!sub || sub === '--help' || sub === '-h') { print(help); return sub ? 0 : 2; }
        throw new CliUsageError(`unknown ${first} command "${sub}"\n\n${help}`);
      }
      throw new CliUsageError(`unknown command "${first}"\n\n${mainHelp(commands)}`);
    }
    const { command } = selected;
    const { values, positionals } = parseCommandLine(command, selected.rest, opts.tenantInit);
    if (values.help) { print(commandHelp(command, opts.tenantInit)); return 0; }
    const ctx: CliContext = {
      values, positionals, env, stdout, stderr, print,
      emit: (value, human) => print(values.json ? JSON.stringify(value) : human()),
      tenantInit: opts.tenantInit,
      appPlans: opts.appPlans,
      databaseUrl: async () => {
        const url = env[optionTable.databaseUrl.env!];
        if (url) return url;
        embedded = await attachOrStartEmbedded(env.TENANTRY_DATA_DIR ?? '.tenantry');
        return embedded.url;
      },
      migrationsDir: () => (values.migrations as string | undefined) ?? (env[optionTable.migrationsDir.env!] || undefined) ?? opts.migrationsDir,
    };
    return await command.run(ctx);
  } catch (e) {
    if (e instanceof CliUsageError) { stderr.write(e.message + '\n'); return 2; }
    if (isTenantryError(e)) { stderr.write(`error: ${e.code}: ${e.message}\n`); return 1; }
    stderr.write(`error: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await embedded?.stop();
  }
}
