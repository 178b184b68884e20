import { registerRoles } from '../src/index.js';

/**
 * The helpdesk's roles, from most to least powerful. The toolkit carries them (tokens, API keys,
 * the tenant context) and refuses any other; what each may do is decided here and in the routes.
 */
export const roles = ['owner', 'admin', 'agent'] as const;
export type Role = (typeof roles)[number];

declare module '../src/index.js' {
  interface RegisteredRoles extends Record<Role, true> {}
}

registerRoles(roles);

/** Who may manage users (and, for owners, other owners). */
export const userManagers: readonly Role[] = ['owner', 'admin'];

/** Who may create, list and revoke API keys; a user who loses this right loses the keys they created. */
export const apiKeyManagers: readonly Role[] = ['owner', 'admin'];

export function canManageApiKeys(role: string): boolean {
  return (apiKeyManagers as readonly string[]).includes(role);
}

/** Who may read the tenant's usage. */
export const usageReaders: readonly Role[] = ['owner', 'admin'];

/** Who may read the tenant's audit log and analytics. */
export const auditReaders: readonly Role[] = ['owner', 'admin'];
