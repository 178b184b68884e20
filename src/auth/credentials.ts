import { requireTenantScope } from '../context/tenant-context.js';
import type { CredentialRevocations } from './revocations.js';
import { isRole, type Role } from './roles.js';
import type { TokenService } from './token-service.js';

/** Who a login found: the user (the token's subject) and their role, as read from their row. */
export interface Authenticated {
  readonly sub: string;
  readonly role: Role;
}

export interface IssuedToken {
  readonly accessToken: string;
  /** Seconds the token is valid for. */
  readonly expiresIn: number;
}

/**
 * Issuing and revoking a tenant user's credentials, in the order that makes them race-free (the
 * argument is in revocations.ts). Both work in the current tenant scope.
 */
export class Credentials {
  readonly #tokens: TokenService;
  readonly #revocations: CredentialRevocations;

  constructor(tokens: TokenService, revocations: CredentialRevocations) {
    this.#tokens = tokens;
    this.#revocations = revocations;
  }

  /**
   * A login: reads the credential clock, then runs `authenticate`, then signs a token for whom it
   * returns (null: refused, and no token). `authenticate` must read the user row with
   * `SELECT … FOR SHARE` (so that it waits for a change in progress) and check the password
   * against that very row — e.g.
   *
   *     const [u] = await tenantry.db.query('select id, role, password_hash from users where email = $1 for share', [email]);
   *     return u && await verifyPassword(password, u.password_hash) ? { sub: u.id, role: u.role } : null;
   *
   * and the code that changes a user must lock the row `FOR UPDATE` before revoking (revoke()).
   */
  async issueToken(authenticate: () => Promise<Authenticated | null>): Promise<IssuedToken | null> {
    const { tenant } = requireTenantScope('issueToken()');
    const from = Date.now();
    // (a) before (b): the order the argument rests on.
    const cv = await this.#revocations.clock();
    const who = await authenticate();
    if (!who) return null;
    if (!isRole(who.role)) throw new TypeError(`"${who.role}" is not a registered role`);
    const accessToken = await this.#tokens.sign({ sub: who.sub, tid: tenant.id, role: who.role, cv }, from);
    return { accessToken, expiresIn: this.#tokens.ttlSeconds };
  }

  /**
   * Revokes the credentials of `subject` in the current tenant: every token minted from a reading
   * of their row before this call, and, with `apiKeys`, the API keys they created (when they are
   * deleted, or lose the right to create keys). Call it inside the tenant transaction that changes
   * the user, after locking their row `FOR UPDATE` and before writing it.
   */
  async revoke(subject: string, opts: { apiKeys?: boolean } = {}): Promise<void> {
    const { tenant } = requireTenantScope('revokeTokens()');
    await this.#revocations.revoke(tenant.id, subject, opts);
  }
}
