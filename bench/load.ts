/**
 * Load for the scenarios where a steady offered rate matters (noisy neighbour, cohorts), from the
 * orchestrating process over node:http keep-alive connections:
 *
 * - open loop (`rate`): request i is due at start + i / rate whatever the answers do, and its
 *   latency counts from when it was due, not from when a socket was free, so a stalled server
 *   shows in the latency instead of slowing the load down (no coordinated omission);
 * - closed loop (`concurrency`): that many workers, each sending its next request when the last
 *   one was answered (a tenant using exactly its concurrency).
 *
 * autocannon stays the load of the HTTP pairs (closed loop at full speed).
 */
import http from 'node:http';
import { percentileSorted, round, sortedCopy } from './stats.js';

export interface LoadRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  /** What the request is (get, list, search, create…), for the per-kind figures. */
  readonly kind: string;
}

export interface Stream {
  /** Tenant slug (or any name). */
  readonly name: string;
  /** What it stands for in the report (quiet, flood, heavy, a cohort…). */
  readonly group: string;
  readonly port: number;
  /** Open loop: requests per second offered. */
  readonly rate?: number;
  /** Closed loop: requests in flight at all times. */
  readonly concurrency?: number;
  /** Sockets the stream may open (open loop; default 16). */
  readonly maxSockets?: number;
  /** The i-th request of the stream. */
  readonly request: (i: number) => LoadRequest;
}

export interface StreamResult {
  readonly name: string;
  readonly group: string;
  /** Requests due (open loop) or sent (closed loop) during the phase. */
  readonly sent: number;
  /** Answers by status code; a 429 or 503 by status and problem code (`429 rate_limited`). */
  readonly status: Record<string, number>;
  /** Answered 2xx. */
  readonly ok: number;
  /** Answered 2xx before the end of the phase (the throughput; `ok` also counts answers to late requests). */
  readonly okInWindow: number;
  /** Socket errors and requests not answered within the timeout. */
  readonly errors: number;
  /** Latencies of 2xx answers, ms, by kind. */
  readonly latencies: Record<string, number[]>;
  /** Latencies of refusals (429), ms. */
  readonly refusedLatencies: number[];
}

const TIMEOUT_MS = 10_000;

/** The answer's status, and for a 429 or 503 the problem's code. */
function send(agent: http.Agent, port: number, r: LoadRequest): Promise<{ status: number; problem?: string }> {
  return new Promise((resolve) => {
    const req = http.request({
      host: '127.0.0.1', port, method: r.method, path: r.path, agent,
      headers: r.body === undefined ? r.headers : { ...r.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(r.body) },
      timeout: TIMEOUT_MS,
    }, (res) => {
      const status = res.statusCode ?? 0;
      if (status === 429 || status === 503) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { body += c; });
        res.once('end', () => {
          let problem = 'unknown';
          try { problem = String((JSON.parse(body) as { code?: string }).code ?? 'unknown'); } catch { /* not JSON */ }
          resolve({ status, problem });
        });
      } else {
        res.resume();
        res.once('end', () => resolve({ status }));
      }
      res.once('error', () => resolve({ status: 0 }));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve({ status: 0 }));
    req.end(r.body);
  });
}

/**
 * Runs every stream for `seconds` and returns what each saw. Requests due (or started) before the
 * end are waited for (at most the timeout); nothing is sent after it.
 */
export async function runStreams(streams: readonly Stream[], seconds: number): Promise<StreamResult[]> {
  const start = performance.now();
  const end = start + seconds * 1000;
  return Promise.all(streams.map((s) => (s.rate !== undefined ? openLoop(s, start, end) : closedLoop(s, end))));
}

function newResult(s: Stream) {
  return { name: s.name, group: s.group, sent: 0, status: {} as Record<string, number>, ok: 0, okInWindow: 0, errors: 0,
    latencies: {} as Record<string, number[]>, refusedLatencies: [] as number[] };
}

function record(out: ReturnType<typeof newResult>, r: LoadRequest, answer: { status: number; problem?: string }, ms: number, end: number): void {
  const code = answer.status;
  if (code === 0) { out.errors++; return; }
  const key = answer.problem ? `${code} ${answer.problem}` : String(code);
  out.status[key] = (out.status[key] ?? 0) + 1;
  if (code >= 200 && code < 300) {
    out.ok++;
    if (performance.now() <= end) out.okInWindow++;
    (out.latencies[r.kind] ??= []).push(ms);
  } else if (code === 429) {
    out.refusedLatencies.push(ms);
  }
}

async function openLoop(s: Stream, start: number, end: number): Promise<StreamResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: s.maxSockets ?? 16 });
  const out = newResult(s);
  const interval = 1000 / s.rate!;
  // Streams start at different offsets within their first interval, not all at once.
  let due = start + Math.random() * interval;
  let i = 0;
  const inflight = new Set<Promise<void>>();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (due <= now && due < end) {
        const scheduled = due;
        const r = s.request(i++);
        out.sent++;
        const p = send(agent, s.port, r).then((code) => record(out, r, code, performance.now() - scheduled, end));
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
        due += interval;
      }
      if (due >= end) { clearInterval(timer); resolve(); }
    };
    const timer = setInterval(tick, 2);
    tick();
  });
  await Promise.all(inflight);
  agent.destroy();
  return out;
}

async function closedLoop(s: Stream, end: number): Promise<StreamResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: s.concurrency! });
  const out = newResult(s);
  let i = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const r = s.request(i++);
      out.sent++;
      const t0 = performance.now();
      const answer = await send(agent, s.port, r);
      record(out, r, answer, performance.now() - t0, end);
      const code = answer.status;
      // A refusal is answered at once: pause as a client told to retry would (a little; not the
      // whole Retry-After, which would leave the tenant idle for seconds).
      if (code === 429 || code === 503) await new Promise((res) => setTimeout(res, 100));
    }
  };
  await Promise.all(Array.from({ length: s.concurrency! }, worker));
  agent.destroy();
  return out;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export function summarize(latencies: readonly number[]): LatencySummary {
  const sorted = sortedCopy(latencies);
  return {
    count: sorted.length,
    p50Ms: round(percentileSorted(sorted, 50), 2),
    p99Ms: round(percentileSorted(sorted, 99), 2),
    maxMs: round(sorted.length ? sorted[sorted.length - 1]! : Number.NaN, 2),
  };
}

/** All 2xx latencies of some results, every kind together (or one kind). */
export function latenciesOf(results: readonly StreamResult[], kind?: string): number[] {
  const out: number[] = [];
  for (const r of results) {
    for (const [k, v] of Object.entries(r.latencies)) if (kind === undefined || k === kind) for (const x of v) out.push(x);
  }
  return out;
}
