/**
 * `npm run bench`: tenantry's cost per request against a bare baseline. A benchmark, not a test:
 * it exits non-zero only when the run itself fails (a server crash, a non-2xx response, a wrong
 * row count), never because a ratio misses its target (that is a WARN line).
 *
 *   1. a fresh database (BENCH_DATABASE_URL, a superuser URL, or an embedded PostgreSQL started
 *      for the run), the demo tenants and ~100k bulk tickets
 *   2. driver-level pair, in this process: scoped read (one round trip) against an unscoped
 *      superuser read, a naive four-round-trip version and a hand-pipelined one
 *   3. HTTP pair: the helpdesk (tenantry) and a bare Fastify route, each in its own process,
 *      loaded from this process with autocannon in alternating rounds
 *   4. admission: the helpdesk without admission, with in-process admission and with admission
 *      in Redis (limits never reached), alternating rounds the same way
 *   5. observe (bench/observe.ts): metrics, spans, metering, audit entries and log enrichment
 *      on and off, on reads and on writes
 *   6. noisy neighbour and 7. cohorts (bench/neighbours.ts): catalog tenants under the built-in
 *      plans, open-loop load
 *
 * BENCH_ONLY=http,driver,admission,observe,noisy,cohorts (any of them, comma-separated) runs a part.
 *
 * Results: a table on stdout and bench/results/latest.json. Settings: see `settings` below.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Tenantry } from '../src/index.js';
import { createPool, withEndpoint } from '../src/data/driver/index.js';
import { pgBouncerBinary, startPgBouncer } from '../scripts/pgbouncer.js';
import { JWT_SECRET, ROLE_PASSWORD, cleanupOnExit, clockTicks, machine, migrationsDir, projectRoot } from './common.js';
import { demoTenants, openBenchDatabase, seedBench, serverVersion, ticketIds } from './database.js';
import { driverModes, runDriverPair, type DriverPhase, type DriverResult } from './driver.js';
import {
  BackendCpu, ServerProcess, barePgApplications, bareRlsPgApplications, runHttpPair, sideNames, tenantryPgApplications,
  type HttpResult, type HttpSideSummary, type HttpTarget, type Side,
} from './http.js';
import { fmt, ratio, round, table } from './stats.js';
import { openBenchRedis } from './redis.js';
import { createBenchTenants, loginOwner, type BenchTenant, type TenantSpec } from './tenants.js';
import { cohortReport, noisyReport, runCohorts, runNoisy, type CohortResult, type NoisyResult } from './neighbours.js';
import { observeReport, runObserve, type ObserveResult } from './observe.js';

const HTTP_TARGET = 0.85;
const ADMISSION_TARGET = 0.95;

function int(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

const scenarios = ['driver', 'http', 'admission', 'observe', 'noisy', 'cohorts'] as const;
type Scenario = (typeof scenarios)[number];
const selected = new Set<Scenario>(process.env.BENCH_ONLY
  ? process.env.BENCH_ONLY.split(',').map((x) => {
    const name = x.trim() as Scenario;
    if (!scenarios.includes(name)) throw new Error(`BENCH_ONLY: ${JSON.stringify(x)} is none of ${scenarios.join(', ')}`);
    return name;
  })
  : scenarios);
const list = (name: string, fallback: number[]): number[] => {
  const raw = process.env[name];
  if (!raw) return fallback;
  const xs = raw.split(',').map(Number);
  if (xs.length !== fallback.length || xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`${name} must be ${fallback.length} comma-separated integers >= 1`);
  return xs;
};
const cohortTickets = list('BENCH_COHORT_TICKETS', [100, 5_000, 50_000]);
const cohortRates = list('BENCH_COHORT_RATES', [20, 40, 80]);
const settings = {
  tenants: int('BENCH_TENANTS', 50),
  ticketsPerTenant: int('BENCH_TICKETS', 2000),
  ids: int('BENCH_IDS', 500),
  http: {
    duration: int('BENCH_DURATION', 10),
    warmup: int('BENCH_WARMUP', 3),
    rounds: int('BENCH_ROUNDS', 3),
    connections: int('BENCH_CONNECTIONS', 32),
    pool: int('BENCH_POOL', 10),
    ids: 0,
    barePrepared: process.env.BENCH_BARE_PREPARE !== '0',
  },
  driver: {
    concurrency: int('BENCH_DRIVER_CONCURRENCY', 16),
    pool: int('BENCH_DRIVER_POOL', 16),
    ops: int('BENCH_DRIVER_OPS', 6000),
    sequentialOps: int('BENCH_DRIVER_SEQ_OPS', 1500),
    rounds: int('BENCH_ROUNDS', 3),
    warmupOps: int('BENCH_DRIVER_WARMUP', 1000),
  },
  noisy: {
    quietTenants: int('BENCH_NOISY_QUIET', 6),
    quietRate: int('BENCH_NOISY_QUIET_RATE', 40),
    quietTickets: 2_000,
    floodFactor: int('BENCH_NOISY_FLOOD_FACTOR', 10),
    heavyTickets: int('BENCH_NOISY_HEAVY_TICKETS', 10_000),
    heavyWords: int('BENCH_NOISY_HEAVY_WORDS', 150),
    seconds: int('BENCH_NOISY_SECONDS', 6),
    rounds: int('BENCH_NOISY_ROUNDS', 3),
    warmup: int('BENCH_WARMUP', 3),
    redis: process.env.BENCH_NOISY_REDIS === '1',
  },
  cohorts: {
    tickets: { small: cohortTickets[0]!, medium: cohortTickets[1]!, large: cohortTickets[2]! },
    rates: { small: cohortRates[0]!, medium: cohortRates[1]!, large: cohortRates[2]! },
    plans: { small: 'free', medium: 'pro', large: 'business' },
    mix: { get: 60, list: 20, search: 10, create: 10 },
    seconds: int('BENCH_COHORT_SECONDS', 30),
    warmup: int('BENCH_WARMUP', 3),
  },
};
settings.http.ids = settings.ids;

const started = Date.now();
const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}`);

const { onCleanup, cleanup } = cleanupOnExit();



async function login(port: number, slug: string, email: string, password: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-tenant': slug }, body: JSON.stringify({ email, password }),
  });
  if (res.status !== 200) throw new Error(`login as ${email} failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function getJson(url: string, headers: Record<string, string>): Promise<Record<string, unknown>> {
  const res = await fetch(url, { headers });
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

async function main(): Promise<number> {
  const tenant0 = demoTenants[0]!;
  log(`database: ${process.env.BENCH_DATABASE_URL ? 'BENCH_DATABASE_URL' : 'starting an embedded PostgreSQL'}`);
  const db = await openBenchDatabase(onCleanup);
  const pgVersion = await serverVersion(db.url);
  const env = await machine(pgVersion);
  log(`database ${db.name} on ${db.server} (${pgVersion.split(',')[0]})`);

  // The orchestrator's own stack: seeds, then serves the driver-level pair.
  const tenantry = await Tenantry.start({
    databaseUrl: db.url,
    migrationsDir,
    jwt: { secret: JWT_SECRET, issuer: 'tenantry', audience: 'tenantry-api', ttlSeconds: 3600 },
    rolePasswords: { app: ROLE_PASSWORD, platform: ROLE_PASSWORD },
    poolMax: settings.driver.pool,
  });
  let tenantryOpen = true;
  onCleanup(async () => { if (tenantryOpen) await tenantry.close(); });
  const seed = await seedBench(tenantry, db.url, settings.tenants, settings.ticketsPerTenant);
  log(`seeded ${fmt(seed.totalTickets)} tickets (${seed.bulkTenants} bulk tenants + ${demoTenants.length} demo tenants × ${seed.ticketsPerTenant}) in ${seed.seconds.toFixed(1)} s`);
  const ids = await ticketIds(db.url, tenant0.id, settings.ids);
  log(`benchmark tenant ${tenant0.slug} (${tenant0.id}), ${ids.length} ticket ids`);

  let driver: DriverResult | undefined;
  if (selected.has('driver')) {
    const tenant = await tenantry.catalog.findById(tenant0.id);
    if (!tenant) throw new Error(`tenant ${tenant0.slug} is missing from the catalog`);
    driver = await runDriverPair(tenantry, db.url, tenant, ids, settings.driver, log);
  }
  tenantryOpen = false;
  await tenantry.close();

  let http: HttpResult | undefined;
  if (selected.has('http')) {
    const serverEnv = { BENCH_DB_URL: db.url, BENCH_POOL: String(settings.http.pool) };
    // PgBouncer in transaction mode in front of the same server: the tenantry-pgb/bare-pgb pair.
    const bouncer = pgBouncerBinary() && process.env.BENCH_PGBOUNCER !== '0'
      ? await startPgBouncer({ upstreamUrl: db.url, poolSize: settings.http.pool, users: {
        tenantry_app: ROLE_PASSWORD, tenantry_platform: ROLE_PASSWORD,
        [decodeURIComponent(new URL(db.url).username)]: decodeURIComponent(new URL(db.url).password),
      } })
      : undefined;
    if (bouncer) onCleanup(() => bouncer.stop());
    else log('http: no PgBouncer (not installed, or BENCH_PGBOUNCER=0): the pair through it is skipped');
    log(`http: starting the ${bouncer ? 'five' : 'three'} server processes`);
    const [tServer, rServer, bServer, tpServer, bpServer] = await Promise.all([
      ServerProcess.start('tenantry', 'bench/server-tenantry.ts', serverEnv, onCleanup),
      ServerProcess.start('bare-rls', 'bench/server-bare.ts', { ...serverEnv, BENCH_BARE_MODE: 'rls' }, onCleanup),
      ServerProcess.start('bare', 'bench/server-bare.ts', { ...serverEnv, BENCH_BARE_MODE: 'plain' }, onCleanup),
      bouncer && ServerProcess.start('tenantry-pgb', 'bench/server-tenantry.ts', { ...serverEnv, BENCH_RUNTIME_URL: bouncer.url }, onCleanup),
      bouncer && ServerProcess.start('bare-pgb', 'bench/server-bare.ts',
        { ...serverEnv, BENCH_DB_URL: withEndpoint(db.url, bouncer.url), BENCH_BARE_MODE: 'plain', BENCH_BARE_PREPARE: '0' }, onCleanup),
    ]);
    const owner = tenant0.users.find((u) => u.role === 'owner')!;
    const token = await login(tServer.port, tenant0.slug, owner.email, owner.password);
    // Limits are on by default: the tenantry sides run with plans no load reaches (roomyPlans),
    // and any 429 would fail the run like every other non-2xx.
    const tHeaders = { authorization: `Bearer ${token}` };
    const bHeaders = { 'x-tenant': tenant0.id };
    // All answer the same row for the same id (and accept the JWT) before any load.
    for (const id of ids.slice(0, 3)) {
      const b = await getJson(`http://127.0.0.1:${bServer.port}/tickets/${id}`, bHeaders);
      for (const s of [tServer, rServer]) {
        const a = s === tServer
          ? await getJson(`http://127.0.0.1:${s.port}/api/v1/tickets/${id}`, tHeaders)
          : await getJson(`http://127.0.0.1:${s.port}/tickets/${id}`, bHeaders);
        if (a.id !== id || JSON.stringify(a) !== JSON.stringify(b)) {
          throw new Error(`${s.side} and bare disagree on ticket ${id}:\n  ${s.side} ${JSON.stringify(a)}\n  bare ${JSON.stringify(b)}`);
        }
      }
    }
    const monitor = createPool(db.url, { max: 1, applicationName: 'bench-monitor' });
    onCleanup(() => monitor.end());
    const pgCpu = new BackendCpu(monitor, db.local && process.platform === 'linux', clockTicks());
    const tenantryRequests = ids.map((id) => ({ method: 'GET', path: `/api/v1/tickets/${id}`, headers: tHeaders }));
    const targets: HttpTarget[] = [
      { side: 'tenantry', server: tServer, pgApplications: tenantryPgApplications, requests: tenantryRequests },
      { side: 'bare-rls', server: rServer, pgApplications: bareRlsPgApplications,
        requests: ids.map((id) => ({ method: 'GET', path: `/tickets/${id}`, headers: bHeaders })) },
      { side: 'bare', server: bServer, pgApplications: barePgApplications,
        requests: ids.map((id) => ({ method: 'GET', path: `/tickets/${id}`, headers: bHeaders })) },
    ];
    if (tpServer && bpServer) {
      targets.push(
        { side: 'tenantry-pgb', server: tpServer, pgApplications: tenantryPgApplications, requests: tenantryRequests, baseline: 'bare-pgb' },
        { side: 'bare-pgb', server: bpServer, pgApplications: barePgApplications, baseline: 'bare-pgb',
          requests: ids.map((id) => ({ method: 'GET', path: `/tickets/${id}`, headers: bHeaders })) },
      );
    }
    http = await runHttpPair(targets, settings.http, pgCpu, log);
    await Promise.all([tServer.stop(), rServer.stop(), bServer.stop(), tpServer?.stop(), bpServer?.stop()]);
  }

  let admission: (HttpResult & { redis: { server: string; prefix: string } }) | undefined;
  if (selected.has('admission')) admission = await runAdmission(db, ids);

  let observe: ObserveResult | undefined;
  if (selected.has('observe')) observe = await runObserve({ db, ids, settings: settings.http, onCleanup, log, login });

  let noisy: NoisyResult | undefined;
  let cohorts: CohortResult | undefined;
  if (selected.has('noisy') || selected.has('cohorts')) ({ noisy, cohorts } = await runNeighbours(db));

  const result = {
    date: new Date().toISOString(),
    durationSeconds: round((Date.now() - started) / 1000, 1),
    machine: { ...env, loadAvgAtEnd: os.loadavg().map((x) => round(x, 2)) },
    database: { server: db.server, seed },
    benchmarkTenant: { slug: tenant0.slug, id: tenant0.id, ids: ids.length },
    settings,
    http,
    admission,
    observe,
    noisy,
    cohorts,
    driver: driver && {
      ...driver,
      ratios: {
        concurrent: driverRatios(driver.concurrent),
        sequential: driverRatios(driver.sequential),
      },
    },
  };
  console.log('\n' + report(result));
  const out = path.join(projectRoot, 'bench', 'results', 'latest.json');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nresults written to ${path.relative(process.cwd(), out)}`);
  return 0;
}

function driverRatios(p: DriverPhase) {
  const m = p.modes;
  const pairs = { aOverB: ['a', 'b'], cOverB: ['c', 'b'], aOverC: ['a', 'c'], aOverD: ['a', 'd'], dOverB: ['d', 'b'] } as const;
  const of = (f: (x: DriverPhase['modes']['a']) => number) =>
    Object.fromEntries(Object.entries(pairs).map(([k, [x, y]]) => [k, round(ratio(f(m[x]), f(m[y])), 3)])) as Record<keyof typeof pairs, number>;
  return { throughput: of((x) => x.opsPerSec), p50Latency: of((x) => x.p50Ms) };
}

/**
 * Issue 9 §7: the cost of admission on the P1 pair. Three helpdesk servers, identical but for the
 * admission: none, in-process, in Redis (a private redis-server by default), all with roomy plans
 * so that no limit is ever reached; rounds alternate between them.
 */
async function runAdmission(db: Awaited<ReturnType<typeof openBenchDatabase>>, ids: string[]) {
  const tenant0 = demoTenants[0]!;
  const redis = await openBenchRedis(onCleanup, clockTicks());
  log(`admission: Redis ${redis.server} (${redis.url}), key prefix ${redis.prefix}`);
  const serverEnv = { BENCH_DB_URL: db.url, BENCH_POOL: String(settings.http.pool) };
  const [nServer, tServer, rServer] = await Promise.all([
    ServerProcess.start('tenantry-noadmission', 'bench/server-tenantry.ts', { ...serverEnv, BENCH_ADMISSION: 'off' }, onCleanup),
    ServerProcess.start('tenantry', 'bench/server-tenantry.ts', serverEnv, onCleanup),
    ServerProcess.start('tenantry-redis', 'bench/server-tenantry.ts', { ...serverEnv, BENCH_REDIS_URL: redis.url, BENCH_REDIS_PREFIX: redis.prefix }, onCleanup),
  ]);
  const owner = tenant0.users.find((u) => u.role === 'owner')!;
  const token = await login(tServer.port, tenant0.slug, owner.email, owner.password);
  const headers = { authorization: `Bearer ${token}` };
  // Admission answers carry the RateLimit fields; without admission there are none.
  for (const [s, expect] of [[nServer, false], [tServer, true], [rServer, true]] as const) {
    const res = await fetch(`http://127.0.0.1:${s.port}/api/v1/tickets/${ids[0]}`, { headers });
    await res.arrayBuffer();
    if (res.status !== 200 || res.headers.has('ratelimit') !== expect) {
      throw new Error(`${s.side}: status ${res.status}, RateLimit field ${res.headers.get('ratelimit') ?? 'absent'} (expected ${expect ? 'present' : 'absent'})`);
    }
  }
  const monitor = createPool(db.url, { max: 1, applicationName: 'bench-monitor' });
  onCleanup(() => monitor.end());
  const pgCpu = new BackendCpu(monitor, db.local && process.platform === 'linux', clockTicks());
  const requests = ids.map((id) => ({ method: 'GET', path: `/api/v1/tickets/${id}`, headers }));
  const base = 'tenantry-noadmission' as const;
  const result = await runHttpPair([
    { side: base, server: nServer, pgApplications: tenantryPgApplications, requests, baseline: base },
    { side: 'tenantry', server: tServer, pgApplications: tenantryPgApplications, requests, baseline: base },
    { side: 'tenantry-redis', server: rServer, pgApplications: tenantryPgApplications, requests, baseline: base,
      ...(redis.cpuMicros ? { otherCpu: redis.cpuMicros } : {}) },
  ], settings.http, pgCpu, log);
  await Promise.all([nServer.stop(), tServer.stop(), rServer.stop()]);
  return { ...result, redis: { server: redis.server, prefix: redis.prefix } };
}

/**
 * Noisy neighbour and cohorts: catalog tenants created for them (after the pairs, so that the
 * pairs' database is the one of earlier runs), one helpdesk server with the built-in plans.
 */
async function runNeighbours(db: Awaited<ReturnType<typeof openBenchDatabase>>): Promise<{ noisy?: NoisyResult; cohorts?: CohortResult }> {
  const n = settings.noisy;
  const c = settings.cohorts;
  const specs: (TenantSpec & { role: string })[] = [];
  if (selected.has('noisy')) {
    for (let i = 1; i <= n.quietTenants; i++) {
      specs.push({ role: 'quiet', slug: `quiet-${i}`, plan: 'pro', isolation: i % 2 ? 'pooled' : 'schema', tickets: n.quietTickets, descriptionWords: 30 });
    }
    specs.push({ role: 'flood', slug: 'flood', plan: 'free', isolation: 'pooled', tickets: 500, descriptionWords: 30 });
    specs.push({ role: 'heavy', slug: 'heavy', plan: 'free', isolation: 'pooled', tickets: n.heavyTickets, descriptionWords: n.heavyWords });
  }
  if (selected.has('cohorts')) {
    for (const cohort of ['small', 'medium', 'large'] as const) {
      for (const isolation of ['pooled', 'schema'] as const) {
        specs.push({ role: cohort, slug: `${cohort}-${isolation}`, plan: c.plans[cohort], isolation, tickets: c.tickets[cohort], descriptionWords: 40 });
      }
    }
  }
  const t0 = performance.now();
  const seeder = await Tenantry.start({
    databaseUrl: db.url, migrationsDir,
    jwt: { secret: JWT_SECRET, issuer: 'tenantry', audience: 'tenantry-api', ttlSeconds: 3600 },
    rolePasswords: { app: ROLE_PASSWORD, platform: ROLE_PASSWORD }, poolMax: 2,
  });
  let tenants: BenchTenant[];
  try {
    tenants = await createBenchTenants(seeder, db.url, specs, 100, 500);
  } finally {
    await seeder.close();
  }
  const roleOf = new Map(specs.map((s) => [s.slug, s.role]));
  const byRole = (role: string) => tenants.filter((t) => roleOf.get(t.slug) === role);
  log(`neighbours: ${tenants.length} tenants, ${fmt(tenants.reduce((s, t) => s + t.tickets, 0))} tickets in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const redis = n.redis ? await openBenchRedis(onCleanup, clockTicks()) : undefined;
  const server = await ServerProcess.start('tenantry', 'bench/server-tenantry.ts', {
    BENCH_DB_URL: db.url, BENCH_POOL: String(settings.http.pool), BENCH_PLANS: 'builtin',
    ...(redis ? { BENCH_REDIS_URL: redis.url, BENCH_REDIS_PREFIX: redis.prefix } : {}),
  }, onCleanup);
  const monitor = createPool(db.url, { max: 1, applicationName: 'bench-monitor' });
  onCleanup(() => monitor.end());
  const backends = new BackendCpu(monitor, db.local && process.platform === 'linux', clockTicks());
  const pgCpu = () => backends.follow(tenantryPgApplications);
  const tokens = new Map<string, string>();
  for (const t of tenants) tokens.set(t.slug, await loginOwner(server.port, t));
  // The logins spent a token of each bucket: let them refill.
  await new Promise((r) => setTimeout(r, 1000));
  let noisy: NoisyResult | undefined;
  let cohorts: CohortResult | undefined;
  if (selected.has('noisy')) {
    noisy = await runNoisy(server.port, { quiet: byRole('quiet'), flood: byRole('flood')[0]!, heavy: byRole('heavy')[0]! }, tokens, n,
      () => server.cpuMicros(), pgCpu, log);
    server.assertAlive();
  }
  if (selected.has('cohorts')) {
    cohorts = await runCohorts(server.port, tenants.filter((t) => ['small', 'medium', 'large'].includes(roleOf.get(t.slug)!))
      .map((t) => ({ ...t, cohort: roleOf.get(t.slug)! })), tokens, c, () => server.cpuMicros(), pgCpu, log);
    server.assertAlive();
  }
  await server.stop();
  return { ...(noisy ? { noisy } : {}), ...(cohorts ? { cohorts } : {}) };
}

interface Report {
  machine: Awaited<ReturnType<typeof machine>> & { loadAvgAtEnd: number[] };
  http: HttpResult | undefined;
  admission: (HttpResult & { redis: { server: string } }) | undefined;
  observe: ObserveResult | undefined;
  noisy: NoisyResult | undefined;
  cohorts: CohortResult | undefined;
  driver: (DriverResult & { ratios: { concurrent: ReturnType<typeof driverRatios>; sequential: ReturnType<typeof driverRatios> } }) | undefined;
  durationSeconds: number;
}

function report(r: Report): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, node ${m.node}, ${m.postgres.split(',')[0]}`);
  out.push(`load average at start ${m.loadAvgAtStart.join(' ')}, at end ${m.loadAvgAtEnd.join(' ')}; run took ${r.durationSeconds} s`);
  const warns: string[] = [];
  if (r.http) {
    const h = r.http;
    const s = h.settings;
    out.push('', `HTTP  GET /api/v1/tickets/:id, ${s.connections} connections, ${s.rounds} alternating rounds × ${s.duration} s, ` +
      `pool ${s.pool} per server, ${s.ids} ids; bare statement ${s.barePrepared ? 'prepared' : 'unprepared'}`);
    const row = (x: HttpSideSummary) => [sideNames[x.side], fmt(x.medianRps), fmt(x.medianP50Ms), fmt(x.medianP99Ms),
      fmt(x.medianServerCpuUsPerReq, 1), x.medianPgCpuUsPerReq === undefined ? 'n/a' : fmt(x.medianPgCpuUsPerReq, 1), fmt(x.totalRequests), String(x.non2xx + x.errors)];
    out.push(table(['side', 'req/s (median)', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'PG CPU µs/req', 'requests', 'non-2xx+errors'],
      (Object.values(h.sides) as HttpSideSummary[]).map(row)));
    for (const [side, v] of Object.entries(h.vsBare) as [Side, NonNullable<HttpResult['vsBare'][Side]>][]) {
      const label = `${side}/${h.baselineOf[side] ?? 'bare'}`;
      out.push(`throughput ratio ${label}: ${v.throughputRatio.toFixed(3)}${side === 'tenantry' || side === 'tenantry-pgb' ? ` (target >= ${HTTP_TARGET})` : ''}; ` +
        `per round ${v.perRoundRatios.map((x) => x.toFixed(3)).join(', ')}; CPU per request: server ${v.serverCpuRatio.toFixed(2)}×` +
        (v.pgCpuRatio === undefined ? '' : `, PostgreSQL ${v.pgCpuRatio.toFixed(2)}×`));
    }
    const tn = h.sides.tenantry;
    const br = h.sides['bare-rls'];
    if (tn && br) {
      out.push(`throughput ratio tenantry/bare-rls (the toolkit's HTTP layer): ${ratio(tn.medianRps, br.medianRps).toFixed(3)}; ` +
        `CPU per request: server ${ratio(tn.medianServerCpuUsPerReq, br.medianServerCpuUsPerReq).toFixed(2)}×` +
        (tn.medianPgCpuUsPerReq === undefined || br.medianPgCpuUsPerReq === undefined ? ''
          : `, PostgreSQL ${ratio(tn.medianPgCpuUsPerReq, br.medianPgCpuUsPerReq).toFixed(2)}×`));
    }
    out.push('', table(['round', 'side', 'req/s', 'p50 ms', 'p99 ms', 'server µs/req', 'PG µs/req', 'loadgen CPU %'],
      h.rounds.map((x) => [String(x.round), x.side, fmt(x.rps), fmt(x.latencyP50Ms), fmt(x.latencyP99Ms), fmt(x.serverCpuUsPerReq, 1),
        x.pgCpuUsPerReq === undefined ? 'n/a' : fmt(x.pgCpuUsPerReq, 1), fmt(x.loadgenCpuPct)])));
    const t = h.vsBare.tenantry;
    if (t && !(t.throughputRatio >= HTTP_TARGET)) {
      warns.push(`WARN: HTTP throughput ratio tenantry/bare ${t.throughputRatio.toFixed(3)} is below the target ${HTTP_TARGET}`);
    }
  }
  if (r.driver) {
    const d = r.driver;
    out.push('', `DRIVER  socket writes to PostgreSQL per read, one in flight (= round trips): ` +
      driverModes.map((k) => `${k} ${d.writesPerOp[k]}`).join(', '));
    out.push(`DRIVER  TokenService.verify(): ${d.jwt.verifyCpuUs} µs CPU per call (${d.jwt.verifyWallUs} µs wall), paid by every JWT request`);
    for (const [label, p, ratios] of [
      ['concurrent', d.concurrent, d.ratios.concurrent], ['sequential', d.sequential, d.ratios.sequential],
    ] as const) {
      out.push('', `DRIVER  ${label}: ${p.concurrency} in flight, pool ${d.settings.pool}, ${d.settings.rounds} rounds × ${fmt(p.opsPerRound)} ops per mode`);
      out.push(table(['mode', 'ops/s (median)', 'p50 ms', 'p99 ms', 'mean ms', 'per round ops/s'],
        driverModes.map((k) => {
          const x = p.modes[k];
          return [x.name, fmt(x.opsPerSec), fmt(x.p50Ms, 3), fmt(x.p99Ms, 3), fmt(x.meanMs, 3), x.roundOpsPerSec.map((v) => fmt(v)).join(' / ')];
        })));
      const fmtRatios = (o: Record<string, number>, suffix: string) =>
        Object.entries(o).map(([k, v]) => `${k.replace(/Over(.)/, (_, c: string) => '/' + c.toLowerCase())} ${v.toFixed(3)}${suffix}`).join(', ');
      out.push(`throughput ${fmtRatios(ratios.throughput, '')}`);
      out.push(`p50 latency ${fmtRatios(ratios.p50Latency, '×')}`);
    }
    if (d.writesPerOp.a > 1.05) {
      warns.push(`WARN: tenantry.db.query() takes ${d.writesPerOp.a} round trips per read, not one (hand-pipelined: ${d.writesPerOp.d})`);
    }
  }
  if (r.admission) {
    const a = r.admission;
    const s = a.settings;
    out.push('', `ADMISSION  GET /api/v1/tickets/:id, ${s.connections} connections, ${s.rounds} alternating rounds × ${s.duration} s, ` +
      `pool ${s.pool} per server; roomy plans (no limit reached); Redis: ${a.redis.server}`);
    out.push(table(['side', 'req/s (median)', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'PG CPU µs/req', 'Redis CPU µs/req', 'requests', 'non-2xx+errors'],
      (Object.values(a.sides) as HttpSideSummary[]).map((x) => [sideNames[x.side], fmt(x.medianRps), fmt(x.medianP50Ms), fmt(x.medianP99Ms),
        fmt(x.medianServerCpuUsPerReq, 1), x.medianPgCpuUsPerReq === undefined ? 'n/a' : fmt(x.medianPgCpuUsPerReq, 1),
        x.medianOtherCpuUsPerReq === undefined ? '' : fmt(x.medianOtherCpuUsPerReq, 1), fmt(x.totalRequests), String(x.non2xx + x.errors)])));
    const base = a.sides['tenantry-noadmission'];
    for (const side of ['tenantry', 'tenantry-redis'] as const) {
      const v = a.vsBare[side];
      const x = a.sides[side];
      if (!v || !x || !base) continue;
      out.push(`throughput ratio ${side}/tenantry-noadmission: ${v.throughputRatio.toFixed(3)} (target >= ${ADMISSION_TARGET}); ` +
        `per round ${v.perRoundRatios.map((y) => y.toFixed(3)).join(', ')}; server CPU per request ${v.serverCpuRatio.toFixed(2)}× ` +
        `(+${fmt(x.medianServerCpuUsPerReq - base.medianServerCpuUsPerReq, 1)} µs)` +
        (x.medianOtherCpuUsPerReq === undefined ? '' : `, plus Redis ${fmt(x.medianOtherCpuUsPerReq, 1)} µs`));
      if (!(v.throughputRatio >= ADMISSION_TARGET)) {
        warns.push(`WARN: admission: throughput ratio ${side}/tenantry-noadmission ${v.throughputRatio.toFixed(3)} is below the target ${ADMISSION_TARGET}`);
      }
    }
    out.push('', table(['round', 'side', 'req/s', 'p50 ms', 'p99 ms', 'server µs/req', 'PG µs/req', 'Redis µs/req', 'loadgen CPU %'],
      a.rounds.map((x) => [String(x.round), x.side, fmt(x.rps), fmt(x.latencyP50Ms), fmt(x.latencyP99Ms), fmt(x.serverCpuUsPerReq, 1),
        x.pgCpuUsPerReq === undefined ? 'n/a' : fmt(x.pgCpuUsPerReq, 1), x.otherCpuUsPerReq === undefined ? '' : fmt(x.otherCpuUsPerReq, 1), fmt(x.loadgenCpuPct)])));
  }
  if (r.observe) {
    const o = observeReport(r.observe);
    out.push(...o.lines);
    warns.push(...o.warns);
  }
  if (r.noisy) out.push('', ...noisyReport(r.noisy, warns));
  if (r.cohorts) out.push('', ...cohortReport(r.cohorts, warns));
  if (warns.length) out.push('', ...warns);
  return out.join('\n');
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error('\nBENCHMARK FAILED:', err instanceof Error ? err.stack ?? err.message : err);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
