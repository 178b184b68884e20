/**
 * `npm start` as a real process (app/main.ts), and HTTP spoken over raw sockets, for the tests of
 * what only a real server shows: signals, connections, and the answers node:http gives before
 * any route runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { demoTenants } from '../app/fixtures.js';
import { createPool } from '../src/data/driver/index.js';
import { ADMIN_TOKEN, JWT_SECRET, ROLE_PASSWORD, serverUrl } from './helpers.js';

export const projectRoot = fileURLToPath(new URL('../', import.meta.url));

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Date.now() when the process ended. */
  readonly at: number;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** Resolves when `pattern` appears in the output from offset `from` on (rejects after `ms`). */
  waitFor(pattern: RegExp, ms?: number, from?: number): Promise<void>;
  readonly exited: Promise<Exit>;
  /**
   * Resolves true once no process of the server's process group (npm, tsx, node, PostgreSQL,
   * tsx's esbuild) is left, false if some still is after `ms`.
   */
  groupGone(ms?: number): Promise<boolean>;
  /** SIGKILL to the whole process group if any of it is still running (test clean-up). */
  kill(): Promise<void>;
}

export interface StartOptions {
  /**
   * `node`: `node --import tsx app/main.ts`, signals go straight to the server; `npm`: `npm
   * start`, signals go to npm, which must pass them on.
   */
  readonly via?: 'node' | 'npm';
  /** How long start-up may take, milliseconds. */
  readonly startMs?: number;
}

/**
 * Starts app/main.ts with PORT=0 and `env`, in a process group of its own (like a terminal's
 * foreground job), and waits for it to listen. Secrets are the suite's fixed ones (role passwords
 * are cluster-wide).
 */
export async function startServer(env: Record<string, string>, opts: StartOptions = {}): Promise<ServerProcess> {
  const [command, args] = opts.via === 'npm'
    ? ['npm', ['start', '--silent']]
    : [process.execPath, ['--import', 'tsx', 'app/main.ts']];
  const child = spawn(command, args, {
    cwd: projectRoot,
    detached: true,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: '0',
      LOG_LEVEL: 'warn',
      TENANTRY_ADMIN_TOKEN: ADMIN_TOKEN,
      TENANTRY_JWT_SECRET: JWT_SECRET,
      TENANTRY_DB_ROLE_PASSWORD: ROLE_PASSWORD,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<Exit>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  let ended = false;
  void exited.then(() => {
    ended = true;
    for (const w of waiters) w();
  });

  const waitFor = (pattern: RegExp, ms = 30_000, from = 0) => new Promise<void>((resolve, reject) => {
    const check = () => {
      if (pattern.test(out.slice(from))) return done(resolve);
      if (ended) return done(() => reject(new Error(`server exited before ${pattern} appeared:\n${out}`)));
    };
    const timer = setTimeout(() => done(() => reject(new Error(`no ${pattern} in the server's output after ${ms} ms:\n${out}`))), ms);
    const done = (f: () => void) => {
      clearTimeout(timer);
      waiters.delete(check);
      f();
    };
    waiters.add(check);
    check();
  });

  const groupAlive = () => {
    try {
      process.kill(-child.pid!, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code !== 'ESRCH';
    }
  };
  const groupGone = async (ms = 3_000) => {
    // tsx's esbuild service, say, ends a moment after the process that started it.
    for (const until = Date.now() + ms; groupAlive(); await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > until) return false;
    }
    return true;
  };
  const kill = async () => {
    if (groupAlive()) process.kill(-child.pid!, 'SIGKILL');
    if (!ended) await exited;
  };
  try {
    await waitFor(/is running on http:\/\/[^\s:]+:\d+/, opts.startMs ?? 120_000);
  } catch (err) {
    await kill();
    throw err;
  }
  const port = Number(/is running on http:\/\/[^\s:]+:(\d+)/.exec(out)![1]);
  return { child, port, output: () => out, waitFor, exited, groupGone, kill };
}

/**
 * Removes what `npm start` creates outside its own database: the demo tenants' placements (the
 * `database` tenant's database, the `schema` tenant's role). Run after that database is dropped.
 */
export async function dropDemoPlacements(): Promise<void> {
  const server = createPool(serverUrl(), { max: 1 });
  try {
    for (const t of demoTenants) {
      const hex = t.id.replace(/-/g, '');
      if (t.isolation === 'database') await server.query(`drop database if exists tenant_${hex} with (force)`);
      else if (t.isolation === 'schema') await server.query(`drop role if exists t_${hex}`);
    }
  } finally {
    await server.end();
  }
}

export interface RawResponse {
  readonly status: number;
  /** Lower-cased names. */
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The body as JSON (undefined if it is not JSON). */
  readonly json: Record<string, unknown> | undefined;
}

/** One client connection, written to byte by byte as the test likes; answers are parsed as they come. */
export class RawConnection {
  readonly socket: net.Socket;
  /** Resolves when the connection is closed (by either side), with the error that closed it, if any. */
  readonly closed: Promise<{ error: NodeJS.ErrnoException | undefined; at: number }>;
  #buffer = Buffer.alloc(0);
  #responses: RawResponse[] = [];
  #waiting: (() => void)[] = [];
  #error: NodeJS.ErrnoException | undefined;
  #ended = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, d]);
      this.#parse();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => { this.#error = e; });
    this.closed = new Promise((resolve) => socket.on('close', () => {
      this.#ended = true;
      this.#wake();
      resolve({ error: this.#error, at: Date.now() });
    }));
  }

  /**
   * Connects to 127.0.0.1, from `localAddress` when given (any 127.x.y.z on Linux: another client
   * address); rejects with the connection error (ECONNREFUSED, say).
   */
  static open(port: number, localAddress?: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Has an answer arrived (complete) that was not taken by response() yet? */
  get answered(): boolean {
    return this.#responses.length > 0;
  }

  /** The next complete answer; rejects if the connection closes first or after `ms`. */
  response(ms = 15_000): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(() => reject(new Error(`no answer within ${ms} ms (received: ${JSON.stringify(this.#buffer.toString().slice(0, 300))})`))), ms);
      const finish = (f: () => void) => {
        clearTimeout(timer);
        this.#waiting = this.#waiting.filter((w) => w !== check);
        f();
      };
      const check = () => {
        const r = this.#responses.shift();
        if (r) return finish(() => resolve(r));
        if (this.#ended) {
          finish(() => reject(new Error(`connection closed without an answer (${this.#error?.code ?? 'closed'}; received: ${JSON.stringify(this.#buffer.toString().slice(0, 300))})`)));
        }
      };
      this.#waiting.push(check);
      check();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const w of [...this.#waiting]) w();
  }

  #parse(): void {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = this.#buffer.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      // Every answer of this server has a Content-Length (no chunked bodies on the routes used).
      const length = Number(headers['content-length'] ?? 0);
      if (this.#buffer.length < end + 4 + length) return;
      const body = this.#buffer.subarray(end + 4, end + 4 + length).toString('utf8');
      this.#buffer = this.#buffer.subarray(end + 4 + length);
      let json: Record<string, unknown> | undefined;
      try { json = JSON.parse(body) as Record<string, unknown>; } catch { json = undefined; }
      this.#responses.push({ status: Number(statusLine!.split(' ')[1]), headers, body, json });
      this.#wake();
    }
  }
}

/** A request's head, as a client would write it. */
export function head(method: string, path: string, headers: Record<string, string | number> = {}): string {
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}
