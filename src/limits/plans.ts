import { TenantryError } from '../errors.js';

/**
 * What a plan grants a tenant, and what a tenant may override. In the API and in
 * `TENANTRY_PLANS` the fields are snake_case, as here; a quota of `null` is unlimited.
 */
export interface Limits {
  /** Sustained request rate (token bucket refill), requests per second. */
  readonly requests_per_second: number;
  /** Requests that may arrive at once above the sustained rate (bucket size). */
  readonly burst: number;
  /** Requests in progress at once, on all instances together. */
  readonly concurrent_requests: number;
  /** Connections of a shared pool (per instance) the tenant's transactions may hold at once. */
  readonly db_connections: number;
  /** Statement timeout of the tenant's transactions, milliseconds (0: none). */
  readonly statement_timeout_ms: number;
  /** Quotas by name (`users`, `tickets`, `storage_bytes`, …): the most the tenant may have; null: unlimited. */
  readonly quotas: Readonly<Record<string, number | null>>;
}

/** A tenant's overrides: any field of Limits, quotas one by one. Stored in the catalog (tenants.limits). */
export interface LimitOverrides {
  readonly requests_per_second?: number;
  readonly burst?: number;
  readonly concurrent_requests?: number;
  readonly db_connections?: number;
  readonly statement_timeout_ms?: number;
  readonly quotas?: Readonly<Record<string, number | null>>;
}

/** A change of overrides: a value sets it, `null` resets it to the plan. */
export type LimitsPatch = {
  readonly [K in Exclude<keyof Limits, 'quotas'>]?: number | null;
} & { readonly quotas?: Readonly<Record<string, number | null>> };

/** Where each effective value comes from. */
export interface LimitSources {
  readonly requests_per_second: 'plan' | 'tenant';
  readonly burst: 'plan' | 'tenant';
  readonly concurrent_requests: 'plan' | 'tenant';
  readonly db_connections: 'plan' | 'tenant';
  readonly statement_timeout_ms: 'plan' | 'tenant';
  readonly quotas: Readonly<Record<string, 'plan' | 'tenant'>>;
}

export const scalarLimits = ['requests_per_second', 'burst', 'concurrent_requests', 'db_connections', 'statement_timeout_ms'] as const;
export type ScalarLimit = (typeof scalarLimits)[number];

/** The range each scalar accepts. */
const ranges: Readonly<Record<ScalarLimit, readonly [number, number]>> = {
  requests_per_second: [0.01, 1_000_000],
  burst: [1, 10_000_000],
  concurrent_requests: [1, 100_000],
  db_connections: [1, 1_000],
  statement_timeout_ms: [0, 3_600_000],
};

/**
 * The built-in plans. An operator adds plans or changes these with `TENANTRY_PLANS` (or the
 * `plans` option); an application adds its quotas the same way (the helpdesk: users, tickets,
 * storage_bytes).
 */
export const builtInPlans: Readonly<Record<string, Limits>> = Object.freeze({
  free: { requests_per_second: 50, burst: 100, concurrent_requests: 10, db_connections: 1, statement_timeout_ms: 2_000, quotas: {} },
  pro: { requests_per_second: 200, burst: 400, concurrent_requests: 20, db_connections: 3, statement_timeout_ms: 5_000, quotas: {} },
  business: { requests_per_second: 500, burst: 1_000, concurrent_requests: 40, db_connections: 4, statement_timeout_ms: 10_000, quotas: {} },
  enterprise: { requests_per_second: 1_000, burst: 2_000, concurrent_requests: 80, db_connections: 6, statement_timeout_ms: 30_000, quotas: {} },
});

/** A plan as configured: any field, merged over the built-in plan of that name (or `free` for a new one). */
export type PlanInput = Partial<Omit<Limits, 'quotas'>> & { readonly quotas?: Readonly<Record<string, number | null>> };

const QUOTA_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const PLAN_NAME = /^[a-z0-9][a-z0-9_-]{0,49}$/;

function checkScalar(where: string, key: ScalarLimit, value: unknown): number {
  const [min, max] = ranges[key];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max
    || (key !== 'requests_per_second' && !Number.isInteger(value))) {
    throw new TypeError(`${where}.${key}: expected ${key === 'requests_per_second' ? 'a number' : 'an integer'} in ${min}..${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkQuota(where: string, name: string, value: unknown): number | null {
  if (!QUOTA_NAME.test(name)) throw new TypeError(`${where}.quotas: "${name}" is not a quota name (snake_case)`);
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${where}.quotas.${name}: expected a non-negative integer or null, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Checks a plans object (TENANTRY_PLANS's JSON, or the `plans` option); throws TypeError naming the field. */
export function checkPlanInputs(input: unknown): Readonly<Record<string, PlanInput>> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new TypeError('expected an object of plans by name');
  const out: Record<string, PlanInput> = {};
  for (const [name, plan] of Object.entries(input as Record<string, unknown>)) {
    if (!PLAN_NAME.test(name)) throw new TypeError(`"${name}" is not a plan name (a-z, 0-9, _ and -; up to 50)`);
    if (plan === null || typeof plan !== 'object' || Array.isArray(plan)) throw new TypeError(`${name}: expected an object`);
    const p: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(plan as Record<string, unknown>)) {
      if (key === 'quotas') {
        if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${name}.quotas: expected an object`);
        p.quotas = Object.fromEntries(Object.entries(value).map(([q, v]) => [q, checkQuota(name, q, v)]));
      } else if ((scalarLimits as readonly string[]).includes(key)) {
        p[key] = checkScalar(name, key as ScalarLimit, value);
      } else {
        throw new TypeError(`${name}: unknown field "${key}" (known: ${[...scalarLimits, 'quotas'].join(', ')})`);
      }
    }
    out[name] = Object.freeze(p) as PlanInput;
  }
  return Object.freeze(out);
}

/** The effective limits of a tenant and where each value comes from. */
export interface EffectiveLimits {
  readonly plan: string;
  readonly limits: Limits;
  readonly sources: LimitSources;
}

/**
 * The plans of a platform: the built-in ones with the configured plans merged over them (a new
 * plan starts from `free`). Every quota named in any plan exists in every plan (unlimited where
 * not given), so an override can name any of them.
 */
export class Plans {
  readonly #plans: ReadonlyMap<string, Limits>;
  readonly quotaNames: readonly string[];
  /** Effective limits, per (plan, overrides object): recomputed only when the tenant changes. */
  readonly #memo = new WeakMap<object, EffectiveLimits>();

  constructor(...layers: readonly (Readonly<Record<string, PlanInput>> | undefined)[]) {
    const merged = new Map<string, { scalars: Record<string, number>; quotas: Record<string, number | null> }>();
    for (const [name, plan] of Object.entries(builtInPlans)) {
      const { quotas, ...scalars } = plan;
      merged.set(name, { scalars: { ...scalars }, quotas: { ...quotas } });
    }
    for (const layer of layers) {
      for (const [name, input] of Object.entries(layer ?? {})) {
        const base = merged.get(name) ?? { scalars: { ...merged.get('free')!.scalars }, quotas: { ...merged.get('free')!.quotas } };
        const { quotas, ...scalars } = input;
        merged.set(name, { scalars: { ...base.scalars, ...scalars }, quotas: { ...base.quotas, ...quotas } });
      }
    }
    const quotaNames = [...new Set([...merged.values()].flatMap((p) => Object.keys(p.quotas)))].sort();
    this.quotaNames = Object.freeze(quotaNames);
    const plans = new Map<string, Limits>();
    for (const [name, p] of merged) {
      const quotas = Object.fromEntries(quotaNames.map((q) => [q, p.quotas[q] ?? null]));
      plans.set(name, Object.freeze({ ...p.scalars, quotas: Object.freeze(quotas) }) as unknown as Limits);
    }
    this.#plans = plans;
  }

  /** Every plan by name. */
  all(): ReadonlyMap<string, Limits> {
    return this.#plans;
  }

  has(name: string): boolean {
    return this.#plans.has(name);
  }

  /** The limits of a plan; unknown_plan when there is none. */
  get(name: string): Limits {
    const plan = this.#plans.get(name);
    if (!plan) throw new TenantryError('unknown_plan', `no plan "${name}" (plans: ${[...this.#plans.keys()].join(', ')})`);
    return plan;
  }

  /**
   * The effective limits of a tenant: its plan, with its overrides over it. A tenant whose plan is
   * no longer defined gets `free`'s limits (never none), and its plan name is kept.
   */
  of(tenant: { readonly plan: string; readonly limits?: LimitOverrides }): EffectiveLimits {
    const key = tenant as object;
    const hit = this.#memo.get(key);
    if (hit) return hit;
    const base = this.#plans.get(tenant.plan) ?? this.#plans.get('free')!;
    const o = tenant.limits ?? {};
    const scalars: Record<string, number> = {};
    const sources: Record<string, unknown> = {};
    for (const k of scalarLimits) {
      const v = o[k];
      scalars[k] = typeof v === 'number' ? v : base[k];
      sources[k] = typeof v === 'number' ? 'tenant' : 'plan';
    }
    const quotas: Record<string, number | null> = {};
    const quotaSources: Record<string, 'plan' | 'tenant'> = {};
    for (const q of this.quotaNames) {
      const own = o.quotas !== undefined && Object.hasOwn(o.quotas, q);
      quotas[q] = own ? o.quotas![q]! : base.quotas[q] ?? null;
      quotaSources[q] = own ? 'tenant' : 'plan';
    }
    const effective: EffectiveLimits = Object.freeze({
      plan: tenant.plan,
      limits: Object.freeze({ ...scalars, quotas: Object.freeze(quotas) }) as unknown as Limits,
      sources: Object.freeze({ ...sources, quotas: Object.freeze(quotaSources) }) as unknown as LimitSources,
    });
    this.#memo.set(key, effective);
    return effective;
  }

  /**
   * Applies a patch to a tenant's overrides: values set, nulls reset to the plan. Checked field by
   * field (validation_failed naming it); unknown quotas are refused.
   */
  patch(current: LimitOverrides, patch: LimitsPatch): LimitOverrides {
    const next: Record<string, unknown> = { ...current };
    const quotas: Record<string, number | null> = { ...(current.quotas ?? {}) };
    for (const [key, value] of Object.entries(patch)) {
      if (key === 'quotas') {
        for (const [q, v] of Object.entries(value as Record<string, number | null>)) {
          if (!this.quotaNames.includes(q)) throw new TenantryError('validation_failed', `unknown quota "${q}" (quotas: ${this.quotaNames.join(', ') || 'none'})`);
          if (v === null) delete quotas[q];
          else quotas[q] = invalidAs400(() => checkQuota('limits', q, v));
        }
      } else if ((scalarLimits as readonly string[]).includes(key)) {
        if (value === null) delete next[key];
        else next[key] = invalidAs400(() => checkScalar('limits', key as ScalarLimit, value));
      } else {
        throw new TenantryError('validation_failed', `unknown limit "${key}"`);
      }
    }
    delete next.quotas;
    if (Object.keys(quotas).length) next.quotas = quotas;
    return next as LimitOverrides;
  }
}

function invalidAs400<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new TenantryError('validation_failed', (err as Error).message);
  }
}
