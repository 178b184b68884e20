/**
 * Issue 10 §6: what metrics, spans, usage metering, audit entries and log enrichment cost. Three
 * helpdesk servers, identical (roomy plans, admission on, request lines logged at info to
 * /dev/null) but for those features: none (tenantry-plain), all but the audit entries
 * (tenantry-noaudit), all (tenantry). Rounds alternate between them.
 *
 * - Reads: the P1 pair's request, GET /api/v1/tickets/:id — tenantry/tenantry-plain is the cost of
 *   the features together (target ≥ 0.95).
 * - Writes: POST /api/v1/tickets — tenantry/tenantry-noaudit is the cost of the audit entry on a
 *   write (reported, no target), tenantry/tenantry-plain all of them on a write.
 *
 * BENCH_OBSERVE=reads (or writes) runs one half only (e.g. for a profile: BENCH_PROFILE_DIR).
 */
import { demoTenants } from './database.js';
import { BackendCpu, ServerProcess, runHttpPair, sideNames, tenantryPgApplications, type HttpResult, type HttpSettings, type HttpSideSummary } from './http.js';
import { createPool } from '../src/data/driver/index.js';
import { ADMIN_TOKEN, clockTicks } from './common.js';
import { fmt, median, table } from './stats.js';

export const OBSERVE_TARGET = 0.95;

export interface ObserveResult {
  readonly reads?: HttpResult;
  readonly writes?: HttpResult;
}

export interface ObserveDeps {
  readonly db: { readonly url: string; readonly local: boolean };
  readonly ids: readonly string[];
  readonly settings: HttpSettings;
  readonly onCleanup: (fn: () => Promise<void>) => void;
  readonly log: (line: string) => void;
  readonly login: (port: number, slug: string, email: string, password: string) => Promise<string>;
}

export async function runObserve(d: ObserveDeps): Promise<ObserveResult> {
  const tenant0 = demoTenants[0]!;
  const env = { BENCH_DB_URL: d.db.url, BENCH_POOL: String(d.settings.pool), BENCH_LOG: 'sink' };
  const [plain, noaudit, full] = await Promise.all([
    ServerProcess.start('tenantry-plain', 'bench/server-tenantry.ts', { ...env, BENCH_FEATURES: 'none' }, d.onCleanup),
    ServerProcess.start('tenantry-noaudit', 'bench/server-tenantry.ts', { ...env, BENCH_FEATURES: 'noaudit' }, d.onCleanup),
    ServerProcess.start('tenantry', 'bench/server-tenantry.ts', env, d.onCleanup),
  ]);
  const owner = tenant0.users.find((u) => u.role === 'owner')!;
  const headers = { authorization: `Bearer ${await d.login(full.port, tenant0.slug, owner.email, owner.password)}` };
  // The features are what the side says: /metrics answers on the full side only.
  for (const [s, metrics] of [[plain, 404], [full, 200]] as const) {
    const res = await fetch(`http://127.0.0.1:${s.port}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    await res.arrayBuffer();
    if (res.status !== metrics) throw new Error(`${s.side}: GET /metrics answered ${res.status}, expected ${metrics}`);
  }
  const monitor = createPool(d.db.url, { max: 1, applicationName: 'bench-monitor' });
  d.onCleanup(() => monitor.end());
  const pgCpu = new BackendCpu(monitor, d.db.local && process.platform === 'linux', clockTicks());
  const reads = d.ids.map((id) => ({ method: 'GET', path: `/api/v1/tickets/${id}`, headers }));
  const halves = process.env.BENCH_OBSERVE ?? 'both';
  if (!['both', 'reads', 'writes'].includes(halves)) throw new Error(`BENCH_OBSERVE must be reads, writes or both, got ${halves}`);
  d.log('observe: reads (GET /api/v1/tickets/:id)');
  const readResult = halves === 'writes' ? undefined : await runHttpPair([
    { side: 'tenantry-plain', server: plain, pgApplications: tenantryPgApplications, requests: reads, baseline: 'tenantry-plain' },
    { side: 'tenantry', server: full, pgApplications: tenantryPgApplications, requests: reads, baseline: 'tenantry-plain' },
  ], d.settings, pgCpu, d.log);
  const writes = Array.from({ length: 64 }, (_, i) => ({
    method: 'POST', path: '/api/v1/tickets', headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ title: `bench write ${i}`, description: 'written by the observe benchmark', priority: 'low' }),
  }));
  d.log('observe: writes (POST /api/v1/tickets)');
  const writeResult = halves === 'reads' ? undefined : await runHttpPair([
    { side: 'tenantry-plain', server: plain, pgApplications: tenantryPgApplications, requests: writes, baseline: 'tenantry-plain' },
    { side: 'tenantry-noaudit', server: noaudit, pgApplications: tenantryPgApplications, requests: writes, baseline: 'tenantry-plain' },
    { side: 'tenantry', server: full, pgApplications: tenantryPgApplications, requests: writes, baseline: 'tenantry-plain' },
  ], d.settings, pgCpu, d.log);
  await Promise.all([plain.stop(), noaudit.stop(), full.stop()]);
  return { reads: readResult, writes: writeResult };
}

/** The report's section, and its warnings. */
export function observeReport(r: ObserveResult): { lines: string[]; warns: string[] } {
  const lines: string[] = [];
  const warns: string[] = [];
  const s = (r.reads ?? r.writes)!.settings;
  const sideTable = (h: HttpResult) => table(['side', 'req/s (median)', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'PG CPU µs/req', 'requests'],
    (Object.values(h.sides) as HttpSideSummary[]).map((x) => [sideNames[x.side], fmt(x.medianRps), fmt(x.medianP50Ms), fmt(x.medianP99Ms),
      fmt(x.medianServerCpuUsPerReq, 1), x.medianPgCpuUsPerReq === undefined ? 'n/a' : fmt(x.medianPgCpuUsPerReq, 1), fmt(x.totalRequests)]));
  const ratioLine = (h: HttpResult, side: 'tenantry' | 'tenantry-noaudit', over: 'tenantry-plain' | 'tenantry-noaudit', target?: number) => {
    const a = h.sides[side];
    const b = h.sides[over];
    if (!a || !b) return undefined;
    const perRound = h.rounds.filter((x) => x.side === side).map((x) => x.rps / (h.rounds.find((y) => y.side === over && y.round === x.round)?.rps ?? NaN));
    // The median of the rounds' ratios: each round's two sides ran back to back (in alternating
    // order), so a machine whose speed drifts between rounds moves both.
    const v = median(perRound);
    lines.push(`throughput ratio ${side}/${over} (median of the rounds' ratios): ${v.toFixed(3)}${target ? ` (target >= ${target})` : ''}; ` +
      `of the medians ${(a.medianRps / b.medianRps).toFixed(3)}; per round ${perRound.map((x) => x.toFixed(3)).join(', ')}; ` +
      `server CPU per request +${fmt(a.medianServerCpuUsPerReq - b.medianServerCpuUsPerReq, 1)} µs` +
      (a.medianPgCpuUsPerReq === undefined || b.medianPgCpuUsPerReq === undefined ? '' : `, PostgreSQL +${fmt(a.medianPgCpuUsPerReq - b.medianPgCpuUsPerReq, 1)} µs`) +
      `; p50 ${fmt(b.medianP50Ms)} → ${fmt(a.medianP50Ms)} ms`);
    return v;
  };
  lines.push('', `OBSERVE  metrics + spans + metering + audit + log enrichment, on and off; ${s.connections} connections, ` +
    `${s.rounds} alternating rounds × ${s.duration} s, pool ${s.pool}; request lines logged at info to /dev/null on every side`);
  if (r.reads) {
    lines.push('reads: GET /api/v1/tickets/:id', sideTable(r.reads));
    const readRatio = ratioLine(r.reads, 'tenantry', 'tenantry-plain', OBSERVE_TARGET);
    if (readRatio !== undefined && !(readRatio >= OBSERVE_TARGET)) {
      warns.push(`WARN: observe: throughput ratio tenantry/tenantry-plain on reads ${readRatio.toFixed(3)} is below the target ${OBSERVE_TARGET}`);
    }
  }
  if (r.writes) {
    lines.push('', 'writes: POST /api/v1/tickets', sideTable(r.writes));
    ratioLine(r.writes, 'tenantry', 'tenantry-noaudit');
    ratioLine(r.writes, 'tenantry', 'tenantry-plain');
  }
  return { lines, warns };
}
