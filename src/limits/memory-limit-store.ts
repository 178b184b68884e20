import { EDGE_MS, remainingOf, type AdmitOutcome, type LimitStore, type Rate } from './limit-store.js';

interface TenantState {
  /** GCRA's theoretical arrival time of the next request, ms (performance.now() clock). */
  tat: number;
  /** The limits the bucket was filled under: a change of them starts a full bucket. */
  rate: Rate | undefined;
  inFlight: number;
}

/**
 * Rate buckets (GCRA: one number per tenant) and in-flight counts of this process. Alone it
 * limits one instance; behind Redis it is the fallback while Redis is down, when each instance
 * enforces the limits on its own. Tenants idle for a full bucket are forgotten on the next sweep.
 */
export class MemoryLimitStore implements LimitStore {
  readonly #tenants = new Map<string, TenantState>();
  readonly #sweep: NodeJS.Timeout;

  constructor() {
    this.#sweep = setInterval(() => this.#forgetIdle(), 60_000);
    this.#sweep.unref();
  }

  admit(tenantId: string, rate: Rate, concurrency: number): AdmitOutcome {
    const now = performance.now();
    let s = this.#tenants.get(tenantId);
    if (!s) {
      s = { tat: now, rate, inFlight: 0 };
      this.#tenants.set(tenantId, s);
    } else if (s.rate !== rate && (s.rate?.perSecond !== rate.perSecond || s.rate.burst !== rate.burst)) {
      s.rate = rate;
      s.tat = now;
    }
    return admitGcra(s, now, rate, concurrency, () => { s.inFlight--; });
  }

  #forgetIdle(): void {
    const now = performance.now();
    for (const [id, s] of this.#tenants) if (s.inFlight === 0 && s.tat <= now) this.#tenants.delete(id);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
  }
}

/**
 * GCRA (the generic cell rate algorithm, a token bucket kept as one time): each request moves the
 * tenant's theoretical arrival time `tat` one interval on; it is allowed while `tat` is no more than
 * `burst` intervals ahead of now. The Redis store runs the same arithmetic in Lua.
 */
function admitGcra(s: TenantState, now: number, rate: Rate, concurrency: number, onRelease: () => void): AdmitOutcome {
  const interval = 1000 / rate.perSecond;
  const tat = Math.max(s.tat, now);
  // The rate first: over it is `rate_limited` whatever the concurrency, and a request refused for
  // concurrency spends no token. Compared as "how far ahead": `tat - now` is exactly 0 for a full
  // bucket, where `now < tat + interval - burst * interval` can round to true (burst 1: the first
  // request refused, 0.26 % of the time; seen on CI).
  const over = tat - now - (rate.burst - 1) * interval;
  if (over > EDGE_MS) {
    return { allowed: false, reason: 'rate', remaining: 0, retryAfterMs: over, resetMs: tat - now };
  }
  const next = tat + interval;
  if (s.inFlight >= concurrency) {
    return { allowed: false, reason: 'concurrency', remaining: remainingOf(tat - now, interval, rate.burst), retryAfterMs: 1000, resetMs: tat - now };
  }
  s.tat = next;
  s.inFlight++;
  let released = false;
  return {
    allowed: true,
    remaining: remainingOf(next - now, interval, rate.burst),
    resetMs: next - now,
    release: () => {
      if (released) return;
      released = true;
      onRelease();
    },
  };
}
