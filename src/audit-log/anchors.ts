import type { Sql } from '../data/driver/index.js';
import { catalogCall } from '../catalog/catalog-call.js';

/** How often the newest heads are written to the catalog, ms. */
export const ANCHOR_INTERVAL_MS = 5_000;

/**
 * Anchors of the tenant audit chains: every append returns the entry's (seq, hash); the newest
 * per tenant is kept here and written to the catalog (`tenantry.audit_anchors`) every few seconds
 * and on close — a row per tenant, only ever moved forward (two instances: the larger seq wins).
 * `tenantry audit verify` then requires the chain to still hold that entry with that hash. What a
 * crash loses is at most one interval of anchoring, never an entry.
 */
export class AuditAnchors {
  readonly #sql: Sql;
  readonly #timeoutMs: number;
  readonly #pending = new Map<string, { seq: number; hash: string }>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(sql: Sql, timeoutMs = 2_000) {
    this.#sql = sql;
    this.#timeoutMs = timeoutMs;
  }

  /** An append of `tenantId`'s chain committed as (seq, hash). */
  note(tenantId: string, seq: number, hash: string): void {
    const known = this.#pending.get(tenantId);
    if (!known || seq > known.seq) this.#pending.set(tenantId, { seq, hash });
  }

  start(intervalMs = ANCHOR_INTERVAL_MS): void {
    this.#timer ??= setInterval(() => { void this.flush().catch(() => {}); }, intervalMs);
    this.#timer.unref();
  }

  /** Writes the pending heads (a failed write keeps them for the next flush). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.catch(() => {}).then(async () => {
      if (!this.#pending.size) return;
      const batch = [...this.#pending];
      this.#pending.clear();
      try {
        await catalogCall(this.#timeoutMs, () => this.#sql.query(
          `insert into tenantry.audit_anchors (tenant_id, seq, hash)
             select * from unnest($1::uuid[], $2::bigint[], $3::text[])
           on conflict (tenant_id) do update set seq = excluded.seq, hash = excluded.hash, anchored_at = now()
             where excluded.seq > tenantry.audit_anchors.seq`,
          [batch.map(([t]) => t), batch.map(([, h]) => h.seq), batch.map(([, h]) => h.hash)]));
      } catch (err) {
        for (const [t, h] of batch) this.note(t, h.seq, h.hash);
        throw err;
      }
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush().catch(() => {});
  }
}
