import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TenantryError, parseUsageRange, type Tenantry, type UsageRange, type UsageRecord } from '../../src/index.js';
import { requireRole } from '../../src/http/index.js';
import { usageReaders } from '../roles.js';
import { adminScoped } from './admin-scope.js';
import { IdParams, UsageQuery } from '../schemas.js';

/** A usage row as the API shows it (snake_case; `tenant_id` on the admin routes only). */
function usageJson(r: UsageRecord, withTenant: boolean) {
  return {
    ...(withTenant ? { tenant_id: r.tenantId } : {}),
    period_start: r.periodStart, api_calls: r.apiCalls, db_time_ms: r.dbTimeMs, egress_bytes: r.egressBytes, storage_bytes: r.storageBytes,
  };
}

function answer(range: UsageRange, rows: UsageRecord[], withTenant: boolean) {
  return {
    from: range.from.toISOString(), to: range.to.toISOString(), granularity: range.granularity,
    data: rows.map((r) => usageJson(r, withTenant)),
  };
}

/** The CSV columns, in order (docs/usage.md). */
export const USAGE_CSV_HEADER = 'tenant_id,period_start,api_calls,db_time_ms,egress_bytes,storage_bytes';

/** Rows as CSV: the header line, then one line per row, each ending in `\n`; no sample of storage: empty. */
export function usageCsv(rows: readonly UsageRecord[]): string {
  const lines = rows.map((r) => `${r.tenantId},${r.periodStart},${r.apiCalls},${r.dbTimeMs},${r.egressBytes},${r.storageBytes ?? ''}`);
  return `${[USAGE_CSV_HEADER, ...lines].join('\n')}\n`;
}

/** `Accept: text/csv` (and not refused with q=0). */
function wantsCsv(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.split(',').some((part) => {
    const [type, ...params] = part.trim().toLowerCase().split(';').map((s) => s.trim());
    return type === 'text/csv' && !params.some((p) => /^q=0(\.0*)?$/.test(p));
  });
}

function send(request: FastifyRequest, reply: FastifyReply, range: UsageRange, rows: UsageRecord[]) {
  if (wantsCsv(request)) return reply.type('text/csv; charset=utf-8').send(usageCsv(rows));
  return answer(range, rows, true);
}

/**
 * `GET /usage?from=&to=&granularity=hour|day`: the tenant's own usage (roles owner and admin). The
 * tenant is the request's, from its context: no parameter names one.
 */
export async function usageRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  app.get<{ Querystring: UsageQuery }>('/usage', { schema: { querystring: UsageQuery } }, async (request) => {
    requireRole(request, ...usageReaders);
    const range = parseUsageRange(request.query);
    return answer(range, await tenantry.usage.query(range), false);
  });
}

/**
 * Admin: `GET /tenants/:id/usage` (one tenant) and `GET /usage` (every tenant, for billing), same
 * parameters; JSON, or CSV with `Accept: text/csv`. In the audited platform scope.
 */
export async function usageAdminRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  app.get<{ Params: IdParams; Querystring: UsageQuery }>('/tenants/:id/usage', { schema: { params: IdParams, querystring: UsageQuery } }, async (request, reply) => {
    const range = parseUsageRange(request.query);
    const rows = await adminScoped(request, 'show tenant usage', async () => {
      if (!(await tenantry.catalog.findById(request.params.id))) throw new TenantryError('tenant_not_found');
      return tenantry.usage.queryAll(range, { tenantId: request.params.id });
    });
    return send(request, reply, range, rows);
  });

  app.get<{ Querystring: UsageQuery }>('/usage', { schema: { querystring: UsageQuery } }, async (request, reply) => {
    const range = parseUsageRange(request.query);
    const rows = await adminScoped(request, 'export usage', () => tenantry.usage.queryAll(range));
    return send(request, reply, range, rows);
  });
}
