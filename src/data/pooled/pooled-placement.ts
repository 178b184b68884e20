import type { Tenant } from '../../catalog/types.js';
import { schemas } from '../bootstrap.js';
import type { Placement, ScopedTarget } from '../placement.js';
import type { Sql } from '../postgres-driver.js';

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

  target(tenant: Tenant): ScopedTarget {
    return {
      pool: this.#pool,
      prelude: {
        text: "select set_config('app.tenant_id', $1, true), set_config('search_path', $2, true)",
        params: [tenant.id, schemas.pooled],
      },
    };
  }

  async provision(): Promise<void> {
    // Nothing to create: the shared schema exists once per shard.
  }

  async close(): Promise<void> {
    await this.#pool.end({ timeout: 5 });
  }
}
