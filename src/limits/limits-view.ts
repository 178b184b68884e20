import type { Tenant } from '../catalog/types.js';
import type { LimitOverrides, Limits, LimitSources, Plans } from './plans.js';

/** A tenant's limits as the admin API and the CLI show them. */
export interface LimitsView {
  readonly tenant_id: string;
  readonly tenant: string;
  readonly plan: string;
  /** What applies now: the plan's values with the tenant's overrides over them. */
  readonly limits: Limits;
  /** Where each value of `limits` comes from: `plan` or `tenant`. */
  readonly sources: LimitSources;
  /** The tenant's own values (what PATCH changes). */
  readonly overrides: LimitOverrides;
}

export function limitsView(plans: Plans, tenant: Tenant): LimitsView {
  const { plan, limits, sources } = plans.of(tenant);
  return { tenant_id: tenant.id, tenant: tenant.slug, plan, limits, sources, overrides: tenant.limits ?? {} };
}
