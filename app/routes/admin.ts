import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { TenantryError, hashPassword, limitsView, type LimitsPatch, type Tenant, type Tenantry } from '../../src/index.js';
import { adminScoped } from './admin-scope.js';
import { CreateTenantBody, IdParams, LimitsPatchBody, TenantListQuery } from '../schemas.js';
import { decodeCursor, page } from '../pagination.js';
import { createOwner } from '../owner.js';
import { usageAdminRoutes } from './usage.js';
import { auditAdminRoutes } from './audit.js';

export function tenantJson(t: Tenant) {
  return {
    id: t.id, slug: t.slug, name: t.name, status: t.status, plan: t.plan, isolation: t.isolation,
    shard: t.shard, settings: t.settings, created_at: t.createdAt, updated_at: t.updatedAt,
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * The platform admin API. Every route needs `Authorization: Bearer $TENANTRY_ADMIN_TOKEN` and runs
 * in the audited platform scope.
 */
export async function adminRoutes(app: FastifyInstance, opts: { tenantry: Tenantry; adminToken: string }): Promise<void> {
  const { tenantry } = opts;
  const expected = digest(opts.adminToken);

  app.addHook('onRequest', async (request) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    // Compare digests: constant time, whatever the lengths.
    if (!m || !timingSafeEqual(digest(m[1]!), expected)) throw new TenantryError('admin_token_invalid');
  });


  app.post<{ Body: CreateTenantBody }>('/tenants', { schema: { body: CreateTenantBody } }, async (request, reply) => {
    const { owner, ...input } = request.body;
    const passwordHash = await hashPassword(owner.password);
    const { tenant, init: ownerId } = await adminScoped(request, `create tenant ${input.slug}`, () => tenantry.createTenant(input,
      () => createOwner(tenantry, owner, passwordHash)));
    return reply.status(201).send({ ...tenantJson(tenant), owner: { id: ownerId, email: owner.email.toLowerCase(), name: owner.name } });
  });

  app.get<{ Querystring: TenantListQuery }>('/tenants', { schema: { querystring: TenantListQuery } }, async (request) => {
    const { limit, cursor } = request.query;
    const after = decodeCursor(cursor);
    const rows = await adminScoped(request, 'list tenants', () => tenantry.catalog.list({ limit: limit + 1, after }));
    const { data, next_cursor } = page(rows, limit);
    return { data: data.map(tenantJson), next_cursor };
  });

  app.get<{ Params: IdParams }>('/tenants/:id', { schema: { params: IdParams } }, async (request) => {
    const tenant = await adminScoped(request, 'show tenant', () => tenantry.catalog.findById(request.params.id));
    if (!tenant) throw new TenantryError('tenant_not_found');
    return tenantJson(tenant);
  });

  await app.register(limitRoutes, { tenantry });
  await app.register(usageAdminRoutes, { tenantry });
  await app.register(auditAdminRoutes, { tenantry });

  for (const [action, status] of [['suspend', 'suspended'], ['resume', 'active']] as const) {
    app.post<{ Params: IdParams }>(`/tenants/:id/${action}`, { schema: { params: IdParams } }, async (request) => {
      const tenant = await adminScoped(request, `${action} tenant`, () => tenantry.setTenantStatus(request.params.id, status));
      if (!tenant) throw new TenantryError('tenant_not_found');
      return tenantJson(tenant);
    });
  }
}

/**
 * Plans and limits: `GET /plans`; `GET /tenants/:id/limits` (effective limits, where each comes
 * from, the tenant's overrides); `PATCH /tenants/:id/limits` (a value overrides, null resets to the
 * plan). Every instance applies a change at once (the catalog channel).
 */
export async function limitRoutes(app: FastifyInstance, opts: { tenantry: Tenantry }): Promise<void> {
  const { tenantry } = opts;

  app.get('/plans', async () => ({
    data: [...tenantry.plans.all()].map(([name, limits]) => ({ name, ...limits })),
  }));

  app.get<{ Params: IdParams }>('/tenants/:id/limits', { schema: { params: IdParams } }, async (request) => {
    const tenant = await adminScoped(request, 'show tenant limits', () => tenantry.catalog.findById(request.params.id));
    if (!tenant) throw new TenantryError('tenant_not_found');
    return limitsView(tenantry.plans, tenant);
  });

  app.patch<{ Params: IdParams; Body: LimitsPatchBody }>('/tenants/:id/limits', { schema: { params: IdParams, body: LimitsPatchBody } }, async (request) => {
    const tenant = await adminScoped(request, 'change tenant limits', () => tenantry.tenants.setLimits(request.params.id, request.body as LimitsPatch));
    if (!tenant) throw new TenantryError('tenant_not_found');
    return limitsView(tenantry.plans, tenant);
  });
}
