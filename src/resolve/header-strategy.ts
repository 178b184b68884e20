import type { TenantCatalog } from '../catalog/tenant-catalog.js';
import { header, type ResolutionRequest, type TenantClaim, type TenantStrategy } from './strategy.js';

/** `X-Tenant: acme` or `X-Tenant: <tenant id>`. */
export class HeaderStrategy implements TenantStrategy {
  readonly name = 'header';

  constructor(private readonly catalog: TenantCatalog, private readonly headerName = 'x-tenant') {}

  async resolve(req: ResolutionRequest): Promise<TenantClaim | null> {
    const value = header(req, this.headerName)?.trim();
    if (!value) return null;
    return { source: this.name, kind: 'identify', named: value, tenant: await this.catalog.findBySlugOrId(value) };
  }
}
