/**
 * Debian's PgBouncer (`apt-get install pgbouncer`, 1.18) in transaction mode in front of a
 * PostgreSQL server, for the test suite and the benchmarks: the deployment TENANTRY_RUNTIME_URL +
 * TENANTRY_POOLER=transaction supports. Runtime roles log in through it with their passwords
 * (SCRAM between client, PgBouncer and server); every database of the server is reachable.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface PgBouncer {
  /** postgres:// URL of PgBouncer (no credentials, no database: any database of the server is served). */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export function pgBouncerBinary(): string | undefined {
  for (const candidate of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startPgBouncer(opts: {
  /** The server behind it (host and port are used). */
  upstreamUrl: string;
  /** Login roles and their passwords. */
  users: Readonly<Record<string, string>>;
  /** Server connections per database and user. */
  poolSize?: number;
}): Promise<PgBouncer> {
  const binary = pgBouncerBinary();
  if (!binary) throw new Error('pgbouncer is not installed (apt-get install pgbouncer)');
  const up = new URL(opts.upstreamUrl);
  const dir = await mkdtemp(path.join(tmpdir(), 'tenantry-pgbouncer-'));
  // As root, PgBouncer must drop to another user (it refuses to run as root): the folder is that
  // user's, for its log and pid files.
  const asRoot = process.getuid?.() === 0;
  await chmod(dir, 0o755);
  if (asRoot) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const uid = Number(ids.stdout.trim());
    if (!Number.isInteger(uid)) throw new Error('as root, PgBouncer runs as the postgres user, and there is none');
    await chown(dir, uid, -1);
  }
  const port = await freePort();
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  await writeFile(path.join(dir, 'users.txt'), Object.entries(opts.users).map(([u, p]) => `${quote(u)} ${quote(p)}`).join('\n') + '\n', { mode: 0o644 });
  await writeFile(path.join(dir, 'pgbouncer.ini'), [
    '[databases]',
    `* = host=${up.hostname} port=${up.port || 5432}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${path.join(dir, 'users.txt')}`,
    'pool_mode = transaction',
    `default_pool_size = ${opts.poolSize ?? 20}`,
    'max_client_conn = 2000',
    'max_db_connections = 0',
    'server_reset_query =',
    'ignore_startup_parameters = extra_float_digits,options',
    `logfile = ${path.join(dir, 'pgbouncer.log')}`,
    'log_connections = 0',
    'log_disconnections = 0',
    '',
  ].join('\n'), { mode: 0o644 });
  const args = asRoot ? ['-u', 'postgres', path.join(dir, 'pgbouncer.ini')] : [path.join(dir, 'pgbouncer.ini')];
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr += String(d); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Ready when the port accepts connections.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited at start: ${stderr}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`pgbouncer did not listen within 10 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `postgres://127.0.0.1:${port}`,
    port,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
