/**
 * The baseline: bare Fastify and a postgres.js pool as the superuser (RLS does not apply), one
 * route, the tenant taken from the X-Tenant header as is. No tenancy, no authentication, no
 * transaction. Same driver settings as tenantry's pools (createPool); the statement is prepared,
 * as postgres.js's sql`...` template would do (BENCH_BARE_PREPARE=0: unprepared, like tenantry's
 * sql.unsafe() calls).
 */
import Fastify from 'fastify';
import { createPool } from '../src/data/postgres-driver.js';
import { BARE_APPLICATION_NAME, TICKET_COLUMNS, envOf, serveIpc } from './common.js';

const sql = createPool(envOf('BENCH_DB_URL'), { max: Number(envOf('BENCH_POOL')), applicationName: BARE_APPLICATION_NAME });
const prepare = process.env.BENCH_BARE_PREPARE !== '0';
const app = Fastify({ logger: false });

app.get<{ Params: { id: string } }>('/tickets/:id', async (request, reply) => {
  const tenant = request.headers['x-tenant'];
  const [ticket] = await sql.unsafe(`select ${TICKET_COLUMNS} from app.tickets where tenant_id = $1 and id = $2`,
    [String(tenant), request.params.id], { prepare });
  if (!ticket) return reply.status(404).send({ code: 'not_found' });
  return ticket;
});

const ipc = serveIpc(async () => {
  await app.close();
  await sql.end({ timeout: 5 });
});
await app.listen({ port: 0, host: '127.0.0.1' });
ipc.ready((app.server.address() as { port: number }).port);
