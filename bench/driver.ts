/**
 * Driver-level pair, in-process: what one tenant-scoped read costs against an unscoped read,
 * with the HTTP stack out of the picture.
 *
 *   a  scoped      tenantry.db.query() inside runWithTenant, as shipped: the context's set_config
 *                  and the SELECT (prepared) before one Sync on a reserved connection, role
 *                  tenantry_app (RLS): one round trip, one implicit transaction
 *   b  unscoped    the superuser pool, `where tenant_id = $1 and id = $2`, one prepared statement
 *                  (node-postgres' pool.query with a name), no transaction, no RLS: the baseline
 *   c  naive       BEGIN, set_config, SELECT, COMMIT (prepared), each awaited before the next:
 *                  four round trips, what a transaction-local context costs without pipelining
 *   d  hand-piped  set_config and the SELECT before one Sync, as a, written by hand without tenantry
 *                  (a/d is the library's own cost: async context, placement lookup, error mapping)
 *
 * Before the timed phases, each mode runs a few operations sequentially while the client's socket
 * writes are counted: with one operation in flight, writes per operation = round trips.
 */
import net from 'node:net';
import { runWithTenant, type Tenant, type Tenantry } from '../src/index.js';
import { contextStatement } from '../src/data/placement.js';
import { roles, schemas } from '../src/data/bootstrap.js';
import { createPool, withCredentials } from '../src/data/driver/index.js';
import { ROLE_PASSWORD, TICKET_COLUMNS } from './common.js';
import { median, percentileSorted, round, sortedCopy } from './stats.js';

export const driverModes = ['a', 'b', 'c', 'd'] as const;
export type DriverMode = (typeof driverModes)[number];
export const driverModeNames: Record<DriverMode, string> = {
  a: 'a scoped, tenantry.db.query',
  b: 'b unscoped superuser (baseline)',
  c: 'c naive scoped, 4 round trips',
  d: 'd hand-pipelined, one Sync',
};

type Op = (id: string) => Promise<number>;

export interface DriverSettings {
  readonly concurrency: number;
  readonly pool: number;
  readonly ops: number;
  readonly sequentialOps: number;
  readonly rounds: number;
  readonly warmupOps: number;
}

export interface ModeResult {
  readonly mode: DriverMode;
  readonly name: string;
  /** ops/s of each round. */
  readonly roundOpsPerSec: number[];
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly ops: number;
}

export interface DriverPhase {
  readonly concurrency: number;
  readonly opsPerRound: number;
  readonly modes: Record<DriverMode, ModeResult>;
}

export interface JwtCost {
  /** CPU per TokenService.verify() call, microseconds (sequential, in this process). */
  readonly verifyCpuUs: number;
  readonly verifyWallUs: number;
  readonly calls: number;
}

export interface DriverResult {
  readonly settings: DriverSettings;
  /** Socket writes to PostgreSQL per operation, one operation in flight (= round trips). */
  readonly writesPerOp: Record<DriverMode, number>;
  readonly jwt: JwtCost;
  readonly concurrent: DriverPhase;
  readonly sequential: DriverPhase;
}

async function runOps(op: Op, ids: readonly string[], n: number, concurrency: number, offset: number) {
  const latencies = new Float64Array(n);
  let next = 0;
  let misses = 0;
  const worker = async () => {
    for (let k = next++; k < n; k = next++) {
      const t0 = performance.now();
      const rows = await op(ids[(offset + k) % ids.length]!);
      latencies[k] = performance.now() - t0;
      if (rows !== 1) misses++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  if (misses) throw new Error(`${misses} of ${n} reads did not return exactly one row`);
  return { seconds, latencies };
}

export async function runDriverPair(tenantry: Tenantry, benchUrl: string, tenant: Tenant, ids: readonly string[],
  settings: DriverSettings, log: (line: string) => void): Promise<DriverResult> {
  const su = createPool(benchUrl, { max: settings.pool, applicationName: 'bench-driver-su' });
  const app = createPool(withCredentials(benchUrl, roles.app, ROLE_PASSWORD), { max: settings.pool, applicationName: 'bench-driver-app' });
  const scopedSql = `select ${TICKET_COLUMNS} from tickets where id = $1`;
  const unscopedSql = `select ${TICKET_COLUMNS} from app.tickets where tenant_id = $1 and id = $2`;
  const prelude = contextStatement(tenant.id, { searchPath: schemas.pooled }, tenantry.options.statementTimeoutMs);
  const preludeParams = prelude.params;

  const ops: Record<DriverMode, Op> = {
    a: async (id) => (await runWithTenant(tenant, () => tenantry.db.query(scopedSql, [id]))).length,
    b: async (id) => (await su.query(unscopedSql, [tenant.id, id])).length,
    c: async (id) => {
      const conn = await app.connect();
      try {
        await conn.query('begin');
        await conn.query(prelude.text, preludeParams);
        const rows = await conn.query(scopedSql, [id]);
        await conn.query('commit');
        return rows.length;
      } catch (err) {
        await conn.query('rollback').catch(() => {});
        throw err;
      } finally {
        conn.release();
      }
    },
    d: async (id) => {
      const conn = await app.connect();
      try {
        const [, rows] = await conn.pipeline([prelude, { text: scopedSql, params: [id] }]);
        return rows!.length;
      } finally {
        conn.release();
      }
    },
  };

  try {
    log(`driver: warm-up, ${settings.warmupOps} ops per mode`);
    for (const m of driverModes) await runOps(ops[m], ids, settings.warmupOps, settings.concurrency, 0);
    const writesPerOp = await countWrites(ops, ids);
    log(`driver: socket writes per operation (one in flight): ${driverModes.map((m) => `${m} ${writesPerOp[m]}`).join(', ')}`);
    const jwt = await jwtCost(tenantry, tenant);
    log(`driver: TokenService.verify() ${jwt.verifyCpuUs} µs CPU per call`);
    const concurrent = await phase(ops, ids, settings.ops, settings.concurrency, settings.rounds, log);
    const sequential = await phase(ops, ids, settings.sequentialOps, 1, settings.rounds, log);
    return { settings, writesPerOp, jwt, concurrent, sequential };
  } finally {
    await Promise.all([su.end(), app.end()]);
  }
}

/** `rounds` rounds; in each, every mode runs `n` ops, the order rotating from round to round. */
async function phase(ops: Record<DriverMode, Op>, ids: readonly string[], n: number, concurrency: number, rounds: number,
  log: (line: string) => void): Promise<DriverPhase> {
  const perMode = new Map<DriverMode, { rates: number[]; lat: Float64Array[] }>(driverModes.map((m) => [m, { rates: [], lat: [] }]));
  for (let r = 0; r < rounds; r++) {
    const order = driverModes.map((_, i) => driverModes[(i + r) % driverModes.length]!);
    const line: string[] = [];
    for (const m of order) {
      const { seconds, latencies } = await runOps(ops[m], ids, n, concurrency, r * 97);
      const acc = perMode.get(m)!;
      acc.rates.push(n / seconds);
      acc.lat.push(latencies);
      line.push(`${m} ${Math.round(n / seconds)}/s`);
    }
    log(`driver: concurrency ${concurrency}, round ${r + 1}/${rounds}: ${line.join(', ')}`);
  }
  const modes = {} as Record<DriverMode, ModeResult>;
  for (const m of driverModes) {
    const acc = perMode.get(m)!;
    const all = new Float64Array(acc.lat.reduce((s, l) => s + l.length, 0));
    let off = 0;
    for (const l of acc.lat) { all.set(l, off); off += l.length; }
    const sorted = sortedCopy(all);
    modes[m] = {
      mode: m,
      name: driverModeNames[m],
      roundOpsPerSec: acc.rates.map((x) => round(x, 0)),
      opsPerSec: round(median(acc.rates), 0),
      p50Ms: round(percentileSorted(sorted, 50), 3),
      p99Ms: round(percentileSorted(sorted, 99), 3),
      meanMs: round(all.reduce((s, x) => s + x, 0) / all.length, 3),
      ops: all.length,
    };
  }
  return { concurrency, opsPerRound: n, modes };
}

/**
 * Socket flushes per operation, one operation at a time (every connection is warm by now): a write
 * on an uncorked socket, or the uncork that releases corked writes, sends one batch — with one
 * operation in flight, flushes per operation = round trips.
 */
async function countWrites(ops: Record<DriverMode, Op>, ids: readonly string[]): Promise<Record<DriverMode, number>> {
  type Patched = { write: (...args: unknown[]) => boolean; uncork: () => void };
  const proto = net.Socket.prototype as unknown as Patched;
  const own = { write: Object.prototype.hasOwnProperty.call(proto, 'write'), uncork: Object.prototype.hasOwnProperty.call(proto, 'uncork') };
  const original = { write: proto.write, uncork: proto.uncork };
  let writes = 0;
  proto.write = function (this: net.Socket, ...args: unknown[]) {
    if (this.writableCorked === 0) writes++;
    return original.write.apply(this, args);
  };
  proto.uncork = function (this: net.Socket) {
    if (this.writableCorked === 1 && this.writableLength > 0) writes++;
    return original.uncork.apply(this);
  };
  try {
    const out = {} as Record<DriverMode, number>;
    const n = 200;
    for (const m of driverModes) {
      writes = 0;
      for (let i = 0; i < n; i++) await ops[m](ids[i % ids.length]!);
      out[m] = round(writes / n, 2);
    }
    return out;
  } finally {
    for (const k of ['write', 'uncork'] as const) {
      if (own[k]) (proto as Record<string, unknown>)[k] = original[k];
      else delete (proto as Partial<Patched>)[k];
    }
  }
}

/** CPU of verifying one access token, as every authenticated request does. */
async function jwtCost(tenantry: Tenantry, tenant: Tenant): Promise<JwtCost> {
  const token = await tenantry.tokens.sign({ sub: '00000000-0000-7000-8000-000000000001', tid: tenant.id, role: 'agent' });
  for (let i = 0; i < 500; i++) await tenantry.tokens.verify(token);
  const calls = 5000;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await tenantry.tokens.verify(token);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { verifyCpuUs: round((cpu.user + cpu.system) / calls, 1), verifyWallUs: round((wall * 1000) / calls, 1), calls };
}
