/**
 * Prometheus metrics of a tenantry process (docs/metrics.md), in a prom-client Registry of their
 * own (never the global one): HTTP requests and their durations, data-plane transactions and
 * refusals by admission control per tenant and plan, tenants by status, placement and plan, the
 * pools, the database-tenant connection budget and the catalog cache.
 *
 * Per-tenant series are bounded: at most `tenantLabels` tenants have a `tenant` label value of
 * their own (TenantLabels: the most active lately), every other tenant is counted under
 * `tenant="other"`, so totals stay exact. The counts are kept here, per label set, and the
 * exposition is built from them at scrape time:
 *
 * - a tenant that gets its own label starts its own series at zero (what it did before stays in
 *   "other");
 * - a tenant that loses its label has its values added into "other" (of its plan) and its
 *   series removed.
 *
 * So every series only grows while it exists, "other" never goes down, and the sum over all
 * `tenant` values is at every scrape exactly what was counted. Requests without a tenant (the
 * platform's routes, health checks, unknown routes, requests refused before their tenant was
 * known) have `tenant=""` and `plan=""`.
 *
 * Recording a request costs a few Map lookups and number increments (no label objects, no
 * strings built): the cells are nested maps route → method → status (series.ts).
 *
 * Data-plane transactions, refusals and catalog lookups come from the diagnostics channels
 * (src/core/events.ts); requests from the observability plugin's onResponse hook.
 */
import { Gauge, Registry } from 'prom-client';
import type { Tenant } from '../catalog/types.js';
import { peekTenant } from '../context/tenant-context.js';
import { channels, subscribe, type CatalogLookupEvent, type RequestLimitedEvent, type TransactionEvent } from '../core/events.js';
import type { TenantryPoolStats } from '../tenantry.js';
import { histogramOf, histogramValues, ScrapedMetric, Series, TRANSACTION_BUCKETS, type MetricValue } from './series.js';
import { OTHER, TenantLabels } from './tenant-labels.js';

/** What the metrics read of a started toolkit. */
export interface MetricsSource {
  poolStats(): TenantryPoolStats;
  readonly catalog: { counts(): Promise<{ status: string; isolation: string; plan: string; count: number }[]> };
}

export interface TenantryMetricsOptions {
  readonly source: MetricsSource;
  /** Tenants with a label value of their own, at most (TENANTRY_METRICS_TENANT_LABELS). */
  readonly tenantLabels: number;
  /** How often the labelled tenants are re-ranked, milliseconds (default 5000). */
  readonly rerankMs?: number;
  /** Half-life of a tenant's activity score, milliseconds (default 60000). */
  readonly halfLifeMs?: number;
  /** How long the tenant counts read from the catalog are reused, milliseconds (default 30000). */
  readonly tenantCountsTtlMs?: number;
}

/** The metrics of one process. `close()` stops the subscriptions and the re-rank timer. */
export class TenantryMetrics {
  readonly registry = new Registry();
  readonly labels: TenantLabels;
  readonly #source: MetricsSource;
  /** Series of tenants with a label of their own, by tenant id. */
  readonly #own = new Map<string, Series>();
  /** "other", per plan. */
  readonly #other = new Map<string, Series>();
  /** Requests without a tenant. */
  readonly #none = new Series('', '');
  readonly #unsubscribe: (() => void)[] = [];
  readonly #timer: NodeJS.Timeout;
  readonly #tenantCountsTtlMs: number;
  #tenantCounts: { at: number; rows: Promise<{ status: string; isolation: string; plan: string; count: number }[]> } | undefined;

  constructor(opts: TenantryMetricsOptions) {
    this.#source = opts.source;
    this.#tenantCountsTtlMs = opts.tenantCountsTtlMs ?? 30_000;
    this.labels = new TenantLabels({ max: opts.tenantLabels, halfLifeMs: opts.halfLifeMs });
    this.#timer = setInterval(() => this.rerank(), opts.rerankMs ?? 5_000);
    this.#timer.unref();
    this.#register();
    this.#unsubscribe.push(
      subscribe(channels.transaction, (e) => this.#onTransaction(e)),
      subscribe(channels.requestLimited, (e) => this.#onLimited(e)),
      subscribe(channels.catalogLookup, (e) => this.#onCatalogLookup(e)),
    );
  }

  #otherOf(plan: string): Series {
    let s = this.#other.get(plan);
    if (s === undefined) this.#other.set(plan, s = new Series(OTHER, plan));
    return s;
  }

  /**
   * The series a tenant's values go to right now: its own, or "other" of its plan. A tenant whose
   * slug or plan changed while it had its own series has that series moved into "other" (of the
   * old plan) first, so its label values never change under a series.
   */
  #seriesOf(id: string, slug: string, plan: string, touch: boolean): Series {
    const t = this.labels.get(id, slug, plan);
    if (touch) t.window++;
    if (t.slug !== slug || t.plan !== plan) {
      const own = this.#own.get(id);
      if (own !== undefined) {
        own.mergeInto(this.#otherOf(own.plan));
        this.#own.delete(id);
      }
      t.slug = slug;
      t.plan = plan;
    }
    if (!t.labelled) return this.#otherOf(plan);
    let own = this.#own.get(id);
    if (own === undefined) this.#own.set(id, own = new Series(slug, plan));
    return own;
  }

  /** Counts one answered request (the observability plugin's onResponse hook). */
  recordRequest(tenant: Tenant | null | undefined, route: string, method: string, status: number, seconds: number): void {
    const series = tenant ? this.#seriesOf(tenant.id, tenant.slug, tenant.plan, true) : this.#none;
    series.request(route, method, status, seconds);
  }

  /**
   * Re-ranks the labelled tenants (every `rerankMs`; tests call it directly): a tenant that lost
   * its label has its values added into "other" and its series removed.
   */
  rerank(): void {
    const { demoted } = this.labels.rerank();
    for (const t of demoted) {
      const own = this.#own.get(t.id);
      if (own === undefined) continue;
      own.mergeInto(this.#otherOf(own.plan));
      this.#own.delete(t.id);
    }
  }

  #onTransaction(e: TransactionEvent): void {
    let series: Series;
    const known = this.labels.peek(e.tenantId);
    if (known !== undefined) {
      series = this.#seriesOf(e.tenantId, known.slug, known.plan, false);
    } else {
      // A tenant no request has been counted for (a job, the CLI): its scope has it.
      const t = peekTenant();
      series = t !== undefined && t.id === e.tenantId ? this.#seriesOf(t.id, t.slug, t.plan, false) : this.#otherOf('');
    }
    histogramOf(series.transactions, e.isolation, TRANSACTION_BUCKETS).observe(e.durationMs / 1000);
  }

  #onLimited(e: RequestLimitedEvent): void {
    const series = this.#seriesOf(e.tenantId, e.tenantSlug, e.plan, false);
    series.limited.set(e.reason, (series.limited.get(e.reason) ?? 0) + 1);
  }

  /** by + result → lookups (plain counts like the series: prom-client's counter cost ≈ 1 µs a request). */
  readonly #lookups = new Map<string, { readonly by: string; readonly result: string; n: number }>();

  #onCatalogLookup(e: CatalogLookupEvent): void {
    const result = e.errorCode !== null ? 'error' : e.hit ? 'hit' : 'miss';
    const key = e.by + result;
    const c = this.#lookups.get(key);
    if (c === undefined) this.#lookups.set(key, { by: e.by, result, n: 1 });
    else c.n++;
  }

  /** Every series: none, "other" per plan, then the labelled tenants. */
  *#series(): Iterable<Series> {
    yield this.#none;
    yield* this.#other.values();
    yield* this.#own.values();
  }

  #register(): void {
    const r = this.registry;
    const add = (m: ScrapedMetric) => r.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
    add(new ScrapedMetric('tenantry_http_requests_total', 'HTTP requests answered, by tenant (slug, "other", or "" without a tenant), plan, route pattern, method and status', 'counter', () => {
      const out: MetricValue[] = [];
      for (const s of this.#series()) {
        for (const [route, byMethod] of s.requests) {
          for (const [method, byStatus] of byMethod) {
            for (const [status, n] of byStatus) out.push({ labels: { tenant: s.tenant, plan: s.plan, route, method, status }, value: n });
          }
        }
      }
      return out;
    }));
    add(new ScrapedMetric('tenantry_http_request_duration_seconds', 'Time from a request\'s arrival to its answer, by tenant, plan and route pattern', 'histogram', () => {
      const out: MetricValue[] = [];
      for (const s of this.#series()) {
        for (const [route, h] of s.durations) histogramValues(out, 'tenantry_http_request_duration_seconds', { tenant: s.tenant, plan: s.plan, route }, h);
      }
      return out;
    }));
    add(new ScrapedMetric('tenantry_db_transaction_duration_seconds', 'Data-plane calls (db.query and db.transaction), from asking for a connection to giving it back, by tenant, plan and placement', 'histogram', () => {
      const out: MetricValue[] = [];
      for (const s of this.#series()) {
        for (const [isolation, h] of s.transactions) histogramValues(out, 'tenantry_db_transaction_duration_seconds', { tenant: s.tenant, plan: s.plan, isolation }, h);
      }
      return out;
    }));
    add(new ScrapedMetric('tenantry_rate_limited_total', 'Requests refused by admission control (429), by tenant, plan and reason (rate_limited, concurrency_limited)', 'counter', () => {
      const out: MetricValue[] = [];
      for (const s of this.#series()) for (const [reason, n] of s.limited) out.push({ labels: { tenant: s.tenant, plan: s.plan, reason }, value: n });
      return out;
    }));

    add(new ScrapedMetric('tenantry_catalog_lookups_total', 'Tenant lookups by id, slug or domain: answered from the process cache (hit), read from the catalog (miss), or failed (error)', 'counter',
      () => [...this.#lookups.values()].map((c) => ({ labels: { by: c.by, result: c.result }, value: c.n }))));
    const source = this.#source;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const metricsSelf = this;
    new Gauge({
      name: 'tenantry_tenants', help: 'Tenants in the catalog, by status, placement and plan (read at scrape, cached)',
      labelNames: ['status', 'isolation', 'plan'] as const, registers: [r],
      collect: async function collect(this: Gauge<'status' | 'isolation' | 'plan'>) {
        const rows = await metricsSelf.#tenantRows();
        if (rows === undefined) return; // the catalog did not answer: the last values stand
        this.reset();
        for (const row of rows) this.set({ status: row.status, isolation: row.isolation, plan: row.plan }, row.count);
      },
    });
    new Gauge({
      name: 'tenantry_db_pool_connections', help: 'Connections of the runtime pools (app: pooled and schema tenants; catalog), open (total) and idle',
      labelNames: ['pool', 'state'] as const, registers: [r],
      collect() {
        const s = source.poolStats();
        this.set({ pool: 'app', state: 'total' }, s.app.total);
        this.set({ pool: 'app', state: 'idle' }, s.app.idle);
        this.set({ pool: 'catalog', state: 'total' }, s.catalog.total);
        this.set({ pool: 'catalog', state: 'idle' }, s.catalog.idle);
      },
    });
    new Gauge({
      name: 'tenantry_db_pool_waiting', help: 'Callers waiting for a connection of a runtime pool',
      labelNames: ['pool'] as const, registers: [r],
      collect() {
        const s = source.poolStats();
        this.set({ pool: 'app' }, s.app.waiting);
        this.set({ pool: 'catalog' }, s.catalog.waiting);
      },
    });
    new Gauge({
      name: 'tenantry_db_tenant_connections_reserved', help: 'Server connections the open database-tenant pools hold a claim on (of the budget)',
      registers: [r], collect() { this.set(source.poolStats().tenantDatabases.reserved); },
    });
    new Gauge({
      name: 'tenantry_db_tenant_connections_max', help: 'The connection budget of the database-tenant pools (TENANTRY_DATABASE_CONNECTIONS_MAX)',
      registers: [r], collect() { this.set(source.poolStats().tenantDatabases.max); },
    });
    new Gauge({
      name: 'tenantry_db_tenant_pools_open', help: 'Database-tenant pools open',
      registers: [r], collect() { this.set(source.poolStats().tenantDatabases.openPools); },
    });
    new Gauge({
      name: 'tenantry_metrics_tenant_labels', help: 'Tenants with a tenant label value of their own right now (at most TENANTRY_METRICS_TENANT_LABELS)',
      registers: [r], collect() { this.set(metricsSelf.labels.labelledCount); },
    });
  }

  /**
   * The tenant counts, read from the catalog at most once per `tenantCountsTtlMs`; undefined when
   * the catalog did not answer.
   */
  async #tenantRows(): Promise<{ status: string; isolation: string; plan: string; count: number }[] | undefined> {
    const now = performance.now();
    if (this.#tenantCounts === undefined || now - this.#tenantCounts.at > this.#tenantCountsTtlMs) {
      const rows = this.#source.catalog.counts();
      this.#tenantCounts = { at: now, rows };
      // A failed read is retried at the next scrape.
      rows.catch(() => { if (this.#tenantCounts?.rows === rows) this.#tenantCounts = undefined; });
    }
    return this.#tenantCounts.rows.catch(() => undefined);
  }

  /** The exposition (Prometheus text format 0.0.4). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    clearInterval(this.#timer);
    for (const u of this.#unsubscribe.splice(0)) u();
  }
}
