import type { ApiKeys } from '../auth/api-keys.js';
import type { TenantCatalog } from '../catalog/tenant-catalog.js';
import { TenantryError } from '../errors.js';
import { bearer, header, type ResolutionRequest, type TenantClaim, type TenantStrategy } from './strategy.js';

/** `X-Api-Key: tk_…` or `Authorization: Bearer tk_…`: a key belongs to exactly one tenant. */
export class ApiKeyStrategy implements TenantStrategy {
  readonly name = 'apikey';

  constructor(private readonly catalog: TenantCatalog, private readonly keys: Pick<ApiKeys, 'verify'>) {}

  async resolve(req: ResolutionRequest): Promise<TenantClaim | null> {
    const fromBearer = bearer(req);
    const key = header(req, 'x-api-key') ?? (fromBearer?.startsWith('tk_') ? fromBearer : undefined);
    if (!key) return null;
    const record = await this.keys.verify(key.trim());
    if (!record) throw new TenantryError('invalid_api_key');
    return {
      source: this.name,
      kind: 'credential',
      named: record.tenantId,
      tenant: await this.catalog.findById(record.tenantId),
      principal: { kind: 'api_key', id: record.id, role: record.role, tenantId: record.tenantId, scopes: record.scopes },
    };
  }
}
