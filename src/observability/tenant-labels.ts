/**
 * The bounded set of tenants that have a `tenant` label value of their own in the metrics: at most
 * `max` of them, the most active lately; every other tenant is "other".
 *
 * Activity is an exponentially decayed request count: each request adds 1 to its tenant's window
 * (a field increment, nothing allocated), and every `rerankMs` the windows are folded into the
 * scores (`score = score × ½^(elapsed / halfLife) + window`) and the tenants re-ranked. A tenant
 * that becomes busy climbs above the weakest labelled one and takes its place; an idle one decays
 * and gives its place back (also when nobody wants it: below `minScore` it is dropped). Tenants
 * already labelled keep their place unless a challenger's score beats theirs by `hysteresis`, so
 * two tenants near the boundary do not swap series at every re-rank.
 *
 * Until the set is full a tenant gets its label the first time it is seen (a small platform has
 * every tenant under its own name at once). The caller (metrics.ts) moves the values of a tenant
 * between its own series and "other" as `rerank()` reports, so that every total stays exact.
 */

/** What the set knows of one tenant. */
export interface TenantActivity {
  readonly id: string;
  slug: string;
  plan: string;
  /** Requests since the last re-rank. */
  window: number;
  /** Decayed request count as of the last re-rank. */
  score: number;
  /** Has a label value of its own (its slug). */
  labelled: boolean;
}

export interface TenantLabelsOptions {
  /** Tenants with a label of their own, at most. */
  readonly max: number;
  /** Half-life of the activity score, milliseconds (default 60 s). */
  readonly halfLifeMs?: number;
  /** A labelled tenant whose score falls below this gives its place back even when nobody else wants it (default 0.1). */
  readonly minScore?: number;
  /** A challenger must beat a labelled tenant's score by this factor to take its place (default 1.2). */
  readonly hysteresis?: number;
}

export interface Reranked {
  /** Tenants that got a label of their own. */
  readonly promoted: readonly TenantActivity[];
  /** Tenants that lost theirs (they are "other" from now on). */
  readonly demoted: readonly TenantActivity[];
}

/** The label value of every tenant without one of its own. */
export const OTHER = 'other';

export class TenantLabels {
  readonly max: number;
  readonly #halfLifeMs: number;
  readonly #minScore: number;
  readonly #hysteresis: number;
  readonly #tenants = new Map<string, TenantActivity>();
  #labelled = 0;
  #rankedAt = performance.now();

  constructor(opts: TenantLabelsOptions) {
    if (!Number.isInteger(opts.max) || opts.max < 1) throw new RangeError('max must be a positive integer');
    this.max = opts.max;
    this.#halfLifeMs = opts.halfLifeMs ?? 60_000;
    this.#minScore = opts.minScore ?? 0.1;
    this.#hysteresis = opts.hysteresis ?? 1.2;
  }

  /** The tenant's entry, created on first sight (labelled at once while the set has room). */
  get(id: string, slug: string, plan: string): TenantActivity {
    let t = this.#tenants.get(id);
    if (t === undefined) {
      t = { id, slug, plan, window: 0, score: 0, labelled: false };
      if (this.#labelled < this.max && slug !== OTHER) {
        t.labelled = true;
        this.#labelled++;
      }
      this.#tenants.set(id, t);
    }
    return t;
  }

  /** The entry of a tenant seen before, or undefined. */
  peek(id: string): TenantActivity | undefined {
    return this.#tenants.get(id);
  }

  /** Tenants with a label of their own right now. */
  get labelledCount(): number {
    return this.#labelled;
  }

  /** Tenants tracked (labelled or not); idle unlabelled ones are forgotten at re-rank. */
  get size(): number {
    return this.#tenants.size;
  }

  /**
   * Folds the windows into the scores and re-ranks: the `max` highest scores (with the
   * incumbents' hysteresis, and at least `minScore`) are the labelled set from now on.
   */
  rerank(now = performance.now()): Reranked {
    const decay = 0.5 ** ((now - this.#rankedAt) / this.#halfLifeMs);
    this.#rankedAt = now;
    const all: TenantActivity[] = [];
    for (const t of this.#tenants.values()) {
      t.score = t.score * decay + t.window;
      t.window = 0;
      if (!t.labelled && t.score < this.#minScore) {
        // Idle and in "other": nothing to remember (its values stay in "other").
        this.#tenants.delete(t.id);
        continue;
      }
      all.push(t);
    }
    const rank = (t: TenantActivity) => (t.labelled ? t.score * this.#hysteresis : t.score);
    all.sort((a, b) => rank(b) - rank(a) || (a.id < b.id ? -1 : 1));
    const promoted: TenantActivity[] = [];
    const demoted: TenantActivity[] = [];
    let kept = 0;
    for (const t of all) {
      const wins = kept < this.max && t.score >= this.#minScore && t.slug !== OTHER;
      if (wins) kept++;
      if (wins && !t.labelled) promoted.push(t);
      else if (!wins && t.labelled) demoted.push(t);
      t.labelled = wins;
    }
    this.#labelled = kept;
    return { promoted, demoted };
  }
}
