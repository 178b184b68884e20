import type { Tenant } from '../../catalog/types.js';
import { TenantryError } from '../../errors.js';
import { schemas } from '../bootstrap.js';
import { contextPrelude, type Lease, type Placement } from '../placement.js';
import { isConnectionError, type Sql } from '../postgres-driver.js';

/**
 * Shared schema `app`, rows told apart by tenant_id and filtered by RLS.
 *
 * The context is set with set_config(..., true): local to the transaction, so it is gone at
 * COMMIT or ROLLBACK and the next transaction on the same pooled connection (or behind PgBouncer
 * in transaction mode) starts with no tenant. A session-level SET would survive the release and
 * hand tenant A's context to whoever borrows the connection next. search_path is set the same
 * way, so unqualified table names resolve to the placement's schema and never to `public`.
 */
export class PooledPlacement implements Placement {
  readonly isolation = 'pooled' as const;
  readonly #pool: Sql;

  constructor(pool: Sql) {
    this.#pool = pool;
  }

  async acquire(tenant: Tenant): Promise<Lease> {
    const conn = await reserve(this.#pool);
    return { conn, prelude: contextPrelude(tenant.id, schemas.pooled), release: () => conn.release() };
  }

  async provision(): Promise<void> {
    // Nothing to create: the shared schema exists once per shard.
  }

  async close(): Promise<void> {
    await this.#pool.end({ timeout: 5 });
  }
}

/** Reserves a connection; a server that cannot be reached is a 503, not a 500. */
export async function reserve(pool: Sql) {
  try {
    return await pool.reserve();
  } catch (err) {
    if (isConnectionError(err)) throw new TenantryError('database_unavailable', undefined, undefined, { cause: err });
    throw err;
  }
}
