/**
 * HTTP pair: the real helpdesk on tenantry against a bare Fastify route, each server in its own
 * process, load from this process with autocannon. Rounds alternate A/B/A/B so that drift in the
 * machine's load (other jobs on a shared host) hits both sides alike.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import autocannon from 'autocannon';
import type { Sql } from '../src/data/driver/index.js';
import { BARE_APPLICATION_NAME, BARE_RLS_APPLICATION_NAME, projectRoot, type OrchestratorMessage, type ServerMessage } from './common.js';
import { median, ratio, round } from './stats.js';

export type Side = 'tenantry' | 'bare-rls' | 'bare' | 'tenantry-pgb' | 'bare-pgb' | 'tenantry-noadmission' | 'tenantry-redis' | 'tenantry-plain' | 'tenantry-noaudit';
export const sideNames: Record<Side, string> = {
  tenantry: 'tenantry (helpdesk, JWT, RLS)',
  'bare-rls': 'bare-rls (Fastify, RLS context by hand)',
  bare: 'bare (Fastify + superuser pool)',
  'tenantry-pgb': 'tenantry through PgBouncer (pooler=transaction)',
  'bare-pgb': 'bare through PgBouncer (unnamed statements)',
  'tenantry-noadmission': 'tenantry, no admission (the tenancy plugin without limits)',
  'tenantry-plain': 'tenantry without metrics, spans, metering, audit, log enrichment',
  'tenantry-noaudit': 'tenantry with everything but the audit entries',
  'tenantry-redis': 'tenantry, admission in Redis (limits never reached)',
};

export class ServerProcess {
  readonly #child: ChildProcess;
  #exit: { code: number | null; signal: string | null } | undefined;
  #stopping = false;
  readonly #exited: Promise<void>;

  private constructor(readonly side: Side, child: ChildProcess, readonly port: number, exited: Promise<void>) {
    this.#child = child;
    this.#exited = exited;
  }

  static async start(side: Side, file: string, env: Record<string, string>, onCleanup: (fn: () => Promise<void>) => void): Promise<ServerProcess> {
    const child = fork(path.join(projectRoot, file), [], {
      cwd: projectRoot,
      // BENCH_PROFILE_DIR: write a V8 CPU profile of each server (open in Chrome DevTools).
      execArgv: ['--import', 'tsx', ...(process.env.BENCH_PROFILE_DIR
        ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_PROFILE_DIR, side)}`] : [])],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let server: ServerProcess | undefined;
    let exitInfo: { code: number | null; signal: string | null } | undefined;
    const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      if (server) server.#exit = exitInfo;
      resolve();
    }));
    // Registered before it is up: a failed start must not leave the process behind.
    onCleanup(async () => {
      if (server) return server.stop();
      if (!exitInfo) child.kill('SIGKILL');
    });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${side} server did not start within 60 s`)), 60_000);
      child.on('message', (m: ServerMessage) => {
        if (m.type === 'ready') { clearTimeout(timer); resolve(m.port); }
      });
      void exited.then(() => { clearTimeout(timer); reject(new Error(`${side} server exited during start-up (code ${exitInfo?.code}, signal ${exitInfo?.signal})`)); });
    });
    server = new ServerProcess(side, child, port, exited);
    return server;
  }

  /** Throws if the process is gone (crashed) although nobody stopped it. */
  assertAlive(): void {
    if (this.#exit && !this.#stopping) {
      throw new Error(`${this.side} server crashed (exit code ${this.#exit.code}, signal ${this.#exit.signal})`);
    }
  }

  /** CPU time the server process has used so far, microseconds. */
  async cpuMicros(): Promise<number> {
    this.assertAlive();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { this.#child.off('message', on); reject(new Error(`${this.side} server did not answer a CPU probe`)); }, 5_000);
      const on = (m: ServerMessage) => {
        if (m.type !== 'cpu') return;
        clearTimeout(timer);
        this.#child.off('message', on);
        resolve(m.user + m.system);
      };
      this.#child.on('message', on);
      this.#child.send({ type: 'cpu' } satisfies OrchestratorMessage);
    });
  }

  async stop(): Promise<void> {
    if (this.#exit) return;
    this.#stopping = true;
    if (this.#child.connected) this.#child.send({ type: 'stop' } satisfies OrchestratorMessage);
    else this.#child.kill('SIGTERM');
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 8_000).unref());
    if ((await Promise.race([this.#exited, timeout])) === 'timeout') {
      this.#child.kill('SIGKILL');
      await this.#exited;
    }
  }
}

/**
 * CPU time of the PostgreSQL backends serving one side, read from /proc (PostgreSQL on this
 * machine only). Backends are found by application_name in pg_stat_activity.
 */
export class BackendCpu {
  readonly #ticksPerSecond: number;
  constructor(private readonly sql: Sql, private readonly enabled: boolean, ticksPerSecond: number) {
    this.#ticksPerSecond = ticksPerSecond;
  }

  async snapshot(applicationNames: readonly string[]): Promise<Map<number, number> | undefined> {
    if (!this.enabled) return undefined;
    const rows = await this.sql.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = current_database() and application_name = any($1)', [applicationNames as string[]]);
    const out = new Map<number, number>();
    for (const { pid } of rows) {
      try {
        const comm = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
        if (comm !== 'postgres') continue;
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.set(pid, Number(f[11]) + Number(f[12]));
      } catch {
        // The backend ended in between.
      }
    }
    return out;
  }

  /**
   * Follows the backends of `applicationNames` while a load runs, reading them every 250 ms:
   * backends that end during the load (a connection discarded after its client went away, as
   * every load generator's does at the end of a round) still count up to their last reading,
   * which a snapshot before and one after would miss.
   */
  follow(applicationNames: readonly string[]): { stop(): Promise<number | undefined> } {
    if (!this.enabled) return { stop: async () => undefined };
    const first = new Map<number, number>();
    const last = new Map<number, number>();
    const read = async () => {
      const now = await this.snapshot(applicationNames);
      for (const [pid, t] of now ?? []) {
        if (!first.has(pid)) first.set(pid, reading === 0 ? t : 0);
        last.set(pid, t);
      }
      reading++;
    };
    let reading = 0;
    let busy: Promise<void> = read();
    const timer = setInterval(() => { busy = busy.then(read, read); }, 250);
    return {
      stop: async () => {
        clearInterval(timer);
        await busy.then(read, read);
        let ticks = 0;
        for (const [pid, t] of last) ticks += t - (first.get(pid) ?? 0);
        return (ticks / this.#ticksPerSecond) * 1e6;
      },
    };
  }
}

export interface HttpTarget {
  readonly side: Side;
  readonly server: ServerProcess;
  readonly requests: autocannon.Request[];
  readonly pgApplications: readonly string[];
  /** The side it is compared with (default bare). */
  readonly baseline?: Side;
  /** CPU time of another process serving the side (Redis), microseconds so far. */
  readonly otherCpu?: () => Promise<number>;
}

export interface HttpRound {
  readonly side: Side;
  readonly round: number;
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly latencyMeanMs: number;
  /** Server process CPU per request, microseconds. */
  readonly serverCpuUsPerReq: number;
  /** PostgreSQL backend CPU per request, microseconds (undefined when PostgreSQL is remote). */
  readonly pgCpuUsPerReq: number | undefined;
  /** CPU of the side's other process (Redis) per request, microseconds. */
  readonly otherCpuUsPerReq?: number;
  /** Load generator (this process) CPU, percent of one core. */
  readonly loadgenCpuPct: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
}

export interface HttpSideSummary {
  readonly side: Side;
  readonly medianRps: number;
  readonly medianP50Ms: number;
  readonly medianP99Ms: number;
  readonly medianServerCpuUsPerReq: number;
  readonly medianPgCpuUsPerReq: number | undefined;
  readonly medianOtherCpuUsPerReq?: number;
  readonly totalRequests: number;
  readonly non2xx: number;
  readonly errors: number;
}

export interface HttpSettings {
  readonly duration: number;
  readonly warmup: number;
  readonly rounds: number;
  readonly connections: number;
  readonly pool: number;
  readonly ids: number;
  readonly barePrepared: boolean;
}

export interface SideVsBare {
  /** Median req/s of the side over median req/s of bare. */
  readonly throughputRatio: number;
  /** Ratio of the side's and bare's req/s in each round. */
  readonly perRoundRatios: number[];
  readonly serverCpuRatio: number;
  readonly pgCpuRatio: number | undefined;
}

export interface HttpResult {
  readonly settings: HttpSettings;
  readonly rounds: HttpRound[];
  readonly sides: Partial<Record<Side, HttpSideSummary>>;
  /** Every side but the baselines, against its baseline (bare, or bare-pgb through PgBouncer). */
  readonly vsBare: Partial<Record<Side, SideVsBare>>;
  readonly baselineOf: Partial<Record<Side, Side>>;
}

/** Fails loudly: the benchmark measures successful responses only. */
function checkRun(side: Side, what: string, r: autocannon.Result): void {
  if (r.non2xx || r.errors || r.timeouts) {
    throw new Error(`${side} ${what}: ${r.non2xx} non-2xx responses, ${r.errors} errors, ${r.timeouts} timeouts ` +
      `(status codes: ${JSON.stringify(r.statusCodeStats)})`);
  }
}

function load(target: HttpTarget, settings: HttpSettings, duration: number): Promise<autocannon.Result> {
  const n = target.requests.length;
  let client = 0;
  const instance = autocannon({
    url: `http://127.0.0.1:${target.server.port}`,
    connections: settings.connections,
    duration,
    timeout: 10,
    requests: target.requests,
    // Each connection walks the id list from its own offset.
    setupClient: (c) => {
      const off = Math.floor((client++ * n) / settings.connections);
      c.setRequests(target.requests.map((_, i) => ({ ...target.requests[(off + i) % n]! })));
    },
  });
  return Promise.resolve(instance);
}

export async function runHttpPair(targets: readonly HttpTarget[], settings: HttpSettings, pgCpu: BackendCpu,
  log: (line: string) => void): Promise<HttpResult> {
  for (const t of targets) {
    log(`http: warm-up ${t.side}, ${settings.warmup} s`);
    const r = await load(t, settings, settings.warmup);
    t.server.assertAlive();
    checkRun(t.side, 'warm-up', r);
  }
  const rounds: HttpRound[] = [];
  for (let i = 0; i < settings.rounds; i++) {
    // Every other round runs the sides in reverse order (A B, B A, A B, …): a machine whose speed
    // drifts during the run (a burstable VM's CPU credits, a neighbour) then favours no side.
    for (const t of i % 2 === 0 ? targets : [...targets].reverse()) {
      const pgFollow = pgCpu.follow(t.pgApplications);
      const cpuBefore = await t.server.cpuMicros();
      const otherBefore = await t.otherCpu?.();
      const loadgenBefore = process.cpuUsage();
      const r = await load(t, settings, settings.duration);
      const loadgen = process.cpuUsage(loadgenBefore);
      t.server.assertAlive();
      const cpuAfter = await t.server.cpuMicros();
      const otherAfter = await t.otherCpu?.();
      const pg = await pgFollow.stop();
      checkRun(t.side, `round ${i + 1}`, r);
      const requests = r.requests.total;
      const round_: HttpRound = {
        side: t.side,
        round: i + 1,
        requests,
        seconds: r.duration,
        rps: round(requests / r.duration, 0),
        latencyP50Ms: r.latency.p50,
        latencyP99Ms: r.latency.p99,
        latencyMeanMs: round(r.latency.average, 2),
        serverCpuUsPerReq: round((cpuAfter - cpuBefore) / requests, 1),
        pgCpuUsPerReq: pg === undefined ? undefined : round(pg / requests, 1),
        ...(otherBefore !== undefined && otherAfter !== undefined ? { otherCpuUsPerReq: round((otherAfter - otherBefore) / requests, 1) } : {}),
        loadgenCpuPct: round(((loadgen.user + loadgen.system) / 1e6 / r.duration) * 100, 0),
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
      };
      rounds.push(round_);
      log(`http: round ${i + 1}/${settings.rounds} ${t.side.padEnd(20)} ${String(round_.rps).padStart(6)} req/s, ` +
        `p50 ${round_.latencyP50Ms} ms, p99 ${round_.latencyP99Ms} ms, server CPU ${round_.serverCpuUsPerReq} µs/req` +
        (round_.pgCpuUsPerReq === undefined ? '' : `, PostgreSQL CPU ${round_.pgCpuUsPerReq} µs/req`) +
        (round_.otherCpuUsPerReq === undefined ? '' : `, Redis CPU ${round_.otherCpuUsPerReq} µs/req`));
    }
  }
  const summary = (side: Side): HttpSideSummary => {
    const rs = rounds.filter((r) => r.side === side);
    const pg = rs.map((r) => r.pgCpuUsPerReq).filter((x): x is number => x !== undefined);
    const other = rs.map((r) => r.otherCpuUsPerReq).filter((x): x is number => x !== undefined);
    return {
      side,
      medianRps: round(median(rs.map((r) => r.rps)), 0),
      medianP50Ms: median(rs.map((r) => r.latencyP50Ms)),
      medianP99Ms: median(rs.map((r) => r.latencyP99Ms)),
      medianServerCpuUsPerReq: round(median(rs.map((r) => r.serverCpuUsPerReq)), 1),
      medianPgCpuUsPerReq: pg.length ? round(median(pg), 1) : undefined,
      ...(other.length ? { medianOtherCpuUsPerReq: round(median(other), 1) } : {}),
      totalRequests: rs.reduce((s, r) => s + r.requests, 0),
      non2xx: rs.reduce((s, r) => s + r.non2xx, 0),
      errors: rs.reduce((s, r) => s + r.errors + r.timeouts, 0),
    };
  };
  const sides: Partial<Record<Side, HttpSideSummary>> = {};
  const vsBare: Partial<Record<Side, SideVsBare>> = {};
  const baselineOf: Partial<Record<Side, Side>> = {};
  const baselines = new Set(targets.map((t) => t.baseline ?? 'bare'));
  for (const t of targets) {
    const s = sides[t.side] = summary(t.side);
    if (baselines.has(t.side)) continue;
    const base = t.baseline ?? 'bare';
    const bare = summary(base);
    baselineOf[t.side] = base;
    vsBare[t.side] = {
      throughputRatio: round(ratio(s.medianRps, bare.medianRps), 3),
      perRoundRatios: Array.from({ length: settings.rounds }, (_, i) => {
        const a = rounds.find((r) => r.side === t.side && r.round === i + 1)!;
        const b = rounds.find((r) => r.side === base && r.round === i + 1)!;
        return round(ratio(a.rps, b.rps), 3);
      }),
      serverCpuRatio: round(ratio(s.medianServerCpuUsPerReq, bare.medianServerCpuUsPerReq), 2),
      pgCpuRatio: s.medianPgCpuUsPerReq !== undefined && bare.medianPgCpuUsPerReq !== undefined
        ? round(ratio(s.medianPgCpuUsPerReq, bare.medianPgCpuUsPerReq), 2) : undefined,
    };
  }
  return { settings, rounds, sides, vsBare, baselineOf };
}

// The what-if server uses the same names: both tenantry servers' backends are counted, the idle
// one's add next to nothing (a catalog refresh every few seconds).
export const tenantryPgApplications = ['tenantry-app', 'tenantry-catalog', 'tenantry-admin'] as const;
export const barePgApplications = [BARE_APPLICATION_NAME] as const;
export const bareRlsPgApplications = [BARE_RLS_APPLICATION_NAME] as const;
