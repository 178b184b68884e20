import { pino } from 'pino';
import { Tenantry, loadOptions } from '../src/index.js';
import { startEmbeddedPostgres } from '../src/embedded/embedded-postgres.js';
import { Drain } from '../src/http/index.js';
import { loadAppConfig } from './config.js';
import { demoTenants, seedDemoTenants } from './fixtures.js';
import { buildServer } from './server.js';

import { migrationsDir } from './paths.js';
import { helpdeskPlans } from './plans.js';

/**
 * What is running, undone in reverse order on shutdown: the HTTP server (drained), the toolkit's
 * pools, the embedded PostgreSQL.
 */
const running: { name: string; stop: () => Promise<unknown> }[] = [];
/** The signal that started the shutdown. */
let stopping: NodeJS.Signals | undefined;
/** Updated from TENANTRY_SHUTDOWN_TIMEOUT_MS once the options are read. */
let shutdownTimeoutMs = 10_000;

/** Thrown at the next step of start-up once a signal has come: the shutdown takes over. */
class StartAborted extends Error {}
function checkpoint(): void {
  if (stopping) throw new StartAborted(`${stopping} during start-up`);
}

/** One logger for the server and the toolkit (Redis lost and back, …). */
const log = pino({ level: process.env.LOG_LEVEL ?? 'info' });

async function main(): Promise<void> {
  const config = loadAppConfig();
  // Every option is checked before anything starts: a missing secret in production or a bad value
  // stops here, naming the variable, without a database having been touched.
  const early = loadOptions({ databaseUrl: config.databaseUrl ?? 'postgres://embedded', migrationsDir });
  shutdownTimeoutMs = early.shutdownTimeoutMs;
  checkpoint();
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    console.log(`Starting embedded PostgreSQL (data in ${config.dataDir}) ...`);
    // exitOnSignal false: its own SIGTERM hook would stop PostgreSQL under the requests still in
    // flight and end the process with 143; the shutdown below stops it last.
    const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, exitOnSignal: false });
    running.push({ name: 'embedded PostgreSQL', stop: embedded.stop });
    databaseUrl = embedded.url;
    checkpoint();
  }
  // The JWT settings checked above, so that a generated development secret is the one printed.
  const tenantry = await Tenantry.start({ databaseUrl, migrationsDir, jwt: early.jwt, generated: early.generated, appPlans: helpdeskPlans, log });
  running.push({ name: 'tenantry', stop: () => tenantry.close() });
  checkpoint();
  await seedDemoTenants(tenantry);
  checkpoint();
  // Bring every tenant schema and tenant database up to date too (the pooled schema already is).
  const run = await tenantry.migrateAll({ concurrency: 4 });
  if (!run.ok) {
    const failed = run.results.filter((r) => r.status === 'failed').map((r) => `${r.target}: ${r.error}`);
    const findings = run.audit?.findings.map((f) => `${f.target} ${f.check} ${f.object}: ${f.message}`) ?? [];
    throw new Error(`migrating tenants failed:\n  ${[...failed, ...findings].join('\n  ')}`);
  }
  checkpoint();
  const drain = new Drain();
  const app = await buildServer({
    tenantry,
    adminToken: config.adminToken,
    metricsToken: config.metricsToken,
    loggerInstance: log,
    drain,
  });
  running.push({
    name: 'HTTP server',
    stop: async () => {
      const r = await drain.close(shutdownTimeoutMs);
      if (r.timedOut) console.log(`requests still in flight after ${shutdownTimeoutMs} ms (TENANTRY_SHUTDOWN_TIMEOUT_MS): their connections were closed`);
    },
  });
  checkpoint();
  await app.listen({ port: config.port, host: config.host });
  const port = (app.server.address() as { port: number }).port;
  const base = tenantry.options.baseDomain;

  const lines = [
    '',
    `tenantry helpdesk is running on http://${base}:${port}`,
    '',
    `  Health:        http://${base}:${port}/healthz`,
    `  Admin API:     http://${base}:${port}/admin/api/tenants`,
    `  Metrics:       http://${base}:${port}/metrics   (Authorization: Bearer <${config.metricsToken === config.adminToken ? 'the admin token' : 'TENANTRY_METRICS_TOKEN'}>)`,
    `  Admin token:   ${config.adminToken}${config.generated.includes('TENANTRY_ADMIN_TOKEN') ? '   (generated; set TENANTRY_ADMIN_TOKEN to fix it)' : ''}`,
    ...tenantry.options.generated.map((g) => `  ${g} was generated for this run: tokens die with the process.`),
    '',
    '  Demo tenants and logins:',
    ...demoTenants.flatMap((t) => [
      `    ${t.name} (${t.isolation})  http://${t.slug}.${base}:${port}/api/v1/`,
      ...t.users.map((u) => `      ${u.role.padEnd(6)} ${u.email} / ${u.password}`),
    ]),
    '',
    '  Try:',
    `    curl -s -X POST http://acme.${base}:${port}/api/v1/auth/token -H 'content-type: application/json' \\`,
    `      -d '{"email":"owner@acme.test","password":"acme-owner-password"}'`,
    '',
  ];
  console.log(lines.join('\n'));
}

/**
 * SIGTERM or SIGINT: stop taking requests (503 shutting_down, /readyz included), let those in
 * flight finish within TENANTRY_SHUTDOWN_TIMEOUT_MS, close the pools, stop the embedded server
 * and exit 0. A signal during start-up lets the current step finish, then undoes what started. A
 * second signal exits at once.
 */
async function shutdown(signal: NodeJS.Signals, started: Promise<void>): Promise<never> {
  console.log(`${signal}: shutting down (requests in flight have ${shutdownTimeoutMs} ms to finish) ...`);
  // A backstop: pools or PostgreSQL that do not stop must not keep the process forever.
  setTimeout(() => {
    console.error('shutdown did not finish in time: exiting');
    process.exit(1);
  }, shutdownTimeoutMs + 15_000).unref();
  await started.catch(() => {});
  let failed = false;
  for (const r of running.reverse()) {
    try {
      await r.stop();
    } catch (err) {
      failed = true;
      console.error(`stopping ${r.name} failed:`, err instanceof Error ? err.message : err);
    }
  }
  console.log('stopped');
  process.exit(failed ? 1 : 0);
}

const started = main();
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  // `on`, not `once`: a second signal must reach this handler too (and tsx's own handler ends the
  // process at once when no other listener is left).
  process.on(signal, () => {
    if (stopping) {
      console.error(`${signal} during shutdown: exiting now`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    stopping = signal;
    void shutdown(signal, started);
  });
}

started.catch((err) => {
  if (err instanceof StartAborted) return; // the shutdown is under way
  console.error(err instanceof Error ? err.message : err, (err as { cause?: unknown })?.cause ?? "");
  process.exit(1);
});
