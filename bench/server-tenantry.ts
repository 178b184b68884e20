/**
 * The real helpdesk (app/server.ts) on tenantry, against the benchmark database. Started by
 * bench/run.ts in its own process; reports its port over IPC.

 */
import { Tenantry } from '../src/index.js';
import { buildServer } from '../app/server.js';
import { ADMIN_TOKEN, JWT_SECRET, ROLE_PASSWORD, envOf, migrationsDir, serveIpc } from './common.js';

const tenantry = await Tenantry.start({
  databaseUrl: envOf('BENCH_DB_URL'),
  migrationsDir,
  jwt: { secret: JWT_SECRET, issuer: 'tenantry', audience: 'tenantry-api', ttlSeconds: 3600 },
  rolePasswords: { app: ROLE_PASSWORD, platform: ROLE_PASSWORD },
  poolMax: Number(envOf('BENCH_POOL')),
  // Through PgBouncer (side tenantry-pgb): runtime connections to the pooler, transaction mode.
  ...(process.env.BENCH_RUNTIME_URL ? { runtimeUrl: process.env.BENCH_RUNTIME_URL, pooler: 'transaction' as const } : {}),
});
const app = await buildServer({ tenantry, adminToken: ADMIN_TOKEN });
const ipc = serveIpc(async () => {
  await app.close();
  await tenantry.close();
});
await app.listen({ port: 0, host: '127.0.0.1' });
ipc.ready((app.server.address() as { port: number }).port);
