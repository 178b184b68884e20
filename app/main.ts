import { Tenantry, loadOptions } from '../src/index.js';
import { startEmbeddedPostgres } from '../src/embedded/embedded-postgres.js';
import { loadAppConfig } from './config.js';
import { demoTenants, seedDemoTenants } from './fixtures.js';
import { buildServer } from './server.js';

import { migrationsDir } from './paths.js';

async function main(): Promise<void> {
  const config = loadAppConfig();
  // Every option is checked before anything starts: a missing secret in production or a bad value
  // stops here, naming the variable, without a database having been touched.
  const early = loadOptions({ databaseUrl: config.databaseUrl ?? 'postgres://embedded', migrationsDir });
  let databaseUrl = config.databaseUrl;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!databaseUrl) {
    console.log(`Starting embedded PostgreSQL (data in ${config.dataDir}) ...`);
    const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir });
    databaseUrl = embedded.url;
    stopEmbedded = embedded.stop;
  }
  // The JWT settings checked above, so that a generated development secret is the one printed.
  const tenantry = await Tenantry.start({ databaseUrl, migrationsDir, jwt: early.jwt, generated: early.generated });
  await seedDemoTenants(tenantry);
  // Bring every tenant schema and tenant database up to date too (the pooled schema already is).
  const run = await tenantry.migrateAll({ concurrency: 4 });
  if (!run.ok) {
    const failed = run.results.filter((r) => r.status === 'failed').map((r) => `${r.target}: ${r.error}`);
    const findings = run.audit?.findings.map((f) => `${f.target} ${f.check} ${f.object}: ${f.message}`) ?? [];
    throw new Error(`migrating tenants failed:\n  ${[...failed, ...findings].join('\n  ')}`);
  }
  const app = await buildServer({
    tenantry,
    adminToken: config.adminToken,
    logger: { level: process.env.LOG_LEVEL ?? 'info' },
  });
  await app.listen({ port: config.port, host: config.host });
  const port = (app.server.address() as { port: number }).port;
  const base = tenantry.options.baseDomain;

  const lines = [
    '',
    `tenantry helpdesk is running on http://${base}:${port}`,
    '',
    `  Health:        http://${base}:${port}/healthz`,
    `  Admin API:     http://${base}:${port}/admin/api/tenants`,
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

  const shutdown = async () => {
    await app.close();
    await tenantry.close();
    await stopEmbedded?.();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err, (err as { cause?: unknown })?.cause ?? "");
  process.exit(1);
});
