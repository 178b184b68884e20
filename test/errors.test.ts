import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { errorCatalog } from '../src/index.js';

describe('error catalog', () => {
  it('docs/errors.md lists every code with its status, and no other', async () => {
    const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])] as const);
    const documented = new Map(rows);
    assert.equal(documented.size, rows.length, 'a code is documented twice');
    for (const [code, { status }] of Object.entries(errorCatalog)) {
      assert.equal(documented.get(code), status, `docs/errors.md: ${code} should be documented with status ${status}`);
    }
    for (const code of documented.keys()) assert.ok(code in errorCatalog, `docs/errors.md documents unknown code ${code}`);
  });

  it('statuses are 4xx or 5xx and titles are set', () => {
    for (const [code, e] of Object.entries(errorCatalog)) {
      assert.ok(e.status >= 400 && e.status < 600, code);
      assert.ok(e.title.length > 0, code);
    }
  });
});
