import type { Tenant } from '../catalog/types.js';
import { runWithTenant } from '../context/tenant-context.js';
import { measureStorageBytes, type TenantReader } from '../limits/storage.js';
import type { UsageMeter } from './usage-meter.js';

/** What the sampler needs: tenants by id, and the data plane to measure in a tenant's scope. */
export interface StorageSamplerDeps {
  readonly meter: UsageMeter;
  findTenant(id: string): Promise<Tenant | null>;
  readonly db: TenantReader;
}

/**
 * storage_bytes: each tenant that had requests since the last pass is measured the way its
 * placement allows (measureStorageBytes: the size of its rows in the shared schema, of its schema,
 * or of its database), in its own scope through the data plane, one tenant at a time; the sample
 * goes to the meter (the hour keeps its largest). The measurement's own queries are the
 * platform's: they are not counted as the tenant's db_time_ms. A tenant that cannot be measured
 * (gone, suspended, its database unavailable) is skipped until it is active again.
 */
export class StorageSampler {
  readonly #deps: StorageSamplerDeps;

  constructor(deps: StorageSamplerDeps) {
    this.#deps = deps;
  }

  /** Samples `ids` (default: the tenants active since the last pass); returns how many were measured. */
  async sample(ids: readonly string[] = this.#deps.meter.takeActive()): Promise<number> {
    let measured = 0;
    for (const id of ids) {
      try {
        const tenant = await this.#deps.findTenant(id);
        if (!tenant || tenant.status !== 'active') continue;
        const bytes = await runWithTenant(tenant, () => measureStorageBytes(this.#deps.db, tenant), { unmetered: true });
        this.#deps.meter.recordStorage(tenant.id, bytes);
        measured += 1;
      } catch {
        // Skipped: the next pass in which the tenant is active measures it.
      }
    }
    return measured;
  }
}
