import { isIP } from 'node:net';
import type { TenantCatalog } from '../catalog/tenant-catalog.js';
import type { ResolutionRequest, TenantClaim, TenantStrategy } from './strategy.js';

/** `support.acme.com` → the tenant that registered that domain. Hosts of the platform are not looked up. */
export class CustomDomainStrategy implements TenantStrategy {
  readonly name = 'domain';
  readonly #base: string;

  constructor(private readonly catalog: TenantCatalog, baseDomain: string) {
    this.#base = baseDomain.toLowerCase();
  }

  async resolve(req: ResolutionRequest): Promise<TenantClaim | null> {
    const host = req.host;
    if (!host || host === this.#base || host.endsWith('.' + this.#base) || isIP(host) || host === 'localhost' || host.startsWith('[')) {
      return null;
    }
    const tenant = await this.catalog.findByDomain(host);
    return tenant ? { source: this.name, kind: 'identify', named: host, tenant } : null;
  }
}
