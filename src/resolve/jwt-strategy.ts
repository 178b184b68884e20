import type { CatalogStore } from '../catalog/catalog-store.js';
import type { TokenService } from '../auth/token-service.js';
import { bearer, type ResolutionRequest, type TenantClaim, type TenantStrategy } from './strategy.js';

/** `Authorization: Bearer <JWT>`: the verified `tid` claim names the tenant, `sub` the user. */
export class JwtStrategy implements TenantStrategy {
  readonly name = 'jwt';

  constructor(private readonly catalog: CatalogStore, private readonly tokens: TokenService) {}

  async resolve(req: ResolutionRequest): Promise<TenantClaim | null> {
    const token = bearer(req);
    if (!token || token.startsWith('tk_')) return null;
    const claims = await this.tokens.verify(token);
    return {
      source: this.name,
      kind: 'credential',
      named: claims.tid,
      tenant: await this.catalog.findById(claims.tid),
      principal: { kind: 'user', id: claims.sub, role: claims.role, tenantId: claims.tid },
    };
  }
}
