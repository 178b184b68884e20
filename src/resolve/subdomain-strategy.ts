import type { TenantCatalog } from '../catalog/tenant-catalog.js';
import type { ResolutionRequest, TenantClaim, TenantStrategy } from './strategy.js';

/** `acme.example.com` → tenant `acme` when the base domain is `example.com`. */
export class SubdomainStrategy implements TenantStrategy {
  readonly name = 'subdomain';
  readonly #suffix: string;

  constructor(private readonly catalog: TenantCatalog, baseDomain: string) {
    this.#suffix = '.' + baseDomain.toLowerCase();
  }

  async resolve(req: ResolutionRequest): Promise<TenantClaim | null> {
    if (!req.host.endsWith(this.#suffix)) return null;
    const label = req.host.slice(0, -this.#suffix.length);
    if (!label || label.includes('.')) return null;
    return { source: this.name, kind: 'identify', named: label, tenant: await this.catalog.findBySlug(label) };
  }
}
