import type { FastifyInstance } from 'fastify';
import { TenantryError, runWithTenant, type AuditEntry, type Tenantry } from '../../src/index.js';
import { requireRole } from '../../src/http/index.js';
import { auditReaders } from '../roles.js';
import { adminScoped } from './admin-scope.js';
import { AdminAuditLogQuery, AnalyticsQuery, AuditLogQuery } from '../schemas.js';

/**
 * `GET /audit-log?cursor=&limit=`: the tenant's audit trail, newest first (owner, admin) — its own
 * log merged with the platform's entries about it (see TenantAuditLog).
 * `GET /analytics?days=N`: per day, active users, entries per action, tickets opened and resolved,
 * all computed from the durable audit logs.
 */
export async function auditRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  app.get<{ Querystring: AuditLogQuery }>('/audit-log', { schema: { querystring: AuditLogQuery } }, async (request) => {
    requireRole(request, ...auditReaders);
    return tenantry.audit.page({ limit: request.query.limit, cursor: request.query.cursor });
  });

  app.get<{ Querystring: AnalyticsQuery }>('/analytics', { schema: { querystring: AnalyticsQuery } }, async (request) => {
    requireRole(request, ...auditReaders);
    const days = await tenantry.audit.activity(request.query.days);
    return {
      days: request.query.days,
      data: days.map((d) => ({
        date: d.date,
        active_users: d.active_users,
        tickets_opened: d.actions['ticket.created'] ?? 0,
        tickets_resolved: d.actions['ticket.resolved'] ?? 0,
        actions: d.actions,
      })),
    };
  });
}

function platformEntryJson(e: AuditEntry) {
  return {
    id: `p:${e.id}`, log: 'platform', seq: e.seq, at: e.at, tenant_id: e.tenantId, actor: { type: e.actorType, id: e.actor || null },
    action: e.action, target: e.target, request_id: e.requestId, client_address: e.clientAddress, detail: e.detail,
  };
}

function decodePlatformCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  const id = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!Number.isSafeInteger(id) || id < 1) throw new TenantryError('invalid_cursor');
  return id;
}

/**
 * Admin: `GET /audit-log?tenant=&cursor=&limit=` — with `tenant` (id or slug), that tenant's trail
 * as its owners see it; without, the whole platform log (every platform scope entry, lifecycle
 * step and API key change), newest first. In the audited platform scope.
 */
export async function auditAdminRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  app.get<{ Querystring: AdminAuditLogQuery }>('/audit-log', { schema: { querystring: AdminAuditLogQuery } }, async (request) => {
    const { tenant: wanted, limit, cursor } = request.query;
    return adminScoped(request, wanted ? `read the audit log of tenant ${wanted}` : 'read the platform audit log', async () => {
      if (wanted) {
        const tenant = await tenantry.catalog.findBySlugOrId(wanted);
        if (!tenant) throw new TenantryError('tenant_not_found');
        return runWithTenant(tenant, () => tenantry.audit.page({ limit, cursor }));
      }
      const rows = await tenantry.auditLog.list({ limit: limit + 1, before: decodePlatformCursor(cursor) });
      const data = rows.slice(0, limit);
      return {
        data: data.map(platformEntryJson),
        next_cursor: rows.length > limit ? Buffer.from(String(data[data.length - 1]!.id)).toString('base64url') : null,
      };
    });
  });
}
