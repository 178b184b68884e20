import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Principal, Tenantry } from '../src/index.js';
import { installValidators, registerProblemHandlers, sendProblem, problemOf, tenancyPlugin } from '../src/http/index.js';
import { adminRoutes } from './routes/admin.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { authRoutes } from './routes/auth.js';
import { ticketRoutes } from './routes/tickets.js';
import { userRoutes } from './routes/users.js';
import { UserSessions } from './sessions.js';

export interface ServerOptions {
  readonly tenantry: Tenantry;
  readonly adminToken: string;
  readonly logger?: FastifyServerOptions['logger'];
  /** Largest accepted request body, bytes. */
  readonly bodyLimit?: number;
  /** How long a user's existence and role are trusted before they are read again (see UserSessions). */
  readonly sessionTtlMs?: number;
}

/** The helpdesk: built only on tenantry's public API (src/index.ts and src/http). */
export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? 64 * 1024,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
  });
  installValidators(app);
  registerProblemHandlers(app);
  const { tenantry } = opts;

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (request, reply) => {
    if (await tenantry.ready()) return { status: 'ready' };
    return sendProblem(reply, request, problemOf('database_unavailable', 'the catalog or the database does not answer'));
  });

  await app.register(adminRoutes, { prefix: '/admin/api', tenantry, adminToken: opts.adminToken });
  const sessions = new UserSessions(tenantry, opts.sessionTtlMs);
  await app.register(async (api) => {
    await api.register(tenancyPlugin, { strategies: tenantry.strategies });
    // After the tenant is resolved: a token's user must still exist, with the role it has now.
    api.addHook('onRequest', (request, _reply, done) => {
      const r = request.tenancy;
      if (!r?.principal) return done();
      const set = (principal: Principal) => {
        if (principal !== r.principal) request.tenancy = { ...r, principal };
        done();
      };
      try {
        const checked = sessions.check(r.tenant, r.principal);
        if (checked instanceof Promise) checked.then(set, done);
        else set(checked);
      } catch (err) {
        done(err as Error);
      }
    });
    await api.register(authRoutes, { tenantry });
    await api.register(userRoutes, { tenantry, sessions });
    await api.register(ticketRoutes, { tenantry });
    await api.register(apiKeyRoutes, { tenantry });
  }, { prefix: '/api/v1' });
  return app;
}
