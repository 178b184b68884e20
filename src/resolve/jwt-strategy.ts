import type { CredentialRevocations } from '../auth/revocations.js';
import type { TokenService } from '../auth/token-service.js';
import type { TenantCatalog } from '../catalog/tenant-catalog.js';
import { TenantryError } from '../errors.js';
import { bearer, type ResolutionRequest, type TenantClaim, type TenantStrategy } from './strategy.js';

/**
 * `Authorization: Bearer <JWT>`: the verified `tid` claim names the tenant, `sub` the user. A token
 * revoked since it was minted (CredentialRevocations) is refused like a forged one.
 */
export class JwtStrategy implements TenantStrategy {
  readonly name = 'jwt';

  constructor(
    private readonly catalog: TenantCatalog,
    private readonly tokens: TokenService,
    private readonly revocations: Pick<CredentialRevocations, 'isRevoked'>,
  ) {}

  async resolve(req: ResolutionRequest): Promise<TenantClaim | null> {
    const token = bearer(req);
    if (!token || token.startsWith('tk_')) return null;
    const claims = await this.tokens.verify(token);
    if (this.revocations.isRevoked(claims.tid, claims.sub, claims.cv)) throw new TenantryError('invalid_token', 'the token has been revoked');
    return {
      source: this.name,
      kind: 'credential',
      named: claims.tid,
      tenant: await this.catalog.findById(claims.tid),
      principal: { kind: 'user', id: claims.sub, role: claims.role, tenantId: claims.tid, credentialVersion: claims.cv },
    };
  }
}
