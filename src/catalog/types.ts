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

export interface ApiKeyRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly name: string;
  readonly prefix: string;
  readonly role: 'admin' | 'agent';
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
}
