/**
 * The Redis of the tenantry-redis side: by default a private redis-server (Debian's, on a free
 * port, nothing on disk) started for the run, so that its CPU time per request can be read from
 * /proc and nobody else's traffic shares it; with BENCH_REDIS_URL, that server instead (no CPU
 * figure). Keys carry a prefix of the run's own either way.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { startTestRedis } from '../test/redis-server.js';

export interface BenchRedis {
  readonly url: string;
  readonly prefix: string;
  /** Where it runs: `private redis-server <version>` or the URL's host. */
  readonly server: string;
  /** CPU time of the server process so far, microseconds (private server on Linux only). */
  readonly cpuMicros: (() => Promise<number>) | undefined;
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
  const server = await startTestRedis();
  onCleanup(() => server.stop());
  const pid = server.pid()!;
  const cpuMicros = process.platform === 'linux' ? async () => {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) / ticksPerSecond) * 1e6;
  } : undefined;
  return { url: server.url, prefix, server: `private redis-server ${version}`, cpuMicros };
}
