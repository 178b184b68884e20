/**
 * Issue 9 §7: tenants under the built-in plans, in one helpdesk server process.
 *
 * - noisy neighbour: quiet tenants (pooled and schema) each offered a steady open-loop rate well
 *   under their limit, measured alone and next to (a) a tenant offering 10× its rate limit
 *   (flood), (b) a tenant running scans at its full concurrency (heavy), (c) both. Phases
 *   alternate quiet, flood, quiet, heavy, quiet, both … so that drift hits all alike.
 * - cohorts: small, medium and large tenants under mixed traffic (get, list, search, create).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { builtInPlans } from '../src/limits/plans.js';
import { latenciesOf, runStreams, summarize, type LatencySummary, type LoadRequest, type Stream, type StreamResult } from './load.js';
import { fmt, median, ratio, round, table } from './stats.js';
import { NO_MATCH_QUERY, TOPICS, type BenchTenant } from './tenants.js';

/** Follows the CPU time of the server's PostgreSQL backends during a load, microseconds (undefined: not local). */
export type PgCpuFollower = () => { stop(): Promise<number | undefined> };

export const P99_TARGET = 1.25;
export const THROUGHPUT_TARGET = 0.9;

export interface NoisySettings {
  readonly quietRate: number;
  readonly floodFactor: number;
  readonly seconds: number;
  readonly rounds: number;
  readonly warmup: number;
}

export interface NoisyTenants {
  readonly quiet: readonly BenchTenant[];
  readonly flood: BenchTenant;
  readonly heavy: BenchTenant;
}

type Phase = 'quiet' | 'flood' | 'heavy' | 'both';
const noisyPhases: readonly Exclude<Phase, 'quiet'>[] = ['flood', 'heavy', 'both'];

export interface PhaseRun {
  readonly phase: Phase;
  readonly round: number;
  readonly seconds: number;
  readonly quiet: LatencySummary & { readonly okPerSec: number; readonly offeredPerSec: number; readonly non2xx: Record<string, number>; readonly errors: number };
  readonly flood?: NoisyCounts;
  readonly heavy?: NoisyCounts;
  /** The server process's CPU, percent of one core. */
  readonly serverCpuPct: number;
  /** Its PostgreSQL backends' CPU, percent of one core. */
  readonly pgCpuPct?: number;
  /** Quiet tenants by placement: p50/p99 of their 2xx answers. */
  readonly quietBy: Record<string, LatencySummary>;
  /** This process (the load generator): CPU, percent of one core, and its event loop's delay p99 (ms). */
  readonly loadgenCpuPct: number;
  readonly loadgenLoopDelayP99Ms: number;
}

export interface NoisyCounts {
  readonly offered: number;
  readonly admitted: number;
  readonly refused429: number;
  /** 429s by problem code: rate_limited, concurrency_limited. */
  readonly refusedBy: Record<string, number>;
  readonly other: Record<string, number>;
  readonly errors: number;
  readonly admittedPerSec: number;
  readonly admittedP50Ms: number;
  readonly admittedP99Ms: number;
}

export interface PhaseSummary {
  readonly phase: Phase;
  /** Medians of the rounds' quiet p50 and p99 (2xx answers, from when each request was due). */
  readonly quietP50Ms: number;
  readonly quietP99Ms: number;
  /** Median over rounds of the quiet tenants' 2xx answers per second. */
  readonly quietOkPerSec: number;
  readonly quietNon2xx: number;
  readonly floodAdmitted: number;
  readonly floodRefused: number;
  readonly floodRefusedBy: Record<string, number>;
  readonly heavyAdmitted: number;
  readonly heavyRefused: number;
  readonly heavyRefusedBy: Record<string, number>;
  /** Medians over rounds. */
  readonly serverCpuPct: number;
  readonly pgCpuPct: number | undefined;
  readonly loadgenCpuPct: number;
  readonly loadgenLoopDelayP99Ms: number;
  /** Medians over rounds of the quiet pooled and schema tenants' p99. */
  readonly quietPooledP99Ms: number;
  readonly quietSchemaP99Ms: number;
  readonly heavyOther: number;
  /** Against the quiet-only phases: p99 (target ≤ 1.25) and throughput (target ≥ 0.9). */
  readonly p99Ratio?: number;
  readonly throughputRatio?: number;
  /** The same against the quiet phase just before, per round. */
  readonly perRoundP99Ratios?: number[];
}

export interface NoisyResult {
  readonly settings: NoisySettings & { readonly quietTenants: string[]; readonly flood: string; readonly heavy: string; readonly floodRate: number;
    readonly heavyConcurrency: number; readonly heavyRequest: string };
  readonly runs: PhaseRun[];
  readonly phases: PhaseSummary[];
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

function getById(t: BenchTenant, token: string): (i: number) => LoadRequest {
  const headers = auth(token);
  return (i) => ({ method: 'GET', path: `/api/v1/tickets/${t.ids[i % t.ids.length]}`, headers, kind: 'get' });
}

function counts(r: StreamResult, seconds: number): NoisyCounts {
  const other: Record<string, number> = {};
  const refusedBy: Record<string, number> = {};
  for (const [code, n] of Object.entries(r.status)) {
    if (code.startsWith('429')) refusedBy[code.slice(4) || 'unknown'] = n;
    else if (!code.startsWith('2')) other[code] = n;
  }
  const lat = summarize(latenciesOf([r]));
  return { offered: r.sent, admitted: r.ok, refused429: Object.values(refusedBy).reduce((a, b) => a + b, 0), refusedBy, other, errors: r.errors,
    admittedPerSec: round(r.okInWindow / seconds, 1), admittedP50Ms: lat.p50Ms, admittedP99Ms: lat.p99Ms };
}

export async function runNoisy(port: number, tenants: NoisyTenants, tokens: ReadonlyMap<string, string>, settings: NoisySettings,
  serverCpuMicros: () => Promise<number>, pgCpu: PgCpuFollower, log: (line: string) => void): Promise<NoisyResult> {
  const isolationOf = new Map(tenants.quiet.map((t) => [t.slug, t.isolation]));
  const floodLimits = builtInPlans[tenants.flood.plan]!;
  const heavyLimits = builtInPlans[tenants.heavy.plan]!;
  const floodRate = floodLimits.requests_per_second * settings.floodFactor;
  const heavyPath = `/api/v1/tickets?q=${NO_MATCH_QUERY}&limit=25`;
  const quietStreams: Stream[] = tenants.quiet.map((t) => ({
    name: t.slug, group: 'quiet', port, rate: settings.quietRate, request: getById(t, tokens.get(t.slug)!),
  }));
  const flood: Stream = { name: tenants.flood.slug, group: 'flood', port, rate: floodRate, maxSockets: 64,
    request: getById(tenants.flood, tokens.get(tenants.flood.slug)!) };
  const heavyHeaders = auth(tokens.get(tenants.heavy.slug)!);
  const heavy: Stream = { name: tenants.heavy.slug, group: 'heavy', port, concurrency: heavyLimits.concurrent_requests,
    request: () => ({ method: 'GET', path: heavyPath, headers: heavyHeaders, kind: 'search' }) };
  const streamsOf = (phase: Phase): Stream[] => [
    ...quietStreams,
    ...(phase === 'flood' || phase === 'both' ? [flood] : []),
    ...(phase === 'heavy' || phase === 'both' ? [heavy] : []),
  ];

  log(`noisy: warm-up ${settings.warmup} s (quiet tenants and the heavy tenant's scans)`);
  await runStreams([...quietStreams, heavy], settings.warmup);
  // The flood's bucket and the heavy tenant's leases start each phase as a fresh client would find them.
  await new Promise((r) => setTimeout(r, 1000));

  const runs: PhaseRun[] = [];
  for (let round_ = 1; round_ <= settings.rounds; round_++) {
    for (const noisy of noisyPhases) {
      for (const phase of ['quiet', noisy] as const) {
        const delay = monitorEventLoopDelay({ resolution: 10 });
        delay.enable();
        const cpu0 = process.cpuUsage();
        const server0 = await serverCpuMicros();
        const pg = pgCpu();
        const t0 = performance.now();
        const results = await runStreams(streamsOf(phase), settings.seconds);
        const wallUs = (performance.now() - t0) * 1000;
        const pgUs = await pg.stop();
        const server1 = await serverCpuMicros();
        const cpu = process.cpuUsage(cpu0);
        delay.disable();
        const quiet = results.filter((r) => r.group === 'quiet');
        const non2xx: Record<string, number> = {};
        for (const r of quiet) for (const [code, n] of Object.entries(r.status)) if (!code.startsWith('2')) non2xx[code] = (non2xx[code] ?? 0) + n;
        const q = summarize(latenciesOf(quiet));
        const ok = quiet.reduce((s, r) => s + r.okInWindow, 0);
        const offered = quiet.reduce((s, r) => s + r.sent, 0);
        const f = results.find((r) => r.group === 'flood');
        const h = results.find((r) => r.group === 'heavy');
        const run: PhaseRun = {
          phase, round: round_, seconds: settings.seconds,
          quiet: { ...q, okPerSec: round(ok / settings.seconds, 1), offeredPerSec: round(offered / settings.seconds, 1), non2xx,
            errors: quiet.reduce((s, r) => s + r.errors, 0) },
          ...(f ? { flood: counts(f, settings.seconds) } : {}),
          ...(h ? { heavy: counts(h, settings.seconds) } : {}),
          serverCpuPct: round(((server1 - server0) / wallUs) * 100, 0),
          ...(pgUs === undefined ? {} : { pgCpuPct: round((pgUs / wallUs) * 100, 0) }),
          quietBy: Object.fromEntries(['pooled', 'schema'].map((iso) => [iso, summarize(latenciesOf(quiet.filter((r) => isolationOf.get(r.name) === iso)))])),
          loadgenCpuPct: round(((cpu.user + cpu.system) / wallUs) * 100, 0),
          loadgenLoopDelayP99Ms: round(delay.percentile(99) / 1e6, 1),
        };
        runs.push(run);
        log(`noisy: round ${round_}/${settings.rounds} ${phase.padEnd(5)} quiet p50 ${run.quiet.p50Ms} ms, p99 ${run.quiet.p99Ms} ms, ` +
          `${run.quiet.okPerSec}/${run.quiet.offeredPerSec} ok/offered per s` +
          (Object.keys(non2xx).length ? `, quiet non-2xx ${JSON.stringify(non2xx)}` : '') +
          (run.flood ? `; flood admitted ${run.flood.admitted}, refused ${JSON.stringify(run.flood.refusedBy)}` : '') +
          (run.heavy ? `; heavy admitted ${run.heavy.admitted} (p50 ${run.heavy.admittedP50Ms} ms), refused ${JSON.stringify(run.heavy.refusedBy)}` +
            (Object.keys(run.heavy.other).length ? `, other ${JSON.stringify(run.heavy.other)}` : '') : '') +
          `; quiet p99 pooled ${run.quietBy.pooled?.p99Ms} ms, schema ${run.quietBy.schema?.p99Ms} ms` +
          `; CPU server ${run.serverCpuPct} %, PostgreSQL ${run.pgCpuPct ?? 'n/a'} %, load generator ${run.loadgenCpuPct} % (loop delay p99 ${run.loadgenLoopDelayP99Ms} ms)`);
        // Let the bucket refill and the queues drain before the next phase.
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
  // A phase's p50 and p99 are the medians of its rounds' (each round has seconds × rate samples).
  const summaryOf = (phase: Phase): PhaseSummary => {
    const rs = runs.filter((r) => r.phase === phase);
    const sum = (f: (r: PhaseRun) => number) => rs.reduce((s, r) => s + f(r), 0);
    return {
      phase,
      quietP50Ms: round(median(rs.map((r) => r.quiet.p50Ms)), 2),
      quietP99Ms: round(median(rs.map((r) => r.quiet.p99Ms)), 2),
      quietOkPerSec: round(median(rs.map((r) => r.quiet.okPerSec)), 1),
      quietNon2xx: sum((r) => Object.values(r.quiet.non2xx).reduce((a, b) => a + b, 0) + r.quiet.errors),
      floodAdmitted: sum((r) => r.flood?.admitted ?? 0),
      floodRefused: sum((r) => r.flood?.refused429 ?? 0),
      heavyAdmitted: sum((r) => r.heavy?.admitted ?? 0),
      heavyRefused: sum((r) => r.heavy?.refused429 ?? 0),
      heavyOther: sum((r) => Object.values(r.heavy?.other ?? {}).reduce((a, b) => a + b, 0) + (r.heavy?.errors ?? 0)),
      floodRefusedBy: mergeCounts(rs.map((r) => r.flood?.refusedBy ?? {})),
      heavyRefusedBy: mergeCounts(rs.map((r) => r.heavy?.refusedBy ?? {})),
      serverCpuPct: median(rs.map((r) => r.serverCpuPct)),
      pgCpuPct: rs.every((r) => r.pgCpuPct !== undefined) ? median(rs.map((r) => r.pgCpuPct!)) : undefined,
      quietPooledP99Ms: round(median(rs.map((r) => r.quietBy.pooled?.p99Ms ?? Number.NaN)), 2),
      quietSchemaP99Ms: round(median(rs.map((r) => r.quietBy.schema?.p99Ms ?? Number.NaN)), 2),
      loadgenCpuPct: median(rs.map((r) => r.loadgenCpuPct)),
      loadgenLoopDelayP99Ms: median(rs.map((r) => r.loadgenLoopDelayP99Ms)),
    };
  };
  const base = summaryOf('quiet');
  const phases: PhaseSummary[] = [base];
  for (const phase of noisyPhases) {
    const s = summaryOf(phase);
    const perRound = runs.filter((r) => r.phase === phase).map((r) => {
      const before = runs[runs.indexOf(r) - 1]!;
      return round(ratio(r.quiet.p99Ms, before.quiet.p99Ms), 2);
    });
    phases.push({ ...s, p99Ratio: round(ratio(s.quietP99Ms, base.quietP99Ms), 3), throughputRatio: round(ratio(s.quietOkPerSec, base.quietOkPerSec), 3),
      perRoundP99Ratios: perRound });
  }
  return {
    settings: { ...settings, quietTenants: tenants.quiet.map((t) => `${t.slug} (${t.plan}, ${t.isolation})`),
      flood: `${tenants.flood.slug} (${tenants.flood.plan}, ${tenants.flood.isolation})`,
      heavy: `${tenants.heavy.slug} (${tenants.heavy.plan}, ${tenants.heavy.isolation}, ${tenants.heavy.tickets} tickets)`,
      floodRate, heavyConcurrency: heavyLimits.concurrent_requests, heavyRequest: `GET ${heavyPath}` },
    runs, phases,
  };
}

function mergeCounts(xs: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) for (const [k, n] of Object.entries(x)) out[k] = (out[k] ?? 0) + n;
  return out;
}

const refusals = (by: Record<string, number>) => Object.entries(by).map(([k, n]) => `${fmt(n)} ${k.replace('_limited', '')}`).join(', ') || '0';

export function noisyReport(r: NoisyResult, warns: string[]): string[] {
  const s = r.settings;
  const out: string[] = [];
  out.push(`NOISY  quiet: ${s.quietTenants.length} tenants × ${s.quietRate} req/s open loop (GET /api/v1/tickets/:id): ${s.quietTenants.join(', ')}`);
  out.push(`NOISY  flood: ${s.flood} offered ${s.floodRate} req/s open loop (${s.floodFactor}× its rate); heavy: ${s.heavy}, ` +
    `${s.heavyConcurrency} requests in flight (closed loop; 100 ms pause after a 429/503), ${s.heavyRequest}`);
  out.push(`NOISY  ${s.rounds} rounds of quiet/flood/quiet/heavy/quiet/both × ${s.seconds} s; p50/p99: median of the rounds'`);
  out.push(table(['phase', 'quiet p50 ms', 'quiet p99 ms', 'p99 pooled / schema', 'quiet ok/s', 'quiet non-2xx', 'p99 ×quiet', 'ok/s ×quiet', 'p99 × quiet before (per round)',
    'flood admitted', 'flood 429', 'heavy admitted', 'heavy 429', 'heavy other', 'server CPU %', 'PG CPU %', 'loadgen CPU %', 'loadgen lag p99 ms'],
  r.phases.map((p) => [p.phase, fmt(p.quietP50Ms, 2), fmt(p.quietP99Ms, 2), `${fmt(p.quietPooledP99Ms, 1)} / ${fmt(p.quietSchemaP99Ms, 1)}`, fmt(p.quietOkPerSec, 1), fmt(p.quietNon2xx),
    p.p99Ratio === undefined ? '' : p.p99Ratio.toFixed(2), p.throughputRatio === undefined ? '' : p.throughputRatio.toFixed(3),
    p.perRoundP99Ratios?.map((x) => x.toFixed(2)).join(', ') ?? '',
    fmt(p.floodAdmitted), refusals(p.floodRefusedBy), fmt(p.heavyAdmitted), refusals(p.heavyRefusedBy), fmt(p.heavyOther),
    fmt(p.serverCpuPct), fmt(p.pgCpuPct), fmt(p.loadgenCpuPct), fmt(p.loadgenLoopDelayP99Ms, 1)])));
  // What the flood adds to the server's CPU, per request it offered (nearly all refused), against
  // the quiet rounds around it.
  const quiet = r.runs.filter((x) => x.phase === 'quiet');
  const floodRuns = r.runs.filter((x) => x.phase === 'flood' && x.flood);
  if (quiet.length && floodRuns.length) {
    const perFlood = median(floodRuns.map((x) => {
      const before = r.runs[r.runs.indexOf(x) - 1]!;
      return ((x.serverCpuPct - before.serverCpuPct) / 100) * 1e6 / (x.flood!.offered / x.seconds);
    }));
    out.push(`NOISY  server CPU per flood request (flood phase minus the quiet phase before it, per request offered): ${fmt(perFlood, 0)} µs`);
  }
  for (const p of r.phases) {
    if (p.p99Ratio !== undefined && !(p.p99Ratio <= P99_TARGET)) {
      warns.push(`WARN: noisy neighbour (${p.phase}): quiet tenants' p99 ${p.p99Ratio.toFixed(2)}× the quiet-only run (target <= ${P99_TARGET})`);
    }
    if (p.throughputRatio !== undefined && !(p.throughputRatio >= THROUGHPUT_TARGET)) {
      warns.push(`WARN: noisy neighbour (${p.phase}): quiet tenants' throughput ${p.throughputRatio.toFixed(3)}× the quiet-only run (target >= ${THROUGHPUT_TARGET})`);
    }
    if (p.quietNon2xx > 0) warns.push(`WARN: noisy neighbour (${p.phase}): quiet tenants got ${p.quietNon2xx} non-2xx answers or errors`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cohorts

export interface CohortSettings {
  readonly seconds: number;
  readonly warmup: number;
  /** Requests per second offered to each tenant of a cohort. */
  readonly rates: Readonly<Record<string, number>>;
  /** Share of each kind of request, in percent. */
  readonly mix: Readonly<Record<'get' | 'list' | 'search' | 'create', number>>;
}

export interface CohortResult {
  readonly settings: CohortSettings & { readonly tenants: string[] };
  /** CPU during the load, percent of one core: the server process, the load generator (this process). */
  readonly serverCpuPct: number;
  readonly pgCpuPct: number | undefined;
  readonly loadgenCpuPct: number;
  readonly cohorts: {
    readonly cohort: string;
    readonly tenants: number;
    readonly tickets: number;
    readonly offeredPerSec: number;
    readonly okPerSec: number;
    readonly non2xx: Record<string, number>;
    readonly all: LatencySummary;
    readonly byKind: Record<string, LatencySummary>;
  }[];
}

/** The i-th request of a tenant's mix: a fixed, interleaved pattern of 20 slots. */
function mixed(t: BenchTenant, token: string, mix: CohortSettings['mix']): (i: number) => LoadRequest {
  const headers = auth(token);
  const slots: ('get' | 'list' | 'search' | 'create')[] = [];
  for (const [kind, pct] of Object.entries(mix) as [keyof CohortSettings['mix'], number][]) for (let k = 0; k < Math.round(pct / 5); k++) slots.push(kind);
  // Interleave: spread each kind over the pattern instead of runs of one kind.
  const pattern = slots.map((k, i) => ({ k, key: (i * 7919) % slots.length })).sort((a, b) => a.key - b.key).map((x) => x.k);
  return (i) => {
    const kind = pattern[i % pattern.length]!;
    switch (kind) {
      case 'get': return { method: 'GET', path: `/api/v1/tickets/${t.ids[i % t.ids.length]}`, headers, kind };
      case 'list': return { method: 'GET', path: i % 2 ? '/api/v1/tickets?limit=25' : '/api/v1/tickets?status=open&limit=25', headers, kind };
      case 'search': return { method: 'GET', path: `/api/v1/tickets?q=${TOPICS[i % TOPICS.length]}&limit=25`, headers, kind };
      case 'create': return { method: 'POST', path: '/api/v1/tickets', headers, kind,
        body: JSON.stringify({ title: `Load ticket ${i} about the ${TOPICS[i % TOPICS.length]}`, description: 'Created by the benchmark.', priority: 'normal' }) };
    }
  };
}

export async function runCohorts(port: number, tenants: readonly (BenchTenant & { cohort: string })[], tokens: ReadonlyMap<string, string>,
  settings: CohortSettings, serverCpuMicros: () => Promise<number>, pgCpu: PgCpuFollower, log: (line: string) => void): Promise<CohortResult> {
  const streams: Stream[] = tenants.map((t) => ({
    name: t.slug, group: t.cohort, port, rate: settings.rates[t.cohort]!, request: mixed(t, tokens.get(t.slug)!, settings.mix),
  }));
  log(`cohorts: warm-up ${settings.warmup} s`);
  await runStreams(streams, settings.warmup);
  log(`cohorts: ${tenants.length} tenants, ${settings.seconds} s`);
  const cpu0 = process.cpuUsage();
  const server0 = await serverCpuMicros();
  const pg = pgCpu();
  const t0 = performance.now();
  const results = await runStreams(streams, settings.seconds);
  const wallUs = (performance.now() - t0) * 1000;
  const pgUs = await pg.stop();
  const pgCpuPct = pgUs === undefined ? undefined : round((pgUs / wallUs) * 100, 0);
  const serverCpuPct = round(((await serverCpuMicros()) - server0) / wallUs * 100, 0);
  const cpu = process.cpuUsage(cpu0);
  const loadgenCpuPct = round(((cpu.user + cpu.system) / wallUs) * 100, 0);
  log(`cohorts: CPU server ${serverCpuPct} %, PostgreSQL ${pgCpuPct ?? 'n/a'} %, load generator ${loadgenCpuPct} %`);
  const cohorts = [...new Set(tenants.map((t) => t.cohort))].map((cohort) => {
    const rs = results.filter((r) => r.group === cohort);
    const ts = tenants.filter((t) => t.cohort === cohort);
    const non2xx: Record<string, number> = {};
    for (const r of rs) {
      for (const [code, n] of Object.entries(r.status)) if (!code.startsWith('2')) non2xx[code] = (non2xx[code] ?? 0) + n;
      if (r.errors) non2xx.error = (non2xx.error ?? 0) + r.errors;
    }
    const kinds = [...new Set(rs.flatMap((r) => Object.keys(r.latencies)))].sort();
    return {
      cohort, tenants: ts.length, tickets: ts[0]!.tickets,
      offeredPerSec: round(rs.reduce((s, r) => s + r.sent, 0) / settings.seconds, 1),
      okPerSec: round(rs.reduce((s, r) => s + r.okInWindow, 0) / settings.seconds, 1),
      non2xx,
      all: summarize(latenciesOf(rs)),
      byKind: Object.fromEntries(kinds.map((k) => [k, summarize(latenciesOf(rs, k))])),
    };
  });
  for (const c of cohorts) {
    log(`cohorts: ${c.cohort.padEnd(6)} p50 ${c.all.p50Ms} ms, p99 ${c.all.p99Ms} ms, ${c.okPerSec}/${c.offeredPerSec} ok/offered per s` +
      (Object.keys(c.non2xx).length ? `, non-2xx ${JSON.stringify(c.non2xx)}` : ''));
  }
  return { serverCpuPct, pgCpuPct, loadgenCpuPct, settings: { ...settings, tenants: tenants.map((t) => `${t.slug} (${t.cohort}, ${t.plan}, ${t.isolation}, ${t.tickets} tickets)`) }, cohorts };
}

export function cohortReport(r: CohortResult, warns: string[]): string[] {
  const s = r.settings;
  const kinds = ['get', 'list', 'search', 'create'];
  const out = [`COHORTS  ${s.tenants.join(', ')}`,
    `COHORTS  open loop per tenant: ${Object.entries(s.rates).map(([c, x]) => `${c} ${x} req/s`).join(', ')}; mix ` +
    `${Object.entries(s.mix).map(([k, v]) => `${k} ${v} %`).join(', ')}; ${s.seconds} s after ${s.warmup} s warm-up; ` +
    `CPU: server ${r.serverCpuPct} %, PostgreSQL ${r.pgCpuPct ?? 'n/a'} %, load generator ${r.loadgenCpuPct} % of a core`];
  out.push(table(['cohort', 'tenants', 'tickets each', 'ok/s', 'offered/s', 'non-2xx', 'p50 ms', 'p99 ms',
    ...kinds.map((k) => `${k} p50/p99`)],
  r.cohorts.map((c) => [c.cohort, String(c.tenants), fmt(c.tickets), fmt(c.okPerSec, 1), fmt(c.offeredPerSec, 1),
    Object.keys(c.non2xx).length ? JSON.stringify(c.non2xx) : '0', fmt(c.all.p50Ms, 2), fmt(c.all.p99Ms, 2),
    ...kinds.map((k) => (c.byKind[k] ? `${fmt(c.byKind[k]!.p50Ms, 1)}/${fmt(c.byKind[k]!.p99Ms, 1)}` : 'n/a'))])));
  for (const c of r.cohorts) {
    if (Object.keys(c.non2xx).length) warns.push(`WARN: cohort ${c.cohort}: non-2xx answers or errors ${JSON.stringify(c.non2xx)}`);
  }
  return out;
}
