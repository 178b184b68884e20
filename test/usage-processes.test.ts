/**
 * Usage metering across real server processes (`app/main.ts`, as `npm start` runs it) on one
 * database: two servers add up exactly; SIGTERM loses nothing (the HTTP drain, then the final
 * flush); SIGKILL loses at most what was counted in the last flush interval (and the flush in
 * flight). Counts are read as the superuser from tenantry.usage.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, type Sql } from '../src/data/driver/index.js';
import { createTestDatabase } from './helpers.js';
import { dropDemoPlacements, startServer, type ServerProcess } from './server-process.js';

const ACME = '01900001-0000-7000-8000-000000000000';
const FLUSH_MS = 300;

describe('usage metering across server processes', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let sql: Sql;
  const servers: ServerProcess[] = [];
  let token: string;

  const start = async () => {
    const s = await startServer({ DATABASE_URL: db.url, TENANTRY_USAGE_FLUSH_MS: String(FLUSH_MS) });
    servers.push(s);
    return s;
  };
  /** A request of acme; its status (200: admitted and counted; 429: refused by its plan's rate, not counted). */
  const get = async (s: ServerProcess): Promise<number> => {
    const res = await fetch(`http://127.0.0.1:${s.port}/api/v1/tickets?limit=1`, { headers: { 'x-tenant': 'acme', authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    return res.status;
  };
  const stored = async () => {
    const [r] = await sql.query<{ n: string }>('select coalesce(sum(api_calls), 0)::text as n from tenantry.usage where tenant_id = $1', [ACME]);
    return Number(r!.n);
  };

  before(async () => {
    db = await createTestDatabase('usage');
    sql = createPool(db.url, { max: 1 });
    const a = await start();
    const login = await fetch(`http://127.0.0.1:${a.port}/api/v1/auth/token`, {
      method: 'POST', headers: { 'x-tenant': 'acme', 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'agent@acme.test', password: 'acme-agent-password' }),
    });
    assert.equal(login.status, 200);
    token = ((await login.json()) as { access_token: string }).access_token;
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.kill()));
    await sql?.end();
    await db?.drop();
    await dropDemoPlacements().catch(() => {});
  });

  it('two servers add up exactly, and SIGTERM writes everything', async () => {
    const a = servers[0]!;
    const b = await start();
    const N = 40;
    const statuses = await Promise.all(Array.from({ length: 2 * N }, (_, i) => get(i % 2 ? a : b)));
    // acme's plan limits its rate: a request refused with 429 was not admitted and is not counted.
    assert.ok(statuses.every((s) => s === 200 || s === 429), JSON.stringify(statuses));
    const admitted = statuses.filter((s) => s === 200).length;
    assert.ok(admitted >= N / 2, `${admitted} admitted`);
    for (const s of [a, b]) s.child.kill('SIGTERM');
    const exits = await Promise.all([a.exited, b.exited]);
    assert.deepEqual(exits.map((e) => e.code), [0, 0], a.output() + b.output());
    // The login on `a` and every admitted request: all of them, at once (no interval to wait for).
    assert.equal(await stored(), admitted + 1);
  });

  it('SIGKILL loses at most the last flush interval', async () => {
    const base = await stored();
    const s = await start();
    // Requests one after the other for a while; each counted one's end time is kept.
    const done: number[] = [];
    const until = Date.now() + 6 * FLUSH_MS;
    while (Date.now() < until) {
      const status = await get(s);
      assert.ok(status === 200 || status === 429, String(status));
      if (status === 200) done.push(Date.now());
      else await sleep(20);
    }
    const killedAt = Date.now();
    process.kill(-s.child.pid!, 'SIGKILL');
    await s.exited;
    const counted = (await stored()) - base;
    // Lost: what was counted after the last flush that committed — at most one interval, plus the
    // flush in flight at the kill (allowed 200 ms here).
    const lostAtMost = done.filter((t) => t > killedAt - FLUSH_MS - 200).length;
    assert.ok(counted <= done.length, `${counted} ≤ ${done.length}`);
    assert.ok(counted >= done.length - lostAtMost, `${counted} ≥ ${done.length} - ${lostAtMost}`);
    assert.ok(counted > 0 && done.length > lostAtMost, 'several flushes happened before the kill');
    console.log(`SIGKILL: ${done.length} requests, ${counted} counted, ${done.length - counted} lost (bound ${lostAtMost})`);
  });
});
