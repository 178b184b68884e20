import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Tenantry } from '../src/index.js';
import {
  Drain, installClientLimits, installValidators, observabilityPlugin, registerProblemHandlers, requestLogOptions, sendProblem, serverOptions, problemOf, tenancyPlugin,
  type ObservabilityPluginOptions,
} from '../src/http/index.js';
import { adminRoutes } from './routes/admin.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { authRoutes } from './routes/auth.js';
import { ticketRoutes } from './routes/tickets.js';
import { userRoutes } from './routes/users.js';
import { usageRoutes } from './routes/usage.js';
import { auditRoutes } from './routes/audit.js';

export interface ServerOptions {
  readonly tenantry: Tenantry;
  readonly adminToken: string;
  /** Bearer token of GET /metrics (TENANTRY_METRICS_TOKEN); default: the admin token. */
  readonly metricsToken?: string;
  /** Overrides of the observability plugin's settings (tests: a fast re-rank). */
  readonly observability?: Partial<Omit<ObservabilityPluginOptions, 'tenantry' | 'metricsToken'>>;
  readonly logger?: FastifyServerOptions['logger'];
  /** A pino logger to use instead (npm start shares one with the toolkit). */
  readonly loggerInstance?: FastifyServerOptions['loggerInstance'];
  /** Largest accepted request body, bytes. */
  readonly bodyLimit?: number;
  /** Graceful stop (npm start closes the server through it on SIGTERM and SIGINT). */
  readonly drain?: Drain;
  /** false: no rate or concurrency admission (the benchmark's baseline); default: tenantry.admission. */
  readonly admission?: false;
  /**
   * false: Fastify's request lines as they come, without the tenant fields and without a request
   * id taken from X-Request-Id (the cost benchmark's baseline); default true.
   */
  readonly logEnrichment?: boolean;
}

/** The helpdesk: built only on tenantry's public API (src/index.ts and src/http). */
export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // Node's and Fastify's own answers (408, 414, 431, a missing Host, a bad request) as problem+json.
    // request.ip believes X-Forwarded-For only from the proxies TENANTRY_TRUST_PROXY names.
    ...serverOptions({ requestTimeoutMs: opts.tenantry.options.requestTimeoutMs, trustProxy: opts.tenantry.options.trustProxy }),
    ...(opts.loggerInstance ? { loggerInstance: opts.loggerInstance } : { logger: opts.logger ?? false }),
    bodyLimit: opts.bodyLimit ?? 64 * 1024,
    // X-Request-Id kept when valid, request_id in every log line, "incoming request" logged once the tenant is known.
    ...(opts.logEnrichment === false ? {} : requestLogOptions()),
  });
  // At most TENANTRY_MAX_CONNECTIONS_PER_CLIENT connections per client address (429, closed).
  installClientLimits(app, { maxConnectionsPerClient: opts.tenantry.options.maxConnectionsPerClient });
  // First, so that a request arriving during shutdown is refused before any other work.
  opts.drain?.install(app);
  installValidators(app);
  registerProblemHandlers(app);
  const { tenantry } = opts;
  // Metrics (GET /metrics), X-Request-Id on every answer, request spans: before every route.
  await app.register(observabilityPlugin, { tenantry, metricsToken: opts.metricsToken ?? opts.adminToken, ...opts.observability });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (request, reply) => {
    // Redis `down` is not "not ready": limits go on in-process and the cache reads the database.
    if (await tenantry.ready()) return { status: 'ready', redis: tenantry.redisState() };
    return sendProblem(reply, request, problemOf('database_unavailable', 'the catalog or the database does not answer'));
  });

  await app.register(adminRoutes, { prefix: '/admin/api', tenantry, adminToken: opts.adminToken });
  await app.register(async (api) => {
    await api.register(tenancyPlugin, { strategies: tenantry.strategies, admission: opts.admission === false ? undefined : tenantry.admission });
    await api.register(authRoutes, { tenantry });
    await api.register(userRoutes, { tenantry });
    await api.register(ticketRoutes, { tenantry });
    await api.register(apiKeyRoutes, { tenantry });
    await api.register(usageRoutes, { tenantry });
    await api.register(auditRoutes, { tenantry });
  }, { prefix: '/api/v1' });
  return app;
}
