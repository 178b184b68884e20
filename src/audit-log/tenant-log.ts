import { requireTenantScope } from '../context/tenant-context.js';
import type { DataPlane } from '../data/data-plane.js';
import { TenantryError } from '../errors.js';
import type { AuditLog } from './audit-log.js';
import { TENANT_LOG_TABLE } from './tenant-log-sql.js';
import { microsSql } from './chain.js';

/** One entry as a tenant's log shows it (snake_case, as the HTTP API returns it). */
export interface TenantLogEntry {
  /** `t:<seq>` for an entry of the tenant's own log, `p:<id>` for one of the platform log. */
  readonly id: string;
  /** Where it is kept: `tenant` (with the tenant's data) or `platform` (the catalog: tenant lifecycle, API keys). */
  readonly log: 'tenant' | 'platform';
  readonly seq: number | null;
  readonly at: string;
  readonly actor: { readonly type: string; readonly id: string | null };
  readonly action: string;
  readonly target: { readonly type: string; readonly id: string } | null;
  readonly request_id: string | null;
  readonly client_address: string | null;
  readonly detail: Record<string, unknown>;
}

/** A day of a tenant's activity. */
export interface ActivityDay {
  /** YYYY-MM-DD (UTC). */
  readonly date: string;
  /** Users with at least one entry that day (a login, a write). */
  readonly active_users: number;
  /** Entries per action. */
  readonly actions: Record<string, number>;
}

/** The position of an entry in the merged order: newest first by time, then log, then seq/id. */
type Key = readonly [atMicros: string, log: 0 | 1, n: number];

function encodeKey(key: Key): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeKey(cursor: string): Key {
  try {
    const k = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(k) && k.length === 3 && typeof k[0] === 'string' && /^-?\d{1,19}$/.test(k[0])
      && (k[1] === 0 || k[1] === 1) && Number.isSafeInteger(k[2])) return k as unknown as Key;
  } catch { /* below */ }
  throw new TenantryError('invalid_cursor');
}

const after = (a: Key, b: Key) => {
  const d = BigInt(a[0]) - BigInt(b[0]);
  if (d !== 0n) return d > 0n;
  return a[1] !== b[1] ? a[1] > b[1] : a[2] > b[2];
};

type TenantRow = {
  seq: string; at: string; at_us: string; actor_type: string; actor_id: string | null; action: string;
  target_type: string | null; target_id: string | null; request_id: string | null; client_address: string | null; detail: Record<string, unknown>;
};


/**
 * The current tenant's audit trail: its own log (in its placement, written by `tx.audit` in the
 * transaction of each change) merged with the platform log's entries about it (in the catalog,
 * written in the transaction of each catalog change: lifecycle steps, API keys) — each entry lives
 * in the database of the change it describes. Reading needs a tenant scope; which principals may
 * read is the application's to decide.
 */
export class TenantAuditLog {
  readonly #db: DataPlane;
  readonly #platform: AuditLog;

  constructor(db: DataPlane, platform: AuditLog) {
    this.#db = db;
    this.#platform = platform;
  }

  /** A page of entries, newest first; `cursor` is the previous page's `next_cursor`. */
  async page(opts: { limit: number; cursor?: string }): Promise<{ data: TenantLogEntry[]; next_cursor: string | null }> {
    const { tenant } = requireTenantScope('reading the audit log');
    const before = opts.cursor === undefined ? undefined : decodeKey(opts.cursor);
    // ORDER BY names l.at and l.seq: the output columns of those names are text.
    const [own, platform] = await Promise.all([
      this.#db.query<TenantRow>(
        `select seq::text, to_json(at) #>> '{}' as at, ${microsSql('l.at')}::text as at_us, actor_type, actor_id, action,
                target_type, target_id, request_id, client_address, detail
           from ${TENANT_LOG_TABLE} l
          where $1::bigint is null
             or (l.at <= 'epoch'::timestamptz + $1::bigint * interval '1 microsecond'
                 and (${microsSql('l.at')}, 0, l.seq) < ($1::bigint, $2::int, $3::bigint))
          order by l.at desc, l.seq desc limit $4`,
        [before?.[0] ?? null, before?.[1] ?? null, before?.[2] ?? null, opts.limit + 1]),
      // (at, 1, id) < (a, l, n) is (at, id) < (a, n) when l = 1, and at < a when l = 0: id -1.
      this.#platform.tenantPage(tenant.id, opts.limit + 1, before && { atMicros: before[0], id: before[1] === 1 ? before[2] : -1 }),
    ]);
    const merged: { key: Key; entry: TenantLogEntry }[] = [
      ...own.map((r) => ({
        key: [r.at_us, 0, Number(r.seq)] as Key,
        entry: {
          id: `t:${r.seq}`, log: 'tenant' as const, seq: Number(r.seq), at: new Date(r.at).toISOString(),
          actor: { type: r.actor_type, id: r.actor_id }, action: r.action,
          target: r.target_type && r.target_id ? { type: r.target_type, id: r.target_id } : null,
          request_id: r.request_id, client_address: r.client_address, detail: r.detail,
        },
      })),
      ...platform.map((e) => ({
        key: [e.atMicros, 1, e.id] as Key,
        entry: {
          id: `p:${e.id}`, log: 'platform' as const, seq: e.seq, at: e.at, actor: { type: e.actorType, id: e.actor || null },
          action: e.action, target: e.target, request_id: e.requestId, client_address: e.clientAddress, detail: e.detail,
        },
      })),
    ].sort((a, b) => (after(a.key, b.key) ? -1 : 1));
    const data = merged.slice(0, opts.limit);
    const last = data[data.length - 1];
    return { data: data.map((d) => d.entry), next_cursor: merged.length > opts.limit && last ? encodeKey(last.key) : null };
  }

  /**
   * The tenant's activity of the last `days` days (UTC, today included), from the durable logs:
   * active users per day (users with an entry in the tenant's log that day: a login, a write) and
   * entries per action per day (both logs). Days without any are listed with zeros.
   */
  async activity(days: number): Promise<ActivityDay[]> {
    const { tenant } = requireTenantScope('reading the activity');
    const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
    const since = new Date(today - (days - 1) * 86_400_000);
    const day = `to_char(date_trunc('day', at at time zone 'UTC'), 'YYYY-MM-DD')`;
    const [actions, users, platform] = await Promise.all([
      this.#db.query<{ day: string; action: string; n: number }>(
        `select ${day} as day, action, count(*)::int as n from ${TENANT_LOG_TABLE} where at >= $1 group by 1, 2`, [since]),
      this.#db.query<{ day: string; n: number }>(
        `select ${day} as day, count(distinct actor_id)::int as n from ${TENANT_LOG_TABLE}
          where at >= $1 and actor_type = 'user' group by 1`, [since]),
      this.#platform.tenantActions(tenant.id, since),
    ]);
    const out = new Map<string, { date: string; active_users: number; actions: Record<string, number> }>();
    for (let i = 0; i < days; i++) {
      const date = new Date(since.getTime() + i * 86_400_000).toISOString().slice(0, 10);
      out.set(date, { date, active_users: 0, actions: {} });
    }
    for (const r of [...actions, ...platform]) {
      const d = out.get(r.day);
      if (d) d.actions[r.action] = (d.actions[r.action] ?? 0) + r.n;
    }
    for (const r of users) {
      const d = out.get(r.day);
      if (d) d.active_users = r.n;
    }
    return [...out.values()];
  }
}
