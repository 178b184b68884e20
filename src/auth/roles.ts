/**
 * Roles belong to the application: the toolkit carries a principal's role (in its token, on its
 * API key, in the tenant context) and checks it against the roles the application registered,
 * but gives no role a meaning of its own.
 */

/**
 * The roles an application registers with registerRoles(). Declared here too (module
 * augmentation), they type every role the toolkit hands out or takes:
 *
 *     declare module 'tenantry' { interface RegisteredRoles { manager: true; viewer: true } }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface RegisteredRoles {}

/** A role: one the application declared, or any string while it declares none. */
export type Role = [keyof RegisteredRoles] extends [never] ? string : keyof RegisteredRoles & string;

/** What a role name looks like (it travels in tokens and is stored with API keys). */
export const ROLE_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

const registered = new Set<string>();

/**
 * Registers the application's roles. From then on a token or API key whose role is not one of
 * them is refused; registering again adds to the set. Until a first registration, any name of the
 * role pattern is accepted (a toolkit used without an application's roles).
 */
export function registerRoles(roles: readonly string[]): void {
  for (const role of roles) {
    if (!ROLE_PATTERN.test(role)) throw new TypeError(`role "${role}" must match ${ROLE_PATTERN}`);
    registered.add(role);
  }
}

/** Is `value` a role this process accepts (see registerRoles)? */
export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && ROLE_PATTERN.test(value) && (registered.size === 0 || registered.has(value));
}

/** The registered roles, in registration order. */
export function registeredRoles(): readonly string[] {
  return [...registered];
}
