import type { Tenant } from '../catalog/types.js';
import type { Principal } from '../context/tenant-context.js';
import { TenantryError } from '../errors.js';
import type { ResolutionRequest, TenantClaim, TenantStrategy } from './strategy.js';

export interface Resolution {
  readonly tenant: Tenant;
  readonly principal: Principal | undefined;
  readonly sources: readonly string[];
}

/**
 * Runs every strategy of the chain, in order, and reconciles what they found. Sources that
 * disagree are an error, never a silent pick: two identifying sources naming different tenants
 * is a 400; a credential of another tenant than the one the request is for is a 403.
 * Returns null when no source named a tenant.
 */
export async function resolveTenant(req: ResolutionRequest, chain: readonly TenantStrategy[]): Promise<Resolution | null> {
  const claims: TenantClaim[] = [];
  for (const strategy of chain) {
    const claim = await strategy.resolve(req);
    if (claim) claims.push(claim);
  }
  const identified = claims.filter((c) => c.kind === 'identify');
  const credentials = claims.filter((c) => c.kind === 'credential');

  const keys = new Set(identified.map((c) => c.tenant?.id ?? `unknown:${c.named}`));
  if (keys.size > 1) {
    throw new TenantryError('tenant_ambiguous',
      `the request names different tenants: ${identified.map((c) => `${c.source}=${c.named}`).join(', ')}`);
  }
  const first = identified[0];
  if (first && !first.tenant) throw new TenantryError('tenant_not_found', `no tenant "${first.named}"`);
  let tenant = first?.tenant ?? null;

  const credentialIds = new Set(credentials.map((c) => c.named));
  if (credentialIds.size > 1) throw new TenantryError('tenant_mismatch', 'the credentials belong to different tenants');
  const credential = credentials[0];
  if (credential) {
    if (tenant && credential.named !== tenant.id) {
      throw new TenantryError('tenant_mismatch', `the ${credential.source} credential belongs to another tenant`);
    }
    if (!credential.tenant) throw new TenantryError(credential.source === 'jwt' ? 'invalid_token' : 'invalid_api_key', 'the credential names a tenant that no longer exists');
    tenant ??= credential.tenant;
  }
  if (!tenant) return null;
  if (tenant.status === 'suspended') throw new TenantryError('tenant_suspended', `tenant "${tenant.slug}" is suspended`);
  if (tenant.status !== 'active') throw new TenantryError('tenant_not_found', `no tenant "${tenant.slug}"`);
  return { tenant, principal: credential?.principal, sources: claims.map((c) => c.source) };
}
