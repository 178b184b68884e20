/**
 * What a row of the options table is made of (OptionSpec), the parsers rows share (integers in a
 * range, booleans, text, PostgreSQL URLs) and `invalid`, the way a parser or a check refuses a value.
 */

/** A bad value; the loop turns it into an OptionsError naming the option. */
export class Invalid extends Error {}
export const invalid = (problem: string): never => { throw new Invalid(problem); };

/** What a default is computed from: the options resolved before it (table order) and the mode. */
export interface DefaultContext<Resolved> {
  readonly resolved: Partial<Resolved>;
  readonly production: boolean;
  /** Records that a secret was generated (reported in `generated`, printed by the app). */
  generated(name: string): void;
}

/** One row of the table. */
export interface OptionSpec<T, Resolved = Record<string, unknown>> {
  /** Environment variable of the option, when it has one. */
  readonly env?: string;
  /** The value when the option is neither given nor set: a constant, or computed. */
  readonly default: T | { readonly compute: (ctx: DefaultContext<Resolved>) => T };
  /** The default as the docs show it (otherwise the constant, formatted). */
  readonly defaultDoc?: string;
  /** Environment text → value (the text is never empty: empty means unset). */
  readonly parse?: (raw: string) => T;
  /** Checks (and normalises) a value, given explicitly or parsed; throws through invalid(). */
  readonly check?: (value: T) => T;
  /** What the option means (the docs' text, Markdown). */
  readonly doc: string;
}

export const integer = (min: number, max: number) => ({
  parse: (raw: string): number => {
    const n = Number(raw);
    return Number.isInteger(n) && n >= min && n <= max ? n : invalid(`expected an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  },
  check: (n: number): number =>
    (Number.isInteger(n) && n >= min && n <= max ? n : invalid(`expected an integer in ${min}..${max}, got ${JSON.stringify(n)}`)),
});

export const boolean = {
  parse: (raw: string): boolean => {
    if (/^(1|true|on|yes)$/i.test(raw)) return true;
    if (/^(0|false|off|no)$/i.test(raw)) return false;
    return invalid(`expected 1 or 0 (true or false), got ${JSON.stringify(raw)}`);
  },
};

export const text = { parse: (raw: string): string => raw };

export const postgresUrl = {
  parse: (raw: string): string => raw,
  check: <T extends string | undefined>(url: T): T => {
    if (url === undefined) return url;
    try {
      new URL(url);
    } catch {
      invalid('not a valid postgres:// URL');
    }
    return url;
  },
};
