/**
 * A Redis of a test's own (Debian's redis-server on a free port, nothing kept on disk), for the
 * tests that stop and start Redis under traffic. Tests that only need a Redis use the machine's
 * (REDIS_URL of `sharedRedisUrl`) with a key prefix of their own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { freePort } from '../src/embedded/embedded-postgres.js';

export interface TestRedis {
  readonly port: number;
  /** The server process (its CPU time can be read from /proc). */
  readonly pid: () => number | undefined;
  readonly url: string;
  /** Stops the server (SIGKILL: like a crash; its data is gone). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

/** The machine's Redis (127.0.0.1:6379, or TEST_REDIS_URL). */
export function sharedRedisUrl(): string {
  return process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** A key prefix no other test uses. */
export function uniquePrefix(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}:`;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const { Socket } = await import('node:net');
  for (const until = Date.now() + ms; ;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`redis-server did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts `redis-server` on a free port. */
export async function startTestRedis(): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitForPort(port, 5_000);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, pid: () => child?.pid, start, stop };
}
