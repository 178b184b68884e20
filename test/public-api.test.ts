/**
 * The root export is small and documented, and the helpdesk uses nothing else: the names `tenantry`
 * and its subpaths export are exactly those listed here and on docs/api.md, every subpath of
 * package.json points at a module that exists, and app/ imports only those modules.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> };

/** package.json subpath → the source module it is built from (./dist/src/x.js → src/x.ts). */
const entries = Object.fromEntries(Object.entries(pkg.exports).map(([sub, e]) =>
  [sub, e.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts')]));

/** The value exports of each entry point. A new one is a decision: add it here and to docs/api.md. */
const expected: Record<string, string[]> = {
  '.': [
    'CatalogUnavailableError', 'OptionsError', 'SLUG_PATTERN', 'TenantContextMissingError', 'Tenantry', 'TenantryError', 'UUID_PATTERN',
    'apiKeyScopes', 'builtInPlans', 'channels', 'checkSlug', 'currentPrincipal', 'currentTenant', 'errorCatalog', 'hashPassword', 'isRole',
    'isTenantryError', 'isUuid', 'limitsView', 'loadOptions', 'onPlatformScope', 'parseUsageRange', 'peekTenant', 'planIsolation', 'registerErrors', 'registerRoles',
    'requirePlatformScope', 'requireTenantScope', 'reservedSlugs', 'resolverNames', 'runWithTenant', 'subscribe', 'verifyPassword',
    'withPlatformScope',
  ],
  './cli': ['CliUsageError', 'commands', 'runCli'],
  './embedded': ['attachOrStartEmbedded', 'freePort', 'startEmbeddedPostgres'],
  './sql': ['createPool', 'databaseName', 'ident', 'isConnectionError', 'quoteIdent', 'sqlState', 'withCredentials', 'withDatabase', 'withEndpoint'],
};

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('public API', () => {
  it('every subpath of package.json is a source module', () => {
    assert.deepEqual(Object.keys(entries).sort(), ['.', './cli', './embedded', './fastify', './sql']);
    for (const [sub, file] of Object.entries(entries)) assert.ok(existsSync(path.join(root, file)), `${sub} → ${file}`);
  });

  it('the root and the subpaths export what is listed, and docs/api.md names each of it', async () => {
    const docs = readFileSync(path.join(root, 'docs/api.md'), 'utf8');
    for (const [sub, file] of Object.entries(entries)) {
      const names = Object.keys(await import(path.join(root, file))).sort();
      if (expected[sub]) assert.deepEqual(names, [...expected[sub]!].sort(), `value exports of ${sub === '.' ? 'tenantry' : `tenantry/${sub.slice(2)}`}`);
      for (const name of names) assert.ok(docs.includes(`\`${name}`), `docs/api.md describes ${name} (${sub})`);
    }
    // Type exports of the root are documented too.
    const index = readFileSync(path.join(root, 'src/index.ts'), 'utf8');
    const types = [...index.matchAll(/\btype\s+([A-Z]\w*)/g)].map((m) => m[1]!);
    const typeLists = [...index.matchAll(/export type \{([^}]*)\}/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()).filter(Boolean));
    for (const name of new Set([...types, ...typeLists])) assert.ok(docs.includes(`\`${name}\``), `docs/api.md describes the type ${name}`);
  });

  it('the root export does not load the embedded PostgreSQL module', () => {
    const reachable = new Set<string>();
    const visit = (file: string) => {
      if (reachable.has(file)) return;
      reachable.add(file);
      for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+'(\.[^']+)'/gm)) {
        visit(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')));
      }
    };
    visit(path.join(root, 'src/index.ts'));
    assert.ok(![...reachable].some((f) => f.includes(`${path.sep}embedded${path.sep}`)), 'src/embedded is not reachable from the root export');
  });

  it('the helpdesk imports only the public API', () => {
    const allowed = new Set(Object.values(entries).map((f) => path.join(root, f)));
    const bad: string[] = [];
    for (const file of walk(path.join(root, 'app'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/from\s+'(\.[^']+)'/g)) {
        const target = path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'));
        if (!target.startsWith(path.join(root, 'src') + path.sep)) continue; // the app's own modules
        if (!allowed.has(target)) bad.push(`${path.relative(root, file)} imports ${m[1]}`);
      }
    }
    assert.deepEqual(bad, []);
  });
});
