/**
 * Names of schemas, roles and databases derive from the tenant's UUID only — never from its slug
 * or any other user input — so they are always valid, unique and safe to interpolate.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function tenantHex(tenantId: string): string {
  if (!UUID.test(tenantId)) throw new TypeError(`not a tenant id: ${JSON.stringify(tenantId)}`);
  return tenantId.replace(/-/g, '');
}

/** Schema (and role) of a `schema` tenant: `t_<32 hex>`. */
export const tenantSchema = (tenantId: string) => `t_${tenantHex(tenantId)}`;
export const tenantRole = (tenantId: string) => `t_${tenantHex(tenantId)}`;
/** Database of a `database` tenant: `tenant_<32 hex>`. */
export const tenantDatabase = (tenantId: string) => `tenant_${tenantHex(tenantId)}`;
