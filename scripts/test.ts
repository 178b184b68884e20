/**
 * `npm test`: runs the suite on TEST_DATABASE_URL (a superuser URL of a PostgreSQL 15+ server),
 * or, when it is not set, on one embedded PostgreSQL started for this run and removed after it.
 * Each test file creates its own database on that server.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/embedded/embedded-postgres.js';
import { pgBouncerBinary, startPgBouncer } from './pgbouncer.js';

const args = process.argv.slice(2);
const files = args.length ? args : (await readdir('test')).filter((f) => f.endsWith('.test.ts')).sort().map((f) => path.join('test', f));

let url = process.env.TEST_DATABASE_URL;
let cleanup = async () => {};
if (!url) {
  const dir = await mkdtemp(path.join(tmpdir(), 'tenantry-test-'));
  const server = await startEmbeddedPostgres({ dataDir: dir, persistent: false });
  url = server.url;
  cleanup = async () => {
    await server.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  console.log(`embedded PostgreSQL for this run on port ${server.port}`);
} else {
  console.log(`tests use TEST_DATABASE_URL (${new URL(url).host})`);
}

// PgBouncer in transaction mode in front of the same server, for the suites that also run through
// it (test/*-pgbouncer.test.ts). The runtime roles' passwords are the suite's fixed ones.
let pgbouncerUrl: string | undefined;
let stopPgBouncer = async () => {};
if (pgBouncerBinary()) {
  const password = 'tenantry-test-role-password';
  const bouncer = await startPgBouncer({ upstreamUrl: url, users: { tenantry_app: password, tenantry_platform: password } });
  pgbouncerUrl = bouncer.url;
  stopPgBouncer = () => bouncer.stop();
  console.log(`PgBouncer (transaction mode) for this run on port ${bouncer.port}`);
} else {
  console.log('pgbouncer is not installed: the suites through PgBouncer are skipped (CI installs it)');
}

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
  env: { ...process.env, TEST_DATABASE_URL: url, ...(pgbouncerUrl ? { TEST_PGBOUNCER_URL: pgbouncerUrl } : {}) },
});
const code: number = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await stopPgBouncer().catch(() => {});
await cleanup();
process.exit(code);
