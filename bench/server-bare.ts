/**
 * The baselines: bare Fastify and a postgres.js pool, one route `GET /tickets/:id`, the tenant
 * taken from the X-Tenant header as is. No tenancy plugin, no authentication, no async context.
 *
 * - BENCH_BARE_MODE=plain (side "bare"): the superuser pool (RLS does not apply) runs one
 *   prepared statement with `where tenant_id = $1 and id = $2`, no transaction. The issue's
 *   baseline. BENCH_BARE_PREPARE=0 makes it unprepared.
 * - BENCH_BARE_MODE=rls (side "bare-rls"): the runtime role tenantry_app (RLS on), and by hand the
 *   same four prepared statements tenantry sends (BEGIN, set_config, SELECT, COMMIT) written
 *   together on a reserved connection. tenantry/bare-rls is the cost of the toolkit's HTTP layer
 *   (resolution, JWT, async context, hooks); bare-rls/bare the cost of a transaction-local
 *   context itself.
 */
import Fastify from 'fastify';
import { createPool, withCredentials, type Params } from '../src/data/postgres-driver.js';
import { contextPrelude, roles, schemas } from '../src/index.js';
import { BARE_APPLICATION_NAME, BARE_RLS_APPLICATION_NAME, ROLE_PASSWORD, TICKET_COLUMNS, envOf, serveIpc } from './common.js';

const rls = process.env.BENCH_BARE_MODE === 'rls';
const url = envOf('BENCH_DB_URL');
const sql = rls
  ? createPool(withCredentials(url, roles.app, ROLE_PASSWORD), { max: Number(envOf('BENCH_POOL')), applicationName: BARE_RLS_APPLICATION_NAME })
  : createPool(url, { max: Number(envOf('BENCH_POOL')), applicationName: BARE_APPLICATION_NAME });
const prepare = process.env.BENCH_BARE_PREPARE !== '0';
const PREPARED = { prepare: true } as const;
const app = Fastify({ logger: false });

app.get<{ Params: { id: string } }>('/tickets/:id', async (request, reply) => {
  const tenant = String(request.headers['x-tenant']);
  let ticket: unknown;
  if (rls) {
    const prelude = contextPrelude(tenant, schemas.pooled);
    const conn = await sql.reserve();
    try {
      const [, , rows] = await Promise.all([
        conn.unsafe('begin'),
        conn.unsafe(prelude.text, prelude.params as Params, PREPARED),
        conn.unsafe(`select ${TICKET_COLUMNS} from tickets where id = $1`, [request.params.id], PREPARED),
        conn.unsafe('commit'),
      ]);
      ticket = rows[0];
    } finally {
      conn.release();
    }
  } else {
    [ticket] = await sql.unsafe(`select ${TICKET_COLUMNS} from app.tickets where tenant_id = $1 and id = $2`,
      [tenant, request.params.id], { prepare });
  }
  if (!ticket) return reply.status(404).send({ code: 'not_found' });
  return ticket;
});

const ipc = serveIpc(async () => {
  await app.close();
  await sql.end({ timeout: 5 });
});
await app.listen({ port: 0, host: '127.0.0.1' });
ipc.ready((app.server.address() as { port: number }).port);
