/**
 * The error catalog: the toolkit's codes and those the application registers, each documented in
 * docs/errors.md (in its own table) with the status the catalog gives it, and nothing else; the
 * registration API refuses what would make the catalog ambiguous. Roles: the application's are
 * registered, and the toolkit refuses a token role it did not register.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { errorCatalog, isRole, registerErrors, TenantryError } from '../src/index.js';
import { toolkitErrorCodes } from '../src/errors.js';
import { registeredRoles } from '../src/auth/roles.js';
import { helpdeskErrors } from '../app/errors.js';
import { roles } from '../app/roles.js';

/** The `| code | status |` rows of the docs section that starts with `heading`. */
async function documented(heading: string): Promise<Map<string, number>> {
  const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const start = doc.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `docs/errors.md has a section "${heading}"`);
  const next = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  const map = new Map(rows);
  assert.equal(map.size, rows.length, `${heading}: a code is documented twice`);
  return map;
}

function assertSame(docs: Map<string, number>, codes: readonly string[], where: string): void {
  for (const code of codes) {
    const entry = (errorCatalog as Record<string, { status: number }>)[code];
    assert.ok(entry, `${code} is in the catalog`);
    assert.equal(docs.get(code), entry.status, `docs/errors.md (${where}): ${code} should be documented with status ${entry.status}`);
  }
  for (const code of docs.keys()) assert.ok(codes.includes(code), `docs/errors.md (${where}) documents ${code}, which is not one of its codes`);
}

describe('error catalog', () => {
  it('docs/errors.md lists every toolkit code with its status, and no other', async () => {
    assertSame(await documented('Toolkit codes'), toolkitErrorCodes, 'Toolkit codes');
  });

  it('docs/errors.md lists every code the helpdesk registers with its status, and no other', async () => {
    assertSame(await documented('Helpdesk codes'), Object.keys(helpdeskErrors), 'Helpdesk codes');
    // The catalog is exactly the two together.
    assert.deepEqual(Object.keys(errorCatalog).sort(), [...toolkitErrorCodes, ...Object.keys(helpdeskErrors)].sort());
  });

  it('statuses are 4xx or 5xx and titles are set', () => {
    for (const [code, e] of Object.entries(errorCatalog)) {
      assert.ok(e.status >= 400 && e.status < 600, code);
      assert.ok(e.title.length > 0, code);
    }
  });

  it('registration: a registered code answers like a toolkit code; redefinitions and bad codes are refused', () => {
    const err = new TenantryError('last_owner');
    assert.equal(err.status, 409);
    assert.equal(err.message, helpdeskErrors.last_owner.title);
    // The same definition again is a no-op; another definition of a known code is refused.
    registerErrors({ last_owner: helpdeskErrors.last_owner });
    assert.throws(() => registerErrors({ last_owner: { status: 400, title: 'other' } }), /already defined/);
    assert.throws(() => registerErrors({ not_found: { status: 410, title: 'gone' } }), /already defined/);
    assert.throws(() => registerErrors({ 'Bad-Code': { status: 400, title: 'x' } }), /snake_case/);
    assert.throws(() => registerErrors({ teapot: { status: 200, title: 'x' } }), /4xx or 5xx/);
    // An unregistered code is a programming error, not an answer.
    assert.throws(() => new TenantryError('no_such_code' as 'not_found'), /not registered/);
  });
});

describe('roles', () => {
  it('the helpdesk registers its roles; the toolkit accepts those and no other', () => {
    assert.deepEqual(registeredRoles(), [...roles]);
    for (const r of roles) assert.ok(isRole(r), r);
    for (const r of ['root', 'superadmin', '', 'Owner', 'owner ']) assert.ok(!isRole(r), JSON.stringify(r));
  });
});
