import type { FastifyInstance } from 'fastify';
import { TenantryError, currentTenant, type Tenantry } from '../../src/index.js';
import { requireRole } from '../../src/http/index.js';
import { CreateApiKeyBody, IdParams } from '../schemas.js';

/** API keys of the tenant: the secret is returned once, at creation. */
export async function apiKeyRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  app.get('/api-keys', async (request) => {
    requireRole(request, 'owner', 'admin');
    return { data: await tenantry.catalog.listApiKeys(currentTenant().id) };
  });

  app.post<{ Body: CreateApiKeyBody }>('/api-keys', { schema: { body: CreateApiKeyBody } }, async (request, reply) => {
    requireRole(request, 'owner', 'admin');
    const { key, record } = await tenantry.catalog.createApiKey(currentTenant().id, { name: request.body.name, role: request.body.role ?? 'agent' });
    return reply.status(201).send({ ...record, key });
  });

  app.delete<{ Params: IdParams }>('/api-keys/:id', { schema: { params: IdParams } }, async (request, reply) => {
    requireRole(request, 'owner', 'admin');
    if (!(await tenantry.catalog.revokeApiKey(currentTenant().id, request.params.id))) throw new TenantryError('not_found');
    return reply.status(204).send();
  });
}
