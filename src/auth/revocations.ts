import type { Queryable, Sql } from '../data/driver/index.js';
import { catalogCall } from '../catalog/catalog-call.js';

/**
 * Revoking a user's credentials — their tokens, and optionally the API keys they created — when
 * they are deleted or their role or password changes, in a way a concurrent login cannot race.
 *
 * The race: a login reads the user row, spends tens to hundreds of milliseconds in scrypt, then
 * signs. A change that commits meanwhile must still kill that token, although it is signed after
 * the change. Signing times cannot tell (the token is younger than the change), and the clocks of
 * two processes differ anyway. So the order is taken from the catalog and the user row's lock:
 *
 *   - the credential clock: a counter in the catalog (`tenantry.credential_clock`);
 *   - a change, inside the tenant transaction that makes it:
 *       (1) locks the user row (`SELECT … FOR UPDATE`),
 *       (2) revoke(): raises the clock to E and records "(tenant, subject) revoked before E",
 *           committed in the catalog,
 *       (3) writes the row and commits, which releases the lock;
 *   - a login (Credentials.issueToken):
 *       (a) reads the clock: G,
 *       (b) reads the user row `FOR SHARE`,
 *       (c) checks the password and signs a token carrying `cv: G`;
 *   - a token is refused when its `cv` is below its subject's "revoked before".
 *
 * Claim: a token that is accepted after the change was minted from the changed row (or a later
 * one). Accepted means G ≥ E, so (a) read the clock after (2) committed, and (2) came after (1):
 * (b) started while the row was locked or after (3). A `FOR SHARE` read waits for the holder of
 * the row lock and then returns the latest committed version: the changed row, or none after a
 * deletion. Conversely a login that read the replaced row read it before (1) took the lock, so
 * (a) came before (2): G < E, refused as soon as the verifying process knows E — at once in the
 * process that made the change (revoke() updates its memory before returning, before (3)), and on
 * the NOTIFY, or the next reload, in the others.
 *
 * A change that fails after (2) has only ended the sessions of a user that did not change: the
 * clock is read afresh at every login, so nobody is locked out. A login that read the clock just
 * before (2) and the row just after (3) gets a token that is refused: a user logging in at the very
 * moment of their own change logs in once more.
 *
 * Forgetting: a row is pruned one token lifetime (plus a minute) after its last revocation. A
 * token it refused read the clock before that revocation, and a token's lifetime counts from that
 * reading (TokenService.sign `from`), so it has expired by then.
 */
export class CredentialRevocations {
  readonly #sql: Sql;
  readonly #timeoutMs: number;
  /** How far back revocations matter: a token older than this has expired anyway. */
  readonly #horizonSeconds: number;
  /** key(tenant, subject) → revoked before (a credential clock value), and when this process learnt it. */
  #revokedBefore = new Map<string, { before: number; seenAt: number }>();

  constructor(sql: Sql, timeoutMs: number, horizonSeconds: number) {
    this.#sql = sql;
    this.#timeoutMs = timeoutMs;
    this.#horizonSeconds = horizonSeconds;
  }

  /** The credential clock now: step (a) of a login, taken before the user row is read. */
  async clock(): Promise<number> {
    const [row] = await catalogCall(this.#timeoutMs, () => this.#sql.query<{ value: string }>(
      'select value::text as value from tenantry.credential_clock'));
    return Number(row!.value);
  }

  /**
   * Step (2): from now on, refuses every token of `subject` in the tenant minted from a clock
   * reading taken before this call; with `apiKeys`, also revokes (durably) every API key the subject
   * created. The caller must hold the lock of the subject's row (step 1) in the transaction that
   * makes the change, and call this before writing it. Takes effect in this process before it
   * returns, in the others at their NOTIFY or next reload.
   */
  async revoke(tenantId: string, subject: string, opts: { apiKeys?: boolean } = {}): Promise<void> {
    const revokedBefore = await catalogCall(this.#timeoutMs, () => this.#sql.transaction(async (tx) => {
      await lockSubject(tx, tenantId, subject);
      const [row] = await tx.query<{ revoked_before: string }>(
        `with tick as (update tenantry.credential_clock set value = value + 1 returning value)
         insert into tenantry.credential_revocations (tenant_id, subject, revoked_before, revoked_at)
           select $1, $2, tick.value, now() from tick
         on conflict (tenant_id, subject) do update
           set revoked_before = greatest(credential_revocations.revoked_before, excluded.revoked_before), revoked_at = now()
         returning revoked_before::text`, [tenantId, subject]);
      if (opts.apiKeys) {
        await tx.query('update tenantry.api_keys set revoked_at = now() where tenant_id = $1 and created_by = $2 and revoked_at is null',
          [tenantId, subject]);
      }
      return Number(row!.revoked_before);
    }));
    this.#remember(key(tenantId, subject), revokedBefore, Date.now());
    // Rows older than a token lifetime revoke nothing any more (best effort, off the caller's path).
    void this.#sql.query('delete from tenantry.credential_revocations where revoked_at < now() - make_interval(secs => $1)',
      [this.#horizonSeconds]).catch(() => {});
  }

  /** Is a token of `subject` carrying clock reading `cv` revoked? In memory, no I/O. */
  isRevoked(tenantId: string, subject: string, cv: number): boolean {
    const entry = this.#revokedBefore.get(key(tenantId, subject));
    return entry !== undefined && cv < entry.before;
  }

  /** Reads the revocations that can still matter (on start, on NOTIFY, on reconnection, or polled). */
  async load(): Promise<void> {
    const rows = await catalogCall(this.#timeoutMs, () => this.#sql.query<{ tenant_id: string; subject: string; revoked_before: string }>(
      `select tenant_id::text, subject, revoked_before::text from tenantry.credential_revocations
        where revoked_at > now() - make_interval(secs => $1)`, [this.#horizonSeconds]));
    const now = Date.now();
    const previous = this.#revokedBefore;
    this.#revokedBefore = new Map();
    for (const r of rows) this.#remember(key(r.tenant_id, r.subject), Number(r.revoked_before), previous.get(key(r.tenant_id, r.subject))?.seenAt ?? now);
    // A revocation made here while the read was under way is not lost (values only grow); one
    // older than the horizon is forgotten here as it is in the catalog.
    for (const [k, v] of previous) if (v.seenAt > now - this.#horizonSeconds * 1000) this.#remember(k, v.before, v.seenAt);
  }

  #remember(k: string, before: number, seenAt: number): void {
    const known = this.#revokedBefore.get(k);
    if (!known || before > known.before) this.#revokedBefore.set(k, { before, seenAt });
  }
}

function key(tenantId: string, subject: string): string {
  return `${tenantId}/${subject}`;
}

/**
 * Serialises, per subject, a revocation with the creation of an API key by that subject (see
 * ApiKeys.create): whichever takes the lock second sees what the first committed. A
 * transaction-level advisory lock, so it is safe behind a transaction pooler.
 */
export async function lockSubject(tx: Queryable, tenantId: string, subject: string): Promise<void> {
  await tx.query("select pg_advisory_xact_lock(hashtext('tenantry.credentials:' || $1), hashtext($2))", [tenantId, subject]);
}

/** The subject's "revoked before" as the catalog has it now (0: never revoked), inside `tx`. */
export async function revokedBefore(tx: Queryable, tenantId: string, subject: string): Promise<number> {
  const [row] = await tx.query<{ revoked_before: string }>(
    'select revoked_before::text from tenantry.credential_revocations where tenant_id = $1 and subject = $2', [tenantId, subject]);
  return row ? Number(row.revoked_before) : 0;
}
