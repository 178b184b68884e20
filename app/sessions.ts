import { LRUCache } from 'lru-cache';
import { runWithTenant, TenantryError, type Principal, type Tenant, type Tenantry } from '../src/index.js';

type Role = Principal['role'];

/**
 * A user's JWT is only as good as the user: a signed token of a user who has been deleted stops
 * working, and a role changed since the token was issued is the role that counts. Each user is
 * looked up in the tenant's `users` table (inside the tenant's context, like any read) and the
 * answer is kept `ttlMs` per process; the process that deletes or changes a user forgets it at
 * once, the others within `ttlMs`.
 */
export class UserSessions {
  readonly #cache: LRUCache<string, { role: Role | null }>;

  constructor(private readonly tenantry: Tenantry, ttlMs = 5_000, max = 50_000) {
    this.#cache = new LRUCache({ max, ttl: ttlMs });
  }

  /**
   * The principal as the users table has it now; 401 invalid_token if the user is gone. Answers
   * synchronously (no promise) when the user is cached, which is almost every request.
   */
  check(tenant: Tenant, principal: Principal): Principal | Promise<Principal> {
    if (principal.kind !== 'user') return principal;
    const key = `${tenant.id}/${principal.id}`;
    const entry = this.#cache.get(key);
    if (entry) return applied(principal, entry.role);
    return runWithTenant(tenant, () => this.tenantry.db.query<{ role: Role }>('select role from users where id = $1', [principal.id]))
      .then(([row]) => {
        const role = row?.role ?? null;
        this.#cache.set(key, { role });
        return applied(principal, role);
      });
  }

  /** After a user is changed or deleted in this process. */
  forget(tenantId: string, userId: string): void {
    this.#cache.delete(`${tenantId}/${userId}`);
  }
}

function applied(principal: Principal, role: Role | null): Principal {
  if (!role) throw new TenantryError('invalid_token', 'the user of this token no longer exists');
  return role === principal.role ? principal : { ...principal, role };
}
