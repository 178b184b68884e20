import type { PlanInput } from '../src/index.js';

/**
 * The helpdesk's quotas, per plan, merged over the toolkit's built-in plans (rate, concurrency,
 * connection share and statement timeout come from those). `null`: unlimited. The operator can
 * still change any of it with TENANTRY_PLANS, and a tenant can be given its own values
 * (PATCH /admin/api/tenants/:id/limits, `tenantry tenants limits`).
 */
export const helpdeskPlans: Readonly<Record<string, PlanInput>> = {
  free: { quotas: { users: 10, tickets: 1_000, storage_bytes: 50 * 1024 * 1024 } },
  pro: { quotas: { users: 50, tickets: 100_000, storage_bytes: 5 * 1024 ** 3 } },
  business: { quotas: { users: 500, tickets: 1_000_000, storage_bytes: 50 * 1024 ** 3 } },
  enterprise: { quotas: { users: null, tickets: null, storage_bytes: null } },
};
