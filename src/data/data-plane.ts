import type { Isolation, Tenant } from '../catalog/types.js';
import { requireTenantScope, type CancelSignal } from '../context/tenant-context.js';
import { events, publishTransaction, startTimer } from '../core/events.js';
import { TenantryError } from '../errors.js';
import { isConnectionError, sqlState, type Row, type SqlConnection } from './driver/index.js';
import { contextStatement, type Lease, type Placement } from './placement.js';

export interface TenantTransaction {
  /** Runs one statement inside the tenant-scoped transaction. */
  query<T = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface DataPlaneOptions {
  /** Statements running longer are cancelled by the server (503 query_timeout); 0 = no limit. */
  readonly statementTimeoutMs?: number;
}

/**
 * The only way to tenant data. Every call takes its tenant from the async context, never from a
 * parameter a caller could forget or forge; outside a tenant scope it throws
 * TenantContextMissingError before any SQL is sent.
 */
export class DataPlane {
  readonly #placements: ReadonlyMap<Isolation, Placement>;
  readonly #statementTimeoutMs: number;

  constructor(placements: readonly Placement[], options: DataPlaneOptions = {}) {
    this.#placements = new Map(placements.map((p) => [p.isolation, p]));
    this.#statementTimeoutMs = options.statementTimeoutMs ?? 0;
  }

  placement(isolation: Isolation): Placement {
    const placement = this.#placements.get(isolation);
    if (!placement) throw new TenantryError('isolation_unavailable', `no ${isolation} placement is configured`);
    return placement;
  }

  /** A lease for `tenant`; with `t0` (subscribers to tenantry:data:transaction), a failure is published too. */
  #acquire(tenant: Tenant, t0: number, kind: 'query' | 'transaction'): Promise<Lease> {
    const lease = this.placement(tenant.isolation).acquire(tenant);
    return t0 === 0 ? lease : lease.catch((err: unknown) => { publishTransaction(t0, tenant, kind, err); throw err; });
  }

  /**
   * One statement in a tenant-scoped transaction, in one round trip and one Sync: the context
   * statement and the statement, then Sync. Before a Sync they are one implicit transaction, so
   * the transaction-local context holds for the statement and is gone after it, on success and
   * on error alike (the server skips to the Sync and rolls back).
   */
  async query<T = Row>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    const { tenant, signal } = requireTenantScope('query()');
    const t0 = startTimer(events.transaction);
    const lease = await this.#acquire(tenant, t0, 'query');
    const stopWatching = cancelOnAbort(signal, lease.conn);
    let broken = false;
    let failure: unknown;
    try {
      const statements = [contextStatement(tenant.id, lease.scope, this.#statementTimeoutMs), { text, params, planKey: lease.scope.planKey }];
      try {
        return (await lease.conn.pipeline(statements))[1] as T[];
      } catch (err) {
        // 0A000: a migration changed the result type of a statement this connection had prepared.
        // The read rolled back whole and the driver forgot the statement: run it once more.
        if (sqlState(err) !== '0A000') throw err;
        return (await lease.conn.pipeline(statements))[1] as T[];
      }
    } catch (err) {
      broken = isConnectionError(err);
      throw (failure = mapError(err));
    } finally {
      broken = stopWatching() || broken;
      // A statement that left a transaction open (a bare BEGIN) makes the connection unusable for
      // anyone else: release() discards a connection that is not idle.
      lease.release(broken);
      publishTransaction(t0, tenant, 'query', failure);
    }
  }

  /**
   * Several statements in one tenant-scoped transaction. BEGIN and the context are pipelined
   * with the first statement (a transaction that runs no statement sends nothing); COMMIT on
   * success, ROLLBACK on any error.
   */
  async transaction<T>(fn: (tx: TenantTransaction) => Promise<T>): Promise<T> {
    const { tenant, signal } = requireTenantScope('transaction()');
    const t0 = startTimer(events.transaction);
    const lease = await this.#acquire(tenant, t0, 'transaction');
    let failure: unknown;
    const { conn } = lease;
    const stopWatching = cancelOnAbort(signal, conn);
    let begun = false;
    let failed = false;
    let broken = false;
    // Once the transaction ends the connection goes back to the pool and may serve another
    // tenant: a handle kept past that point (a timer, an un-awaited helper) must not reach it.
    let open = true;
    const tx: TenantTransaction = {
      query: async <R = Row>(text: string, params: readonly unknown[] = []) => {
        if (!open) throw new TenantryError('internal_error', 'this transaction has ended; its handle cannot be used any more');
        try {
          if (!begun) {
            begun = true;
            const [, , rows] = await conn.pipeline([
              { text: 'begin' }, contextStatement(tenant.id, lease.scope, this.#statementTimeoutMs), { text, params, planKey: lease.scope.planKey },
            ]);
            return rows as R[];
          }
          return (await conn.pipeline([{ text, params, planKey: lease.scope.planKey }]))[0] as R[];
        } catch (err) {
          failed = true;
          broken ||= isConnectionError(err);
          throw mapError(err);
        }
      },
    };
    try {
      const result = await fn(tx);
      if (failed) throw new TenantryError('internal_error', 'a statement failed inside the transaction');
      open = false;
      if (begun) await conn.query('commit');
      return result;
    } catch (err) {
      open = false;
      if (begun && !broken) await conn.query('rollback').catch(() => { broken = true; });
      broken ||= isConnectionError(err);
      throw (failure = mapError(err));
    } finally {
      open = false;
      broken = stopWatching() || broken;
      lease.release(broken);
      publishTransaction(t0, tenant, 'transaction', failure);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#placements.values()].map((p) => p.close()));
  }
}

/**
 * While a statement runs, a client that goes away (the signal aborts) has it cancelled on the
 * server. The returned function stops watching and tells whether a cancel was sent: such a
 * connection is discarded, not released, because a CancelRequest still on its way could otherwise
 * land on the next borrower's statement.
 */
function cancelOnAbort(signal: CancelSignal | undefined, conn: SqlConnection): () => boolean {
  if (!signal) return () => false;
  let sent = false;
  const cancel = () => {
    sent = true;
    void conn.cancel().catch(() => {});
  };
  if (signal.aborted) cancel();
  else signal.addEventListener('abort', cancel, { once: true });
  return () => {
    signal.removeEventListener('abort', cancel);
    return sent;
  };
}

function mapError(err: unknown): unknown {
  if (err instanceof TenantryError) return err;
  if (isConnectionError(err)) return new TenantryError('database_unavailable', undefined, undefined, { cause: err });
  // 57014 query_canceled: the statement timeout, or a cancel for a client that went away (whose
  // answer nobody reads).
  if (sqlState(err) === '57014') return new TenantryError('query_timeout', undefined, undefined, { cause: err });
  return err;
}
