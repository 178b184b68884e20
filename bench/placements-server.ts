/**
 * The real helpdesk (app/server.ts on tenantry) for bench/placements.ts, in its own process.
 * Started with fork(); reports its port over IPC, answers pool probes, and exits when told to or
 * when the orchestrator goes away (the IPC channel closes), so it never outlives a crashed run.
 *
 * Environment (set by bench/placements.ts): PLACEMENTS_DB_URL, PLACEMENTS_MIGRATIONS_DIR,
 * PLACEMENTS_JWT_SECRET, PLACEMENTS_ROLE_PASSWORD, PLACEMENTS_POOL_MAX.
 */
import { Tenantry } from '../src/index.js';
import type { DatabasePlacement } from '../src/data/database/database-placement.js';
import { buildServer } from '../app/server.js';

export type PlacementsServerMessage =
  | { type: 'ready'; port: number }
  | { type: 'pools'; open: number; reserved: number }
  | { type: 'cpu'; user: number; system: number };
export type PlacementsOrchestratorMessage = { type: 'pools' } | { type: 'cpu' } | { type: 'stop' };

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: this process is started by bench/placements.ts`);
  return v;
}

if (!process.send) throw new Error('start this file through bench/placements.ts (it needs the fork() IPC channel)');
const send = (m: PlacementsServerMessage) => process.send?.(m);

const tenantry = await Tenantry.start({
  databaseUrl: env('PLACEMENTS_DB_URL'),
  migrationsDir: env('PLACEMENTS_MIGRATIONS_DIR'),
  jwt: { secret: env('PLACEMENTS_JWT_SECRET'), issuer: 'tenantry', audience: 'tenantry-api', ttlSeconds: 3600 },
  rolePasswords: { app: env('PLACEMENTS_ROLE_PASSWORD'), platform: env('PLACEMENTS_ROLE_PASSWORD') },
  poolMax: Number(env('PLACEMENTS_POOL_MAX')),
});
const app = await buildServer({ tenantry, adminToken: 'placements-admin-token-0123456789' });

let closing = false;
async function shutdown(code: number): Promise<void> {
  if (closing) return;
  closing = true;
  const timer = setTimeout(() => process.exit(code), 5_000);
  timer.unref();
  try {
    await app.close();
    await tenantry.close();
  } finally {
    process.exit(code);
  }
}
process.on('message', (m: PlacementsOrchestratorMessage) => {
  if (m.type === 'stop') void shutdown(0);
  else if (m.type === 'cpu') {
    const c = process.cpuUsage();
    send({ type: 'cpu', user: c.user, system: c.system });
  } else if (m.type === 'pools') {
    const db = tenantry.db.placement('database') as DatabasePlacement;
    send({ type: 'pools', open: db.openPools, reserved: db.connectionsReserved });
  }
});
process.on('disconnect', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));

await app.listen({ port: 0, host: '127.0.0.1' });
send({ type: 'ready', port: (app.server.address() as { port: number }).port });
