/**
 * `npm run docs:options`: writes the toolkit's options table (src/config/options.ts, optionTable)
 * into README.md between its markers. test/config.test.ts fails when the two differ.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { optionsMarkdown } from '../src/config/options-docs.js';

export const OPTIONS_BEGIN = '<!-- options: generated from optionTable (src/config/option-table.ts) by `npm run docs:options` -->';
export const OPTIONS_END = '<!-- options: end -->';

/** The README text with the generated table in place. */
export function withOptionsTable(readme: string): string {
  const begin = readme.indexOf(OPTIONS_BEGIN);
  const end = readme.indexOf(OPTIONS_END);
  if (begin < 0 || end < begin) throw new Error('README.md has no options markers');
  return `${readme.slice(0, begin + OPTIONS_BEGIN.length)}\n${optionsMarkdown()}\n${readme.slice(end)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = new URL('../README.md', import.meta.url);
  const before = await readFile(file, 'utf8');
  const after = withOptionsTable(before);
  if (after !== before) await writeFile(file, after);
  console.log(after === before ? 'README.md: options table up to date' : 'README.md: options table rewritten');
}
