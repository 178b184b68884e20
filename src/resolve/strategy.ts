import type { Tenant } from '../catalog/types.js';
import type { Principal } from '../context/tenant-context.js';

/** What a strategy sees of a request: nothing framework-specific. */
export interface ResolutionRequest {
  /** Host header without the port, lower-cased. */
  readonly host: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * A strategy's finding. `identify` sources (host, domain, header) say which tenant the request is
 * for; `credential` sources (JWT, API key) also say who is asking and belong to one tenant.
 */
export interface TenantClaim {
  readonly source: string;
  readonly kind: 'identify' | 'credential';
  /** What the request named (slug, id, host), for error messages. */
  readonly named: string;
  /** The tenant, or null when the request named a tenant that does not exist. */
  readonly tenant: Tenant | null;
  readonly principal?: Principal;
}

/**
 * One way to identify a tenant. Returns null when the request carries nothing for this strategy
 * ("not mine"); throws for a broken credential or an unreachable catalog.
 */
export interface TenantStrategy {
  readonly name: string;
  resolve(req: ResolutionRequest): Promise<TenantClaim | null>;
}

export function header(req: ResolutionRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The bearer token of the Authorization header, if any. */
export function bearer(req: ResolutionRequest): string | undefined {
  const auth = header(req, 'authorization');
  const m = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  return m?.[1];
}
