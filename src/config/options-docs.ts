import type { OptionSpec } from './option-spec.js';
import { optionTable, type OptionKey } from './option-table.js';

function formatDefault(spec: OptionSpec<unknown>): string {
  if (spec.defaultDoc !== undefined) return spec.defaultDoc;
  const d = spec.default;
  if (typeof d === 'boolean') return `\`${d ? 1 : 0}\``;
  if (Array.isArray(d)) return `\`${d.join(',')}\``;
  return d === undefined ? '—' : `\`${String(d)}\``;
}

/** The rows of the docs' table: variable, option, default and meaning of each option, in table order. */
export function optionRows(): { env: string | undefined; key: OptionKey; default: string; doc: string }[] {
  return (Object.keys(optionTable) as OptionKey[]).map((key) => {
    const spec = optionTable[key] as OptionSpec<unknown>;
    return { env: spec.env, key, default: formatDefault(spec), doc: spec.doc };
  });
}

/** The options table as Markdown (README.md's Configuration section is this text). */
export function optionsMarkdown(): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| variable | option | default | meaning |',
    '| --- | --- | --- | --- |',
    ...optionRows().map((r) => `| ${r.env ? `\`${r.env}\`` : '—'} | \`${r.key}\` | ${cell(r.default)} | ${cell(r.doc)} |`),
  ].join('\n');
}
