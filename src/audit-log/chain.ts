/**
 * The hash chain of the audit logs (the tenant logs in each placement and the platform log in the
 * catalog), in SQL: an entry's hash is sha256(previous hash ‖ canonical payload), the payload
 * being a jsonb array of the entry's fields — jsonb's text form is canonical (keys sorted, one
 * spelling per value), so the writer and `tenantry audit verify` compute the same bytes. The
 * first entry of a chain has seq 1 and the empty string as its previous hash.
 *
 * Appends are serialized per chain by a transaction-level advisory lock taken in a statement of
 * its own before the insert: under READ COMMITTED each statement reads a new snapshot, so the
 * insert, which runs once the lock is held, sees the head the previous holder committed. The lock
 * lives until COMMIT, so the chain has one order, the order of commits.
 */

/** Column expressions (or placeholders) of an entry's fields, in the payload's order. */
export interface PayloadColumns {
  readonly seq: string;
  readonly at: string;
  readonly actorType: string;
  readonly actorId: string;
  readonly action: string;
  readonly targetType: string;
  readonly targetId: string;
  readonly requestId: string;
  readonly clientAddress: string;
  readonly detail: string;
}

/** A timestamptz as integer microseconds since the epoch (bigint): exact, and independent of TimeZone. */
export const microsSql = (at: string) => `floor(extract(epoch from ${at}) * 1000000)::bigint`;

/** The canonical text an entry's hash covers: its time as integer microseconds, never a zoned string. */
export function payloadSql(c: PayloadColumns): string {
  return `jsonb_build_array(${c.seq}, ${microsSql(c.at)}, ${c.actorType}, ${c.actorId}, `
    + `${c.action}, ${c.targetType}, ${c.targetId}, ${c.requestId}, ${c.clientAddress}, ${c.detail})::text`;
}

/** sha256(prev ‖ payload), hex. */
export function hashSql(prev: string, payload: string): string {
  return `encode(sha256(convert_to(${prev} || ${payload}, 'UTF8')), 'hex')`;
}

/** The columns of a stored entry (both logs name them alike). */
export const storedColumns: PayloadColumns = {
  seq: 'seq', at: 'at', actorType: 'actor_type', actorId: 'actor_id', action: 'action', targetType: 'target_type',
  targetId: 'target_id', requestId: 'request_id', clientAddress: 'client_address', detail: 'detail',
};

/**
 * The insert of one entry into `table`: the next seq and the hash from the chain's head — read by
 * `head` (a WHERE and ORDER BY over alias `l` that find the chain's newest entry), under the
 * chain's lock — and the time from clock_timestamp() (taken under the lock: in the chain's order).
 * Parameters from `$first`: actor type, actor id, action, target type, target id, request id,
 * client address (text), detail (jsonb). `tenant` is the tenant_id written; `actorIdColumn` names
 * the table's column of the actor's id. Returns the entry's seq (text) and hash.
 */
export function appendSql(o: {
  readonly table: string;
  readonly tenant: string;
  readonly actorIdColumn: string;
  readonly first: number;
  readonly head: { readonly where: string; readonly orderBy: string };
}): string {
  const p = (i: number) => `$${o.first + i}::text`;
  const detail = `$${o.first + 7}::jsonb`;
  const payload = payloadSql({
    seq: 'c.seq', at: 'c.at', actorType: p(0), actorId: p(1), action: p(2), targetType: p(3), targetId: p(4),
    requestId: p(5), clientAddress: p(6), detail,
  });
  return `insert into ${o.table}
      (tenant_id, seq, at, actor_type, ${o.actorIdColumn}, action, target_type, target_id, request_id, client_address, detail, hash)
    select ${o.tenant}, c.seq, c.at, ${[0, 1, 2, 3, 4, 5, 6].map(p).join(', ')}, ${detail}, ${hashSql('c.prev', payload)}
    from (select coalesce(h.seq, 0) + 1 as seq, coalesce(h.hash, '') as prev, clock_timestamp() as at
          from (select 1) one left join lateral (
            select l.seq, l.hash from ${o.table} l where ${o.head.where} order by ${o.head.orderBy} limit 1) h on true) c
    returning seq::text, hash`;
}

/**
 * The advisory lock of one chain of a log (`log`: 'tenant' or 'platform'; the parameter: the
 * tenant id, or '' for the platform's own entries).
 */
export const chainLockSql = (log: 'tenant' | 'platform') =>
  `select pg_advisory_xact_lock(hashtext('tenantry.audit.${log}'), hashtext($1::text))`;

/** What verifying a chain found. */
export interface ChainReport {
  /** Entries in the chain. */
  readonly entries: number;
  /** The last entry's seq and hash (null for an empty chain). */
  readonly head: { readonly seq: number; readonly hash: string } | null;
  /** The first entry whose hash or position does not follow from the one before (null: intact). */
  readonly firstBroken: number | null;
}

/**
 * Verification of the chain of the rows `from` selects (a FROM clause with its WHERE, e.g.
 * `tenantry_audit_log where tenant_id = $1`): each hash recomputed from the stored previous hash
 * and the entry's fields, each seq one more than the previous (the first 1). An edited entry breaks
 * at itself, a re-hashed one at the next, a removed one leaves a gap. Removing the newest entries
 * leaves a shorter intact chain: the report's head is what to keep elsewhere to catch that.
 */
export function verifySql(from: string, columns: PayloadColumns = storedColumns): string {
  return `with e as (
      select seq, hash, lag(seq) over w as prev_seq,
        ${hashSql("coalesce(lag(hash) over w, '')", payloadSql(columns))} as expected
      from ${from} window w as (order by seq))
    select count(*)::int as entries,
      (select seq from e order by seq desc limit 1) as head_seq,
      (select hash from e order by seq desc limit 1) as head_hash,
      min(seq) filter (where hash is distinct from expected or seq <> coalesce(prev_seq, 0) + 1) as first_broken
    from e`;
}

export function chainReport(row: { entries: number; head_seq: string | number | null; head_hash: string | null; first_broken: string | number | null } | undefined): ChainReport {
  return {
    entries: row?.entries ?? 0,
    head: row?.head_seq != null ? { seq: Number(row.head_seq), hash: row.head_hash ?? '' } : null,
    firstBroken: row?.first_broken != null ? Number(row.first_broken) : null,
  };
}
