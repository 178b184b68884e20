import { catalogCall } from '../catalog/catalog-call.js';
import type { Sql } from '../data/driver/index.js';
import { TenantryError } from '../errors.js';
import { HOUR_MS, type UsageDelta } from './usage-meter.js';

/** The periods usage is reported by. */
export type UsageGranularity = 'hour' | 'day';

/** A range of usage to read: periods overlapping [from, to). */
export interface UsageRange {
  readonly from: Date;
  readonly to: Date;
  readonly granularity: UsageGranularity;
}

/** One period of one tenant's usage, as stored. */
export interface UsageRecord {
  readonly tenantId: string;
  /** Start of the hour or UTC day, ISO 8601 (UTC). */
  readonly periodStart: string;
  readonly apiCalls: number;
  readonly dbTimeMs: number;
  readonly egressBytes: number;
  /** The largest sample of the period (an hour's, or the largest hour's of a day); null: none taken. */
  readonly storageBytes: number | null;
}

/** The longest range one read may cover. */
export const MAX_USAGE_RANGE_DAYS = 366;
/** The range read when none is given: the last 24 hours. */
const DEFAULT_RANGE_MS = 24 * HOUR_MS;
/** `2025-01-31`, `2025-01-31T10:00Z`, `2025-01-31T10:00:00.123+02:00`: a date (UTC midnight) or a timestamp with its offset. */
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

function bad(field: string, message: string): never {
  throw new TenantryError('validation_failed', `${field} ${message}`, { errors: [{ path: `/${field}`, message }] });
}

function timestamp(field: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  if (!ISO_TIMESTAMP.test(value)) bad(field, 'must be an ISO 8601 date or timestamp with its offset (e.g. 2025-01-31T00:00:00Z)');
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) bad(field, 'is not a valid date');
  return d;
}

/**
 * The range of a usage read from its query parameters (text, as received): `from` and `to` are ISO
 * 8601 timestamps (with `Z` or an offset) or dates (UTC midnight); `to` defaults to now, `from` to
 * 24 hours before `to`; `from` must be before `to`, at most 366 days apart; `granularity` is `hour`
 * (default) or `day`. Bad input: 400 validation_failed naming the parameter.
 */
export function parseUsageRange(input: { from?: string; to?: string; granularity?: string }, now = Date.now()): UsageRange {
  const granularity = input.granularity ?? 'hour';
  if (granularity !== 'hour' && granularity !== 'day') bad('granularity', 'must be hour or day');
  const to = timestamp('to', input.to) ?? new Date(now);
  const from = timestamp('from', input.from) ?? new Date(to.getTime() - DEFAULT_RANGE_MS);
  if (from.getTime() >= to.getTime()) bad('from', 'must be before to');
  if (to.getTime() - from.getTime() > MAX_USAGE_RANGE_DAYS * 24 * HOUR_MS) bad('to', `must be at most ${MAX_USAGE_RANGE_DAYS} days after from`);
  return { from, to, granularity };
}

interface UsageRow { tenant_id: string; period: string; api_calls: string; db_time_ms: string; egress_bytes: string; storage_bytes: string | null }

/**
 * Usage in the catalog (tables `tenantry.usage` and `tenantry.usage_flushes`, migration 0006),
 * written and read through the platform role.
 *
 * A write is idempotent by its batch id: ONE statement inserts the id into `usage_flushes` and,
 * only if that insert did insert, adds every delta to its tenant-hour row (an upsert over
 * unnest()ed arrays: one round trip whatever the number of tenants). A batch written twice — a
 * retry after an answer that was lost although the commit happened — adds nothing the second
 * time; a batch whose statement failed added nothing and may be retried with the same id.
 */
export class UsageStore {
  readonly #sql: Sql;
  readonly #timeoutMs: number;

  constructor(sql: Sql, timeoutMs = 2_000) {
    this.#sql = sql;
    this.#timeoutMs = timeoutMs;
  }

  /** Adds a batch's deltas; false when the batch had been written already (nothing was added). */
  async write(batchId: string, deltas: readonly UsageDelta[]): Promise<boolean> {
    const [r] = await catalogCall(this.#timeoutMs, () => this.#sql.query<{ applied: number }>(
      `with batch as (
         insert into tenantry.usage_flushes (id) values ($1) on conflict (id) do nothing returning id
       ), upsert as (
         insert into tenantry.usage as u (tenant_id, period_start, api_calls, db_time_ms, egress_bytes, storage_bytes)
         select d.tenant_id, to_timestamp(d.hour * 3600), d.api_calls, d.db_time_ms, d.egress_bytes, d.storage_bytes
           from unnest($2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
                as d(tenant_id, hour, api_calls, db_time_ms, egress_bytes, storage_bytes)
          where exists (select 1 from batch)
          -- One lock order for every writer: two instances' batches cannot deadlock.
          order by d.tenant_id, d.hour
         on conflict (tenant_id, period_start) do update set
           api_calls = u.api_calls + excluded.api_calls,
           db_time_ms = u.db_time_ms + excluded.db_time_ms,
           egress_bytes = u.egress_bytes + excluded.egress_bytes,
           storage_bytes = greatest(u.storage_bytes, excluded.storage_bytes),
           updated_at = now()
         returning 1
       )
       select (select count(*) from batch)::int as applied, (select count(*) from upsert)::int as rows`,
      [batchId, deltas.map((d) => d.tenantId), deltas.map((d) => d.hour), deltas.map((d) => d.apiCalls),
        deltas.map((d) => d.dbTimeMs), deltas.map((d) => d.egressBytes), deltas.map((d) => d.storageBytes)]));
    return (r?.applied ?? 0) > 0;
  }

  /**
   * Usage of one tenant (or of every tenant: `tenantId` null) in periods overlapping the range,
   * ordered by period, then tenant. A day sums its hours' counters and takes their largest
   * storage_bytes. Callers check the scope (see Usage).
   */
  async read(tenantId: string | null, range: UsageRange): Promise<UsageRecord[]> {
    const rows = await catalogCall(this.#timeoutMs, () => this.#sql.query<UsageRow>(
      `select tenant_id::text, extract(epoch from date_trunc($4, period_start, 'UTC'))::bigint::text as period,
              sum(api_calls)::text as api_calls, sum(db_time_ms)::text as db_time_ms,
              sum(egress_bytes)::text as egress_bytes, max(storage_bytes)::text as storage_bytes
         from tenantry.usage
        where ($1::uuid is null or tenant_id = $1::uuid)
          and period_start > $2::timestamptz - interval '1 hour' and period_start < $3::timestamptz
        group by 1, 2 order by 2, 1`,
      [tenantId, range.from.toISOString(), range.to.toISOString(), range.granularity]));
    return rows.map((r) => ({
      tenantId: r.tenant_id,
      periodStart: new Date(Number(r.period) * 1000).toISOString(),
      apiCalls: Number(r.api_calls),
      dbTimeMs: Number(r.db_time_ms),
      egressBytes: Number(r.egress_bytes),
      storageBytes: r.storage_bytes === null ? null : Number(r.storage_bytes),
    }));
  }

  /** Forgets batch ids older than `olderThanMs` (their retries are long over); returns how many. */
  async prune(olderThanMs: number): Promise<number> {
    const rows = await catalogCall(this.#timeoutMs, () => this.#sql.query(
      `delete from tenantry.usage_flushes where at < now() - make_interval(secs => $1::float8 / 1000) returning 1`, [olderThanMs]));
    return rows.length;
  }
}
