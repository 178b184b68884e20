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
  readonly createdAt: string;
  readonly updatedAt: string;
}
