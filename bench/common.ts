/**
 * Shared by the orchestrator (bench/run.ts) and the two server processes.
 */
import { fileURLToPath } from 'node:url';

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
