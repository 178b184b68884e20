import type { Isolation, Tenant } from '../catalog/types.js';
import { requireTenantScope } from '../context/tenant-context.js';
import { TenantryError } from '../errors.js';
import type { Lease, Placement } from './placement.js';
import type { Row } from './postgres-driver.js';
import { isConnectionError, type Params } from './postgres-driver.js';

export interface TenantTransaction {
  /** Runs one statement inside the tenant-scoped transaction. */
  query<T extends Row = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

/**
 * postgres.js runs `unsafe()` unprepared unless told otherwise, and an unprepared statement with
 * parameters is first described in a round trip of its own, which stalls the pipeline. Named
 * prepared statements (described once per connection) let the four messages go out together.
 * A pool created with `prepare: false` (PgBouncer before 1.21) still overrides this.
 */
const PREPARED = { prepare: true } as const;

/**
 * The only way to tenant data. Every call takes its tenant from the async context, never from a
 * parameter a caller could forget or forge; outside a tenant scope it throws
 * TenantContextMissingError before any SQL is sent.
 */
export class DataPlane {
  readonly #placements: ReadonlyMap<Isolation, Placement>;

  constructor(placements: readonly Placement[]) {
    this.#placements = new Map(placements.map((p) => [p.isolation, p]));
  }

  placement(isolation: Isolation): Placement {
    const placement = this.#placements.get(isolation);
    if (!placement) throw new TenantryError('isolation_unavailable', `no ${isolation} placement is configured`);
    return placement;
  }

  #acquire(tenant: Tenant): Promise<Lease> {
    return this.placement(tenant.isolation).acquire(tenant);
  }

  /**
   * One statement in a tenant-scoped transaction, in one round trip: BEGIN, the context, the
   * statement and COMMIT are written to the connection together (pipelined) and their replies
   * read back together. If the statement fails, COMMIT of the aborted transaction rolls back.
   */
  async query<T extends Row = Row>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    const { tenant } = requireTenantScope('query()');
    const { conn, prelude, release } = await this.#acquire(tenant);
    try {
      const settled = await Promise.allSettled([
        conn.unsafe('begin', [], PREPARED),
        conn.unsafe(prelude.text, prelude.params as Params, PREPARED),
        conn.unsafe(text, params as Params, PREPARED),
        conn.unsafe('commit', [], PREPARED),
      ]);
      for (const r of settled) if (r.status === 'rejected') throw mapError(r.reason);
      return (settled[2] as PromiseFulfilledResult<unknown>).value as T[];
    } finally {
      release();
    }
  }

  /**
   * Several statements in one tenant-scoped transaction. BEGIN and the context are pipelined
   * with the first statement; COMMIT on success, ROLLBACK on any error.
   */
  async transaction<T>(fn: (tx: TenantTransaction) => Promise<T>): Promise<T> {
    const { tenant } = requireTenantScope('transaction()');
    const { conn, prelude, release } = await this.#acquire(tenant);
    let failed = false;
    // Once the transaction ends the connection goes back to the pool and may serve another
    // tenant: a handle kept past that point (a timer, an un-awaited helper) must not reach it.
    let open = true;
    const ready = Promise.all([conn.unsafe('begin', [], PREPARED), conn.unsafe(prelude.text, prelude.params as Params, PREPARED)]);
    ready.catch(() => {});
    const tx: TenantTransaction = {
      query: async <R extends Row>(text: string, params: readonly unknown[] = []) => {
        if (!open) throw new TenantryError('internal_error', 'this transaction has ended; its handle cannot be used any more');
        try {
          const [, rows] = await Promise.all([ready, conn.unsafe(text, params as Params, PREPARED)]);
          return rows as unknown as R[];
        } catch (err) {
          failed = true;
          throw mapError(err);
        }
      },
    };
    try {
      const result = await fn(tx);
      await ready;
      if (failed) throw new TenantryError('internal_error', 'a statement failed inside the transaction');
      open = false;
      await conn.unsafe('commit', [], PREPARED);
      return result;
    } catch (err) {
      open = false;
      await conn.unsafe('rollback', [], PREPARED).catch(() => {});
      throw mapError(err);
    } finally {
      open = false;
      release();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#placements.values()].map((p) => p.close()));
  }
}

function mapError(err: unknown): unknown {
  if (err instanceof TenantryError) return err;
  if (isConnectionError(err)) return new TenantryError('database_unavailable', undefined, undefined, { cause: err });
  return err;
}
