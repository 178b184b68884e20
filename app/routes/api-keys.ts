import type { FastifyInstance } from 'fastify';
import { TenantryError, type Tenantry } from '../../src/index.js';
import { requireRole } from '../../src/http/index.js';
import { apiKeyManagers } from '../roles.js';
import { CreateApiKeyBody, IdParams } from '../schemas.js';

/**
 * API keys of the tenant: the secret is returned once, at creation. A key is created by a user
 * (never by another key), records who, and dies with that user's right to create keys.
 */
export async function apiKeyRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  app.get('/api-keys', async (request) => {
    requireRole(request, ...apiKeyManagers);
    return { data: await tenantry.apiKeys.list() };
  });

  app.post<{ Body: CreateApiKeyBody }>('/api-keys', { schema: { body: CreateApiKeyBody } }, async (request, reply) => {
    requireRole(request, ...apiKeyManagers);
    // An API key cannot create keys (403 insufficient_scope from apiKeys.create).
    const { name, role, scopes } = request.body;
    const { key, record } = await tenantry.apiKeys.create({ name, role: role ?? 'agent', scopes });
    return reply.status(201).send({ ...record, key });
  });

  app.delete<{ Params: IdParams }>('/api-keys/:id', { schema: { params: IdParams } }, async (request, reply) => {
    requireRole(request, ...apiKeyManagers);
    if (!(await tenantry.apiKeys.revoke(request.params.id))) throw new TenantryError('not_found');
    return reply.status(204).send();
  });
}
