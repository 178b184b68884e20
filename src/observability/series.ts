/**
 * What the metrics count, per (tenant, plan) label pair: a Series holds the request counts (route →
 * method → status), the request and transaction duration histograms and the refusals; a tenant's
 * series merges into "other" when it loses its label. At scrape time ScrapedMetric hands prom-client
 * the values built from the series (see metrics.ts).
 */

/** Buckets of the request duration histogram, seconds. */
export const REQUEST_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets of the transaction duration histogram, seconds. */
export const TRANSACTION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** A histogram's cells: counts per bucket (not cumulative; the last is +Inf), sum and count. */
export class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }

  add(o: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += o.counts[i]!;
    this.sum += o.sum;
    this.count += o.count;
  }
}

export function histogramOf<K>(map: Map<K, Histogram>, key: K, bounds: readonly number[]): Histogram {
  let h = map.get(key);
  if (h === undefined) map.set(key, h = new Histogram(bounds));
  return h;
}

/** Everything counted under one (tenant, plan) label pair. */
export class Series {
  /** route → method → status → requests */
  readonly requests = new Map<string, Map<string, Map<number, number>>>();
  /** route → request durations */
  readonly durations = new Map<string, Histogram>();
  /** isolation → transaction durations */
  readonly transactions = new Map<string, Histogram>();
  /** reason → refusals */
  readonly limited = new Map<string, number>();

  constructor(readonly tenant: string, readonly plan: string) {}

  request(route: string, method: string, status: number, seconds: number): void {
    let byMethod = this.requests.get(route);
    if (byMethod === undefined) this.requests.set(route, byMethod = new Map());
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map());
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    histogramOf(this.durations, route, REQUEST_BUCKETS).observe(seconds);
  }

  /** Adds every value of this series into `into` (a tenant's series into "other"). */
  mergeInto(into: Series): void {
    for (const [route, byMethod] of this.requests) {
      for (const [method, byStatus] of byMethod) {
        for (const [status, n] of byStatus) {
          let m = into.requests.get(route);
          if (m === undefined) into.requests.set(route, m = new Map());
          let s = m.get(method);
          if (s === undefined) m.set(method, s = new Map());
          s.set(status, (s.get(status) ?? 0) + n);
        }
      }
    }
    for (const [route, h] of this.durations) histogramOf(into.durations, route, REQUEST_BUCKETS).add(h);
    for (const [isolation, h] of this.transactions) histogramOf(into.transactions, isolation, TRANSACTION_BUCKETS).add(h);
    for (const [reason, n] of this.limited) into.limited.set(reason, (into.limited.get(reason) ?? 0) + n);
  }
}

export interface MetricValue {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

/**
 * A metric whose values are built at scrape time from the series (prom-client's Registry formats
 * anything with a name, a help, a type and `get()`).
 */
export class ScrapedMetric {
  readonly aggregator = 'sum';
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'histogram', readonly values: () => MetricValue[]) {}
  get() {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() };
  }
  reset(): void {}
}

export function histogramValues(out: MetricValue[], name: string, labels: Record<string, string>, h: Histogram): void {
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: h.bounds[i]! }, value: cumulative });
  }
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
  out.push({ metricName: `${name}_sum`, labels, value: h.sum });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
}
