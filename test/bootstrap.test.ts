/**
 * The bootstrap is safe to run on every start, from many processes at once: roles are
 * cluster-wide, so bootstraps of different databases of one server race on them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bootstrapDatabase, roles } from '../src/data/bootstrap.js';
import { createPool, type Sql } from '../src/data/driver/index.js';
import { createTestDatabase, ROLE_PASSWORD, serverUrl, startTestTenantry } from './helpers.js';

const passwords = { app: ROLE_PASSWORD, platform: ROLE_PASSWORD };

describe('bootstrap', () => {
  const dbs: { url: string; drop: () => Promise<void> }[] = [];
  before(async () => {
    for (let i = 0; i < 6; i++) dbs.push(await createTestDatabase('boot'));
  });
  after(async () => {
    for (const db of dbs) await db.drop();
  });

  it('six bootstraps of six databases of one server at the same moment all succeed, three times over', async () => {
    for (let round = 0; round < 3; round++) {
      const pools: Sql[] = dbs.map((db) => createPool(db.url, { max: 1 }));
      try {
        const results = await Promise.allSettled(pools.map((p) => bootstrapDatabase(p, passwords)));
        const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
        assert.deepEqual(failed, [], `round ${round}`);
      } finally {
        await Promise.all(pools.map((p) => p.end()));
      }
    }
    const server = createPool(serverUrl(), { max: 1 });
    try {
      const rows = await server.query<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean; rolinherit: boolean }>(
        'select rolname, rolsuper, rolbypassrls, rolinherit from pg_roles where rolname = any($1) order by rolname',
        [[roles.owner, roles.app, roles.platform]]);
      assert.equal(rows.length, 3);
      assert.ok(rows.every((r) => !r.rolsuper && !r.rolbypassrls));
      assert.equal(rows.find((r) => r.rolname === roles.app)?.rolinherit, false);
    } finally {
      await server.end();
    }
  });
});

describe('instances starting at once on one prepared database', () => {
  it('three toolkits started together all start (they prepare the database in turn), five times over', { timeout: 240_000 }, async () => {
    // Red without the start-up lock (src/tenantry.ts), on the embedded PostgreSQL 18: 2 rounds of 6 failed with "tuple
    // concurrently updated" (re-asserted GRANTs of the catalog and the schemas, two at once).
    const db = await createTestDatabase('starts');
    try {
      await (await startTestTenantry(db.url)).close();
      for (let round = 0; round < 5; round++) {
        const results = await Promise.allSettled([0, 1, 2].map(() => startTestTenantry(db.url)));
        for (const r of results) if (r.status === 'fulfilled') await r.value.close();
        const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
        assert.deepEqual(failed, [], `round ${round}`);
      }
    } finally {
      await db.drop();
    }
  });
});
