import { createHash, timingSafeEqual } from 'node:crypto';
import { context } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import { TenantryError } from '../errors.js';
import { TenantryMetrics, type MetricsSource } from './metrics.js';
import { HELD_LOG_FIELD, writeIncomingRequest } from './request-log.js';
import { endRequestSpan, startRequestSpan, traceEvents, type RequestSpan } from './tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's span while an OpenTelemetry SDK records it (observability plugin). */
    tenantrySpan: RequestSpan | null;
  }
  interface FastifyInstance {
    /** The process's metrics (observability plugin with metrics on), or undefined. */
    tenantryMetrics: TenantryMetrics | undefined;
  }
}

export interface ObservabilityPluginOptions {
  /** The started toolkit: its pools, its catalog, and `options.metricsTenantLabels`. */
  readonly tenantry: MetricsSource & { readonly options: { readonly metricsTenantLabels: number } };
  /**
   * The bearer token `GET /metrics` requires (the helpdesk: TENANTRY_METRICS_TOKEN, else the admin
   * token). Required when metrics are on: the route never answers without it.
   */
  readonly metricsToken?: string;
  /** Serve `GET <metricsPath>` and count (default true). */
  readonly metrics?: boolean;
  /** Default `/metrics`. */
  readonly metricsPath?: string;
  /** Request, resolution and data-plane spans through @opentelemetry/api (default true; no SDK, no cost to speak of). */
  readonly tracing?: boolean;
  /** Re-rank of the labelled tenants, milliseconds (default 5000). */
  readonly rerankMs?: number;
  /** Half-life of a tenant's activity score, milliseconds (default 60000). */
  readonly halfLifeMs?: number;
  /** Tenant counts are read from the catalog at most this often, milliseconds (default 30000). */
  readonly tenantCountsTtlMs?: number;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Metrics, request ids, request log lines and traces for a whole server (register it on the root
 * instance, before the routes; its hooks apply to every route registered after it):
 *
 * - every answer carries `X-Request-Id` (the request's id: see requestLogOptions);
 * - Fastify's "incoming request" line, held back by TenantLogController, is written in the first
 *   hook after tenant resolution (preParsing), so it carries the tenant;
 * - `GET /metrics`: the Prometheus exposition, only with `Authorization: Bearer <metricsToken>`
 *   (else 401 `metrics_token_invalid`, nothing else); every request is counted in its onResponse
 *   hook, by tenant (bounded: TENANTRY_METRICS_TENANT_LABELS), plan, route pattern, method and
 *   status. See docs/metrics.md;
 * - spans (tracing.ts): the request's is started in its first hook and made the active span of
 *   the rest of its hooks and its handler (re-entered in preHandler: a body read from the socket
 *   loses the async context, as for the tenant context).
 */
async function observability(app: FastifyInstance, opts: ObservabilityPluginOptions): Promise<void> {
  const metrics = opts.metrics === false ? undefined : new TenantryMetrics({
    source: opts.tenantry,
    tenantLabels: opts.tenantry.options.metricsTenantLabels,
    rerankMs: opts.rerankMs,
    halfLifeMs: opts.halfLifeMs,
    tenantCountsTtlMs: opts.tenantCountsTtlMs,
  });
  const tracing = opts.tracing !== false;
  const stopTracing = tracing ? traceEvents() : undefined;
  app.addHook('onClose', async () => {
    metrics?.close();
    stopTracing?.();
  });
  app.decorate('tenantryMetrics', metrics);
  app.decorateRequest('tenantrySpan', null);
  app.decorateRequest(HELD_LOG_FIELD, null);

  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    if (tracing) {
      const s = startRequestSpan(request.method, request.routeOptions.url ?? 'unmatched');
      if (s !== undefined) {
        request.tenantrySpan = s;
        context.with(s.context, done);
        return;
      }
    }
    done();
  });

  app.addHook('preParsing', (request, reply, payload, done) => {
    writeIncomingRequest(request, reply);
    done(null, payload);
  });

  app.addHook('preHandler', (request, _reply, done) => {
    const s = request.tenantrySpan;
    if (s === null) done();
    else context.with(s.context, done);
  });

  app.addHook('onResponse', (request, reply, done) => {
    const tenant = request.tenancy?.tenant;
    metrics?.recordRequest(tenant, request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000);
    const s = request.tenantrySpan;
    if (s !== null) {
      request.tenantrySpan = null;
      endRequestSpan(s, reply.statusCode, tenant);
    }
    done();
  });

  app.addHook('onRequestAbort', (request, done) => {
    const s = request.tenantrySpan;
    if (s !== null) {
      request.tenantrySpan = null;
      s.span.setAttribute('tenantry.aborted', true);
      endRequestSpan(s, 499, request.tenancy?.tenant);
    }
    done();
  });

  if (metrics) {
    if (!opts.metricsToken) throw new TypeError('the observability plugin needs a metricsToken to serve metrics (or metrics: false)');
    const expected = digest(opts.metricsToken);
    app.get(opts.metricsPath ?? '/metrics', async (request, reply) => {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
      // Digests: constant time, whatever the lengths.
      if (!m || !timingSafeEqual(digest(m[1]!), expected)) throw new TenantryError('metrics_token_invalid');
      const text = await metrics.metrics();
      return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
    });
  }
}

(observability as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export const observabilityPlugin = observability;
