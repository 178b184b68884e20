import type { FastifyInstance } from 'fastify';
import { TenantryError, currentTenant, verifyPassword, type Tenantry } from '../../src/index.js';
import { TokenBody } from '../schemas.js';

/** POST /auth/token: email and password of a user of the request's tenant → access token. */
export async function authRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  app.post<{ Body: TokenBody }>('/auth/token', { schema: { body: TokenBody }, config: { auth: false } }, async (request) => {
    const email = request.body.email.toLowerCase();
    const [user] = await tenantry.db.query<{ id: string; role: 'owner' | 'admin' | 'agent'; password_hash: string }>(
      'select id, role, password_hash from users where email = $1', [email]);
    // Unknown email and wrong password cost the same scrypt work and answer the same.
    const ok = await verifyPassword(request.body.password, user?.password_hash ?? null);
    if (!ok || !user) throw new TenantryError('invalid_credentials');
    const accessToken = await tenantry.tokens.sign({ sub: user.id, tid: currentTenant().id, role: user.role });
    return { access_token: accessToken, token_type: 'Bearer', expires_in: tenantry.tokens.ttlSeconds };
  });
}
