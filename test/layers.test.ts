/**
 * The layering of src/: read from the import statements of the sources, no database needed.
 * - data/ (driver, bootstrap, placements, data plane) never imports migrate/: placements migrate
 *   through the TenantMigrator the wiring hands them, and migrate/ builds on data/;
 * - core/ (tenant ids, events) is the bottom: it imports nothing of the toolkit but types;
 * - no module imports another in a loop at run time (type-only imports are erased).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../src/', import.meta.url));

interface Edge { readonly from: string; readonly to: string; readonly typeOnly: boolean }

function sources(dir = src, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const edges: Edge[] = sources().flatMap((file) => {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(import|export)\s+(type\s+)?([^;]*?)\s+from\s+'(\.[^']+)'/gm)].map((m) => {
    const names = m[3] ?? '';
    // `import type {…}`, or every name of `{…}` marked `type`.
    const typeOnly = Boolean(m[2]) || (/^\{[^}]*\}$/.test(names.trim()) && names.replace(/[{}\s]/g, '').split(',').filter(Boolean).every((n) => n.startsWith('type')));
    return { from: path.relative(src, file), to: path.relative(src, path.resolve(path.dirname(file), m[4]!.replace(/\.js$/, '.ts'))), typeOnly };
  });
});

const area = (file: string) => file.split(path.sep)[0]!;

describe('layers of src/', () => {
  it('data/ never imports migrate/', () => {
    const bad = edges.filter((e) => area(e.from) === 'data' && area(e.to) === 'migrate');
    assert.deepEqual(bad.map((e) => `${e.from} → ${e.to}`), []);
    assert.ok(edges.some((e) => area(e.from) === 'migrate' && area(e.to) === 'data'), 'migrate/ builds on data/ (the check sees imports)');
  });

  it('core/ imports nothing of the toolkit but types', () => {
    const bad = edges.filter((e) => area(e.from) === 'core' && area(e.to) !== 'core' && !e.typeOnly);
    assert.deepEqual(bad.map((e) => `${e.from} → ${e.to}`), []);
  });

  it('no import cycle between modules at run time', () => {
    const graph = new Map<string, string[]>();
    for (const e of edges) if (!e.typeOnly) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') { cycles.push([...stack.slice(stack.indexOf(f)), f].join(' → ')); return; }
      state.set(f, 'open');
      stack.push(f);
      for (const t of graph.get(f) ?? []) visit(t);
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f);
    assert.deepEqual(cycles, []);
  });
});
