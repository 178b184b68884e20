import type { LimitOverrides } from '../limits/plans.js';

export type TenantStatus = 'provisioning' | 'active' | 'suspended' | 'offboarded';
export type Isolation = 'pooled' | 'schema' | 'database';

export interface Tenant {
  readonly id: string;
  readonly slug: string;
  readonly name: string;
  readonly status: TenantStatus;
  readonly plan: string;
  readonly isolation: Isolation;
  readonly shard: string;
  readonly settings: Record<string, unknown>;
  /** Limits of its own over its plan's (empty: the plan's). See Plans.of for the effective ones. */
  readonly limits?: LimitOverrides;
  readonly createdAt: string;
  readonly updatedAt: string;
}
