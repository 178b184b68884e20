/**
 * The real helpdesk (app/server.ts) on tenantry, against the benchmark database. Started by
 * bench/run.ts in its own process; reports its port over IPC.
 *
 * Environment (set by the orchestrator):
 * - BENCH_PLANS: `roomy` (default) gives every plan limits the load never reaches (the HTTP and
 *   admission pairs measure tenantry, not its 429s), `builtin` keeps the built-in plans (the
 *   noisy-neighbour and cohort scenarios);
 * - BENCH_ADMISSION=off: the tenancy plugin gets no admission at all (side tenantry-noadmission);
 * - BENCH_REDIS_URL / BENCH_REDIS_PREFIX: admission through Redis (side tenantry-redis);
 * - BENCH_RUNTIME_URL: runtime connections through PgBouncer (side tenantry-pgb);
 * - BENCH_FEATURES: which of issue 10's per-request features run — `all` (default), `none`
 *   (no metrics, no spans, no usage metering, no audit entries, no log enrichment: side
 *   tenantry-plain) or `noaudit` (all but the audit entries: side tenantry-noaudit);
 * - BENCH_LOG=sink: Fastify logs its request lines at info to /dev/null (as a production server
 *   logs them; the lines are written, nobody reads them); default: no logger.
 */
import pino from 'pino';
import { Tenantry } from '../src/index.js';
import { buildServer } from '../app/server.js';
import { ADMIN_TOKEN, JWT_SECRET, ROLE_PASSWORD, envOf, migrationsDir, roomyPlans, serveIpc } from './common.js';

// Only what the orchestrator says: a REDIS_URL or TENANTRY_PLANS of the shell must not leak in.
delete process.env.REDIS_URL;
delete process.env.TENANTRY_PLANS;
delete process.env.TENANTRY_REDIS_PREFIX;
const plans = process.env.BENCH_PLANS ?? 'roomy';
if (plans !== 'roomy' && plans !== 'builtin') throw new Error(`BENCH_PLANS must be roomy or builtin, got ${plans}`);
const redisUrl = process.env.BENCH_REDIS_URL;
const features = process.env.BENCH_FEATURES ?? 'all';
if (!['all', 'none', 'noaudit'].includes(features)) throw new Error(`BENCH_FEATURES must be all, none or noaudit, got ${features}`);
const plain = features === 'none';

const tenantry = await Tenantry.start({
  databaseUrl: envOf('BENCH_DB_URL'),
  migrationsDir,
  jwt: { secret: JWT_SECRET, issuer: 'tenantry', audience: 'tenantry-api', ttlSeconds: 3600 },
  rolePasswords: { app: ROLE_PASSWORD, platform: ROLE_PASSWORD },
  poolMax: Number(envOf('BENCH_POOL')),
  ...(plans === 'roomy' ? { plans: roomyPlans } : {}),
  ...(redisUrl ? { redisUrl, redisPrefix: process.env.BENCH_REDIS_PREFIX ?? 'bench:' } : {}),
  // Through PgBouncer (side tenantry-pgb): runtime connections to the pooler, transaction mode.
  ...(process.env.BENCH_RUNTIME_URL ? { runtimeUrl: process.env.BENCH_RUNTIME_URL, pooler: 'transaction' as const } : {}),
  log: { info: () => {}, warn: (obj, msg) => console.warn(`[server] ${msg}`, obj) },
  audit: features === 'all',
  metering: !plain,
});
if (redisUrl && tenantry.redisState() !== 'up') throw new Error(`Redis at ${redisUrl} is ${tenantry.redisState()}: the side would measure in-process admission`);
const app = await buildServer({
  tenantry,
  adminToken: ADMIN_TOKEN,
  ...(process.env.BENCH_ADMISSION === 'off' ? { admission: false as const } : {}),
  ...(process.env.BENCH_LOG === 'sink' ? { loggerInstance: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false })) } : {}),
  ...(plain ? { observability: { metrics: false, tracing: false }, logEnrichment: false } : {}),
});
const ipc = serveIpc(async () => {
  await app.close();
  await tenantry.close();
});
await app.listen({ port: 0, host: '127.0.0.1' });
ipc.ready((app.server.address() as { port: number }).port);
