/**
 * Tenant ids and derived names come from one module (src/core/tenant-ids.ts) that serves
 * TypeScript and SQL: here both sides are run on the same inputs and must agree, and the RLS helper
 * the bootstrap installs is the module's check.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  isUuid, tenantDatabase, tenantHex, tenantIdSql, tenantRole, tenantSchema, UUID_PATTERN, UUID_PATTERN_ANY_CASE,
} from '../src/core/tenant-ids.js';
import { bootstrapDatabase } from '../src/data/bootstrap.js';
import { createPool, type Sql } from '../src/data/driver/index.js';
import { createTestDatabase, ROLE_PASSWORD } from './helpers.js';

const root = fileURLToPath(new URL('../', import.meta.url));

const samples = [
  '0190aaaa-0001-7000-8000-000000000001',
  '0190AAAA-0001-7000-8000-000000000001',
  '0190aaaa-0001-7000-8000-00000000001',
  '0190aaaa00017000800000000000000001',
  'urn:uuid:0190aaaa-0001-7000-8000-000000000001',
  ' 0190aaaa-0001-7000-8000-000000000001',
  '0190aaaa-0001-7000-8000-000000000001\n',
  '0190gggg-0001-7000-8000-000000000001',
  '',
  "x' or '1'='1",
];

describe('tenant ids', () => {
  it('TypeScript: one pattern, names from the id only, anything else refused', () => {
    const id = samples[0]!;
    assert.equal(tenantHex(id), '0190aaaa000170008000000000000001');
    assert.equal(tenantSchema(id), 't_0190aaaa000170008000000000000001');
    assert.equal(tenantRole(id), tenantSchema(id));
    assert.equal(tenantDatabase(id), 'tenant_0190aaaa000170008000000000000001');
    for (const bad of samples.slice(1)) assert.throws(() => tenantSchema(bad), TypeError, JSON.stringify(bad));
    assert.deepEqual(samples.map(isUuid), [true, ...Array(samples.length - 1).fill(false)]);
    assert.equal(UUID_PATTERN_ANY_CASE.test(samples[1]!), true);
  });

  it('the UUID pattern is written once in src/ and app/', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = path.join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.(ts|sql)$/.test(name)) files.push(p);
      }
    };
    walk(path.join(root, 'src'));
    walk(path.join(root, 'app'));
    const holders = files.filter((f) => readFileSync(f, 'utf8').includes('{8}-[0-9a-f]{4}'));
    assert.deepEqual(holders.map((f) => path.relative(root, f)), ['src/core/tenant-ids.ts']);
  });

  describe('on PostgreSQL', () => {
    let db: Awaited<ReturnType<typeof createTestDatabase>>;
    let sql: Sql;
    before(async () => {
      db = await createTestDatabase('ids');
      sql = createPool(db.url, { max: 1 });
      await bootstrapDatabase(sql, { app: ROLE_PASSWORD, platform: ROLE_PASSWORD });
    });
    after(async () => {
      await sql?.end();
      await db?.drop();
    });

    it('SQL agrees with TypeScript on what is a tenant id and on the derived names', async () => {
      for (const s of samples) {
        const [row] = await sql.query<{ ok: boolean }>(`select ${tenantIdSql.isTenantId('$1::text')} as ok`, [s]);
        assert.equal(row?.ok, UUID_PATTERN.test(s), JSON.stringify(s));
      }
      const id = samples[0]!;
      const [names] = await sql.query<{ schema: string; db: string }>(
        `select ${tenantIdSql.tenantSchema('$1::uuid')} as schema, ${tenantIdSql.tenantDatabase('$1::uuid')} as db`, [id]);
      assert.deepEqual(names, { schema: tenantSchema(id), db: tenantDatabase(id) });
    });

    it('the RLS helper uses the same check: a malformed tenant setting is no tenant (NULL), never an error', async () => {
      for (const s of samples) {
        const rows = await sql.transaction(async (tx) => {
          await tx.query("select set_config('app.tenant_id', $1, true)", [s]);
          return tx.query<{ id: string | null }>('select tenantry_rls.current_tenant_id()::text as id');
        });
        assert.equal(rows[0]?.id, isUuid(s) ? s : null, JSON.stringify(s));
      }
    });
  });
});
