import type { PlanInput } from '../limits/plans.js';
import { parseArgs } from 'node:util';
import type { Tenantry } from '../tenantry.js';
import type { Tenant } from '../catalog/types.js';

/** A wrong command line: the message is printed and the exit status is 2. */
export class CliUsageError extends Error {}

/** A flag of a command: how it is parsed and how `--help` shows it. */
export interface CliOption {
  readonly type: 'string' | 'boolean';
  /** One line for `--help`. */
  readonly description: string;
  /** The value's placeholder in `--help` (`N`, `DIR`); default `VALUE`. */
  readonly arg?: string;
  readonly short?: string;
  /** Shown as `(default …)` in `--help`; the command applies it (parse it there). */
  readonly default?: string;
  /** Shown without brackets in the synopsis: the command refuses to run without it. */
  readonly required?: boolean;
  /** Accepted but not shown (kept for command lines that worked before). */
  readonly hidden?: boolean;
  /** May be given more than once: the value is an array of strings. */
  readonly multiple?: boolean;
}

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

export type Stream = NodeJS.WritableStream & { isTTY?: boolean };

export interface CliOptions {
  /** Default folder of tenant migrations (overridden by --migrations or TENANTRY_MIGRATIONS_DIR). */
  readonly migrationsDir: string;
  /** The application's part of `tenants create` (flags and an init step). */
  readonly tenantInit?: TenantInit;
  /** The application's plans (its quotas), as it gives them to Tenantry.start. */
  readonly appPlans?: Readonly<Record<string, PlanInput>>;
  readonly stdout?: Stream;
  readonly stderr?: Stream;
  readonly env?: NodeJS.ProcessEnv;
}

/** What a command's `run` is given. */
export interface CliContext {
  /** The parsed flags (by long name) and positional arguments. */
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: Stream;
  readonly stderr: Stream;
  /** Writes a line to stdout. */
  print(line: string): void;
  /** `value` as one JSON line with --json, else the human text. */
  emit(value: unknown, human: () => string): void;
  /** DATABASE_URL, or the embedded PostgreSQL of TENANTRY_DATA_DIR (attached or started; stopped at exit). */
  databaseUrl(): Promise<string>;
  /** --migrations, else TENANTRY_MIGRATIONS_DIR, else the application's folder. */
  migrationsDir(): string;
  readonly tenantInit: TenantInit | undefined;
  readonly appPlans: Readonly<Record<string, PlanInput>> | undefined;
}

/** One entry of the command table. */
export interface Command {
  /** `migrate`, `tenants list`: the words that select it. */
  readonly name: string;
  /** One line for `tenantry --help`. */
  readonly summary: string;
  /** Positional arguments, as the synopsis shows them (`ID|SLUG`); none when absent. */
  readonly positionals?: string;
  /** Paragraphs between the synopsis and the options in `--help`. */
  readonly description?: string;
  /** The flags of the command (every command also takes --json and --help). */
  readonly options: Readonly<Record<string, CliOption>>;
  /** Overrides the description of the common --json flag. */
  readonly json?: string;
  /** The last paragraph of `--help`. */
  readonly exitStatus?: string;
  /** Adds the application's TenantInit flags to this command's (`tenants create`). */
  readonly takesTenantInit?: boolean;
  /** Calls library functions only; returns the exit status. */
  run(ctx: CliContext): Promise<number>;
}

/** Flags of every command. */
export const commonOptions: Readonly<Record<string, CliOption>> = {
  json: { type: 'boolean', description: 'machine-readable output (JSON)' },
  help: { type: 'boolean', short: 'h', description: 'this help' },
};

/** --migrations: shown by the commands that use it, accepted (and ignored) by every command as before. */
export const migrationsOption: CliOption = { type: 'string', arg: 'DIR', description: 'folder of NNNN_name.sql files (default: the app\'s migrations)' };

/** The flags of `command`, the common ones and the application's included. */
export function optionsOf(command: Command, init: TenantInit | undefined): Record<string, CliOption> {
  const own: Record<string, CliOption> = { ...command.options };
  if (!('migrations' in own)) own.migrations = { ...migrationsOption, hidden: true };
  if (command.takesTenantInit) {
    for (const [name, o] of Object.entries(init?.options ?? {})) {
      if (name in own || name in commonOptions) throw new Error(`the application's tenant init flag --${name} clashes with a flag of the CLI`);
      own[name] = { type: o.type, description: o.description };
    }
  }
  const json = command.json ? { ...commonOptions.json!, description: command.json } : commonOptions.json!;
  return { ...own, json, help: commonOptions.help! };
}

/** Parses `args` against the command's flags (strict: an unknown flag is a usage error). */
export function parseCommandLine(command: Command, args: readonly string[], init: TenantInit | undefined) {
  const options = optionsOf(command, init);
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, {
        type: o.type, ...(o.short ? { short: o.short } : {}), ...((o as CliOption).multiple ? { multiple: true } : {}),
      }])),
      allowPositionals: command.positionals !== undefined,
      strict: true,
    });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (e) {
    throw new CliUsageError((e as Error).message);
  }
}

function flag(name: string, o: CliOption): string {
  const one = o.type === 'string' ? `--${name} ${o.arg ?? 'VALUE'}` : `--${name}`;
  return o.multiple ? `${one} …` : one;
}

/** The command's words, positionals and flags (`[--concurrency N]`), as the synopsis shows them. */
function synopsisParts(command: Command, init: TenantInit | undefined): string[] {
  const shown = Object.entries(optionsOf(command, init)).filter(([name, o]) => !o.hidden && name !== 'help');
  return [command.name, command.positionals, ...shown.map(([name, o]) => (o.required ? flag(name, o) : `[${flag(name, o)}]`))]
    .filter((p): p is string => Boolean(p));
}

/** Joins parts into lines of at most `width` characters; continuation lines are indented by `indent`. */
function wrap(parts: readonly string[], width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const part of parts) {
    if (line && line.length + 1 + part.length > width) {
      lines.push(line);
      line = ' '.repeat(indent) + part;
    } else {
      line = line ? `${line} ${part}` : part;
    }
  }
  return [...lines, line].join('\n');
}

/** `Usage: tenantry migrate [--concurrency N] … [--json]`: the command with its flags, wrapped at 100 columns. */
export function synopsis(command: Command, init: TenantInit | undefined): string {
  const [name, ...rest] = synopsisParts(command, init);
  return wrap(['Usage:', `tenantry ${name}`, ...rest], 100, `Usage: tenantry ${name} `.length);
}

/** `tenantry <command> --help`, generated from the command's entry. */
export function commandHelp(command: Command, init: TenantInit | undefined): string {
  const options = Object.entries(optionsOf(command, init)).filter(([, o]) => !o.hidden);
  const left = options.map(([name, o]) => `  ${flag(name, o)}${o.short ? `, -${o.short}` : ''}`);
  const width = Math.max(...left.map((l) => l.length)) + 3;
  const rows = options.map(([, o], i) => `${left[i]!.padEnd(width)}${o.description}${o.default !== undefined ? ` (default ${o.default})` : ''}`);
  return [
    synopsis(command, init),
    ...(command.description ? ['', command.description] : []),
    '',
    ...rows,
    ...(command.exitStatus ? ['', command.exitStatus] : []),
  ].join('\n');
}

const MAIN_FOOTER = `Every command takes --json and --help. The database is DATABASE_URL, or the embedded
PostgreSQL of TENANTRY_DATA_DIR (default ./.tenantry) — the one \`npm start\` runs, if it is up.`;

/** `tenantry --help`: every command of the table with its summary. */
export function mainHelp(commands: readonly Command[]): string {
  const names = commands.map((c) => [c.name, c.positionals?.split('|')[0]].filter(Boolean).join(' '));
  const width = Math.max(19, ...names.map((n) => n.length)) + 2;
  return [
    'Usage: tenantry <command> [options]',
    '',
    'Commands:',
    ...commands.map((c, i) => `  ${names[i]!.padEnd(width)}${c.summary}`),
    '',
    MAIN_FOOTER,
  ].join('\n');
}

/** `tenantry tenants --help`: the synopsis of each command of a group. */
export function groupHelp(group: string, commands: readonly Command[], init: TenantInit | undefined): string {
  const members = commands.filter((c) => c.name.startsWith(`${group} `));
  const subs = members.map((c) => c.name.slice(group.length + 1));
  return [
    `Usage: tenantry ${group} <${subs.join('|')}> [options] [--json]`,
    '',
    ...members.map((c) => {
      const [name, ...rest] = synopsisParts(c, init).filter((p) => p !== '[--json]');
      const sub = name!.slice(group.length + 1);
      return wrap([`  ${sub}`, ...rest], 100, sub.length + 3);
    }),
    '',
    `\`tenantry ${group} <command> --help\` describes each.`,
  ].join('\n');
}
