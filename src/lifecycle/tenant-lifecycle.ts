import type { TenantCatalog } from '../catalog/tenant-catalog.js';
import { checkSlug } from '../catalog/slug.js';
import type { Isolation, Tenant } from '../catalog/types.js';
import { requirePlatformScope, runWithTenant } from '../context/tenant-context.js';
import type { DataPlane } from '../data/data-plane.js';
import { createPool, type Sql } from '../data/driver/index.js';
import { reserve } from '../data/pooled/pooled-placement.js';
import { isTenantryError, TenantryError } from '../errors.js';
import type { LimitsPatch, Plans } from '../limits/plans.js';

export interface CreateTenantOptions {
  readonly id?: string;
  readonly slug: string;
  readonly name: string;
  readonly plan?: string;
  readonly isolation?: Isolation;
  readonly settings?: Record<string, unknown>;
}

/** Default placement of a plan (enterprise tenants get their own database, and so on). */
export const planIsolation: Readonly<Record<string, Isolation>> = Object.freeze({
  free: 'pooled', pro: 'pooled', business: 'schema', enterprise: 'database',
});

/** What the lifecycle needs of the catalog (which writes each step's audit entry in the step's transaction). */
type TenantRegistry = Pick<TenantCatalog, 'create' | 'findBySlug' | 'setStatus' | 'updateLimits'>;

/**
 * Tenant lifecycle operations — create, suspend, resume — each recorded in the catalog and the
 * audit log, and each requiring the platform scope. The placement owns what a tenant's data needs
 * (provision, deprovision); this module orders the steps so that running an interrupted operation
 * again finishes it.
 */
export class TenantLifecycle {
  readonly #catalog: TenantRegistry;
  readonly #db: DataPlane;
  readonly #plans: Plans;
  /** The direct admin URL: creation locks are session locks, never on a pooled connection. */
  readonly #adminUrl: string;
  /** Connections that hold tenant-creation locks (opened on first use). */
  #locks: Sql | undefined;

  constructor(catalog: TenantRegistry, db: DataPlane, adminUrl: string, plans: Plans) {
    this.#catalog = catalog;
    this.#plans = plans;
    this.#db = db;
    this.#adminUrl = adminUrl;
  }

  /**
   * Creates a tenant: catalog row (status provisioning), placement, then `init` inside the new
   * tenant's context (e.g. its first user), then active.
   *
   * Re-running is how a creation that crashed half-way is finished: when the slug belongs to a
   * tenant still `provisioning` in the same placement (and, if `id` is given, with that id), that
   * tenant is resumed — placement provisioning is idempotent, and `init` runs again, so it must be
   * idempotent too (e.g. inserts `on conflict`). A session advisory lock on the slug,
   * held on a direct connection (DATABASE_URL, never through a transaction pooler), makes
   * concurrent calls for one slug take turns: the second is refused with tenant_slug_taken while
   * the first runs, instead of resuming a creation that is still in progress. The lock dies with
   * its connection, so a crashed creator never blocks the retry.
   */
  async create<T>(input: CreateTenantOptions, init?: (tenant: Tenant) => Promise<T>): Promise<{ tenant: Tenant; init: T | undefined }> {
    const scope = requirePlatformScope('createTenant()');
    const problem = checkSlug(input.slug);
    if (problem) {
      throw new TenantryError('validation_failed', problem === 'reserved' ? `the slug "${input.slug}" is reserved` : 'the slug must be a DNS label of 3 to 63 characters',
        { errors: [{ path: '/slug', message: problem }] });
    }
    if (input.plan !== undefined) this.#plans.get(input.plan); // 422 unknown_plan
    const isolation = input.isolation ?? planIsolation[input.plan ?? 'free'] ?? 'pooled';
    const placement = this.#db.placement(isolation);
    return this.#creating(input.slug, async () => {
      let created: Tenant;
      let resumed = false;
      try {
        created = await this.#catalog.create({ ...input, isolation });
      } catch (err) {
        if (!isTenantryError(err) || err.code !== 'tenant_slug_taken') throw err;
        const existing = await this.#catalog.findBySlug(input.slug, { fresh: true });
        const same = existing && existing.status === 'provisioning' && existing.isolation === isolation && (!input.id || input.id === existing.id);
        if (!same) throw err;
        created = existing;
        resumed = true;
      }
      await placement.provision(created);
      const result = init ? await runWithTenant(created, () => init(created)) : undefined;
      const tenant = (await this.#catalog.setStatus(created.id, 'active', (t) => ({
        actor: scope.actor, requestId: scope.requestId, clientAddress: scope.clientAddress, action: 'tenant.created', tenantId: t.id, target: { type: 'tenant', id: t.id },
        detail: { slug: t.slug, plan: t.plan, isolation, resumed },
      })))!;
      return { tenant, init: result };
    });
  }

  /** Suspends (`suspended`) or resumes (`active`) a tenant; null when there is no such tenant. */
  async setStatus(id: string, status: 'active' | 'suspended'): Promise<Tenant | null> {
    const scope = requirePlatformScope('setTenantStatus()');
    return this.#catalog.setStatus(id, status, (t) => ({
      actor: scope.actor, requestId: scope.requestId, clientAddress: scope.clientAddress, action: `tenant.${status === 'active' ? 'resumed' : 'suspended'}`, tenantId: t.id, target: { type: 'tenant', id: t.id },
    }));
  }

  /**
   * Changes a tenant's own limits (a value sets one, null resets it to the plan; see Plans.patch)
   * and records it in the audit log; null when there is no such tenant. Every instance applies the
   * change at once (the catalog channel). Requires the platform scope.
   */
  async setLimits(id: string, patch: LimitsPatch): Promise<Tenant | null> {
    const scope = requirePlatformScope('setTenantLimits()');
    // Checked before the row is locked: a bad patch is a 400 and changes nothing.
    this.#plans.patch({}, patch);
    return this.#catalog.updateLimits(id, (current) => this.#plans.patch(current, patch), (t) => ({
      actor: scope.actor, requestId: scope.requestId, clientAddress: scope.clientAddress, action: 'tenant.limits_changed', tenantId: t.id, target: { type: 'tenant', id: t.id }, detail: { patch, limits: t.limits },
    }));
  }

  /** Runs `fn` holding the creation lock of `slug` (see create), or refuses at once. */
  async #creating<T>(slug: string, fn: () => Promise<T>): Promise<T> {
    // A pool of its own: its connections only hold locks, so holders never wait on each other
    // for a connection to do their work with.
    this.#locks ??= createPool(this.#adminUrl, { max: 16, idleTimeout: 10, applicationName: 'tenantry-locks' });
    const conn = await reserve(this.#locks);
    try {
      const key = ['tenantry.create', slug];
      const [row] = await conn.query<{ locked: boolean }>('select pg_try_advisory_lock(hashtext($1), hashtext($2)) as locked', key);
      if (!row?.locked) throw new TenantryError('tenant_slug_taken', `a tenant with slug "${slug}" is being created`);
      try {
        return await fn();
      } finally {
        await conn.query('select pg_advisory_unlock(hashtext($1), hashtext($2))', key).catch(() => {});
      }
    } finally {
      conn.release();
    }
  }

  async close(): Promise<void> {
    await this.#locks?.end();
  }
}
