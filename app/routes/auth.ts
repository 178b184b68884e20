import type { FastifyInstance } from 'fastify';
import { TenantryError, currentTenant, type Tenantry } from '../../src/index.js';
import '../errors.js';
import type { Role } from '../roles.js';
import { TokenBody } from '../schemas.js';

/**
 * POST /auth/token: email and password of a user of the request's tenant → access token.
 * Throttled per account and per client address (`request.ip`: X-Forwarded-For only from trusted
 * proxies): 429 too_many_attempts, with Retry-After, before any password is checked.
 */
export async function authRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  app.post<{ Body: TokenBody }>('/auth/token', { schema: { body: TokenBody }, config: { auth: false } }, async (request) => {
    const email = request.body.email.toLowerCase();
    const attempt = { tenantId: currentTenant().id, email, address: request.ip };
    // issueToken reads the credential clock first; the row is then read FOR SHARE, so a change of
    // this user in progress (which holds the row FOR UPDATE) is waited for, and the password is
    // checked against the row the token is minted from (see src/auth/revocations.ts).
    let userId: string | undefined;
    const issued = await tenantry.loginThrottle.guard(attempt, () => tenantry.credentials.issueToken(async () => {
      const [user] = await tenantry.db.query<{ id: string; role: Role; password_hash: string }>(
        'select id, role, password_hash from users where email = $1 for share', [email]);
      // Unknown email and wrong password cost the same scrypt work and answer the same.
      // Hashing is shared fairly by tenants: a flood at another tenant does not stall this one.
      const ok = await tenantry.passwords.verify(request.body.password, user?.password_hash ?? null);
      if (!ok || !user) return null;
      userId = user.id;
      return { sub: user.id, role: user.role };
    }));
    // Both outcomes are recorded in the tenant's audit log (a throttled attempt, refused before any
    // password is checked, is not).
    if (!issued) {
      await tenantry.db.record({ action: 'auth.login_failed', detail: { email } });
      throw new TenantryError('invalid_credentials');
    }
    await tenantry.db.record({ action: 'auth.login_succeeded', actor: { type: 'user', id: userId! }, target: { type: 'user', id: userId! } });
    return { access_token: issued.accessToken, token_type: 'Bearer', expires_in: issued.expiresIn };
  });
}
