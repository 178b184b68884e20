/**
 * The Redis of the tenantry-redis side: by default a private redis-server (Debian's, on a free
 * port, nothing on disk) started for the run, so that its CPU time per request can be read from
 * /proc and nobody else's traffic shares it; with BENCH_REDIS_URL, that server instead (no CPU
 * figure). Keys carry a prefix of the run's own either way.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';

export interface BenchRedis {
  readonly url: string;
  readonly prefix: string;
  /** Where it runs: `private redis-server <version>` or the URL's host. */
  readonly server: string;
  /** CPU time of the server process so far, microseconds (private server on Linux only). */
  readonly cpuMicros: (() => Promise<number>) | undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
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

function hasRedisServer(): string | undefined {
  try {
    return execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/v=(\S+)/)?.[1] ?? 'unknown';
  } catch {
    return undefined;
  }
}

export async function openBenchRedis(onCleanup: (fn: () => Promise<void>) => void, ticksPerSecond: number): Promise<BenchRedis> {
  const prefix = `bench:${randomBytes(4).toString('hex')}:`;
  const external = process.env.BENCH_REDIS_URL;
  const version = external ? undefined : hasRedisServer();
  if (external || !version) {
    const url = external ?? 'redis://127.0.0.1:6379';
    return { url, prefix, server: new URL(url).host, cpuMicros: undefined };
  }
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  onCleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  });
  await waitForPort(port, 5_000);
  const pid = child.pid!;
  const cpuMicros = process.platform === 'linux' ? async () => {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) / ticksPerSecond) * 1e6;
  } : undefined;
  return { url: `redis://127.0.0.1:${port}`, prefix, server: `private redis-server ${version}`, cpuMicros };
}
