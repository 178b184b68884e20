/**
 * The baselines: bare Fastify and a pool of the same driver (node-postgres), one route `GET /tickets/:id`, the tenant
 * taken from the X-Tenant header as is. No tenancy plugin, no authentication, no async context.
 *
 * - BENCH_BARE_MODE=plain (side "bare"): the superuser pool (RLS does not apply) runs one
 *   prepared statement with `where tenant_id = $1 and id = $2`, no transaction. The issue's
 *   baseline. BENCH_BARE_PREPARE=0 makes it unprepared.
 * - BENCH_BARE_MODE=rls (side "bare-rls"): the runtime role tenantry_app (RLS on), and by hand the
 *   same two prepared statements tenantry sends (the context's set_config and the SELECT) before
 *   one Sync, on a reserved connection. tenantry/bare-rls is the cost of the toolkit's HTTP layer
 *   (resolution, JWT, async context, hooks); bare-rls/bare the cost of a transaction-local
 *   context itself.
 */
import Fastify from 'fastify';
import { createPool, withCredentials } from '../src/data/driver/index.js';
import { contextStatement } from '../src/data/placement.js';
import { roles, schemas } from '../src/data/bootstrap.js';
import { BARE_APPLICATION_NAME, BARE_RLS_APPLICATION_NAME, ROLE_PASSWORD, TICKET_COLUMNS, envOf, serveIpc } from './common.js';

const rls = process.env.BENCH_BARE_MODE === 'rls';
const url = envOf('BENCH_DB_URL');
const prepare = process.env.BENCH_BARE_PREPARE !== '0';
const sql = rls
  ? createPool(withCredentials(url, roles.app, ROLE_PASSWORD), { max: Number(envOf('BENCH_POOL')), applicationName: BARE_RLS_APPLICATION_NAME, prepare })
  : createPool(url, { max: Number(envOf('BENCH_POOL')), applicationName: BARE_APPLICATION_NAME, prepare });
const app = Fastify({ logger: false });

app.get<{ Params: { id: string } }>('/tickets/:id', async (request, reply) => {
  const tenant = String(request.headers['x-tenant']);
  let ticket: unknown;
  if (rls) {
    const conn = await sql.connect();
    try {
      const [, rows] = await conn.pipeline([
        contextStatement(tenant, { searchPath: schemas.pooled }, 5_000),
        { text: `select ${TICKET_COLUMNS} from tickets where id = $1`, params: [request.params.id] },
      ]);
      ticket = rows![0];
    } finally {
      conn.release();
    }
  } else {
    [ticket] = await sql.query(`select ${TICKET_COLUMNS} from app.tickets where tenant_id = $1 and id = $2`,
      [tenant, request.params.id]);
  }
  if (!ticket) return reply.status(404).send({ code: 'not_found' });
  return ticket;
});

const ipc = serveIpc(async () => {
  await app.close();
  await sql.end();
});
await app.listen({ port: 0, host: '127.0.0.1' });
ipc.ready((app.server.address() as { port: number }).port);
