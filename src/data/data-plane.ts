import type { Isolation, Tenant } from '../catalog/types.js';
import { requireTenantScope, type CancelSignal, type TenantScope } from '../context/tenant-context.js';
import { appendStatements, type AuditAppend, type AuditRecord } from '../audit-log/tenant-log-sql.js';
import { events, publishTransaction, startTimer } from '../core/events.js';
import { TenantryError } from '../errors.js';
import { isConnectionError, sqlState, type Row, type SqlConnection } from './driver/index.js';
import { contextStatement, type Lease, type Placement } from './placement.js';
import { FairSemaphore, type Release } from '../limits/fair-semaphore.js';

export interface TenantTransaction {
  /** Runs one statement inside the tenant-scoped transaction. */
  query<T = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * Records what this transaction does in the tenant's audit log: the entry is appended (hash
   * chained) just before COMMIT, in the same round trip, so the change and its entry commit
   * together or not at all. Who, the request and the client come from the scope.
   */
  audit(record: AuditRecord): void;
}

export interface DataPlaneOptions {
  /**
   * The platform's cap on statement time: statements running longer are cancelled by the server
   * (503 query_timeout); 0 = no cap. A tenant's own limit (`limitsOf`) applies under it.
   */
  readonly statementTimeoutMs?: number;
  /** A tenant's share of the shared pool and its statement timeout (its plan's, or its own). */
  readonly limitsOf?: (tenant: Tenant) => { readonly db_connections: number; readonly statement_timeout_ms: number };
  /** Connections of the shared pool (pooled and schema tenants) that the shares divide. */
  readonly sharedPoolSize?: number;
  /** How long a transaction waits for its tenant's share before 503 database_busy, ms. */
  readonly queueTimeoutMs?: number;
  /** Append audit entries (`tx.audit`)? Default true; false drops them (for measuring their cost). */
  readonly audit?: boolean;
  /** Told the new head of a tenant's audit chain once the transaction that appended it committed. */
  readonly onAuditAppended?: (tenantId: string, seq: number, hash: string) => void;
}

/**
 * The only way to tenant data. Every call takes its tenant from the async context, never from a
 * parameter a caller could forget or forge; outside a tenant scope it throws
 * TenantContextMissingError before any SQL is sent.
 */
export class DataPlane {
  readonly #placements: ReadonlyMap<Isolation, Placement>;
  readonly #statementTimeoutMs: number;
  readonly #limitsOf: DataPlaneOptions['limitsOf'];
  /** Shares of the shared pool's connections, per tenant, served in turn (see FairSemaphore). */
  readonly #shares: FairSemaphore | undefined;
  readonly #queueTimeoutMs: number;
  readonly #audit: boolean;
  readonly #onAuditAppended: DataPlaneOptions['onAuditAppended'];

  constructor(placements: readonly Placement[], options: DataPlaneOptions = {}) {
    this.#placements = new Map(placements.map((p) => [p.isolation, p]));
    this.#statementTimeoutMs = options.statementTimeoutMs ?? 0;
    this.#limitsOf = options.limitsOf;
    this.#shares = options.limitsOf && options.sharedPoolSize ? new FairSemaphore(options.sharedPoolSize) : undefined;
    this.#queueTimeoutMs = options.queueTimeoutMs ?? 5_000;
    this.#audit = options.audit ?? true;
    this.#onAuditAppended = options.onAuditAppended;
  }

  /**
   * The statement timeout of a tenant's transactions: its own limit under the platform's cap (the
   * smaller of the two that are set).
   */
  #timeoutOf(tenant: Tenant): number {
    const own = this.#limitsOf?.(tenant).statement_timeout_ms ?? 0;
    const cap = this.#statementTimeoutMs;
    return own > 0 && cap > 0 ? Math.min(own, cap) : own || cap;
  }

  /**
   * A permit within the tenant's share of the shared pool (pooled and schema tenants; a database
   * tenant has pools of its own). Undefined: no shares configured, or a database tenant.
   */
  #share(tenant: Tenant): Release | undefined | Promise<Release> {
    if (!this.#shares || tenant.isolation === 'database') return undefined;
    const share = this.#limitsOf!(tenant).db_connections;
    return this.#shares.tryAcquire(tenant.id, share) ?? this.#shares.acquire(tenant.id, share, {
      timeoutMs: this.#queueTimeoutMs,
      timeoutError: () => new TenantryError('database_busy', `no connection within the tenant's share came free in ${this.#queueTimeoutMs} ms`, { retry_after: 1 }),
    });
  }

  placement(isolation: Isolation): Placement {
    const placement = this.#placements.get(isolation);
    if (!placement) throw new TenantryError('isolation_unavailable', `no ${isolation} placement is configured`);
    return placement;
  }

  /** A lease for `tenant`; with `t0` (subscribers to tenantry:data:transaction), a failure is published too. */
  #acquire(tenant: Tenant, t0: number, kind: 'query' | 'transaction'): Promise<Lease> {
    const share = this.#share(tenant);
    const lease = share === undefined
      ? this.placement(tenant.isolation).acquire(tenant)
      : withShare(share, () => this.placement(tenant.isolation).acquire(tenant));
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
      const statements = [contextStatement(tenant.id, lease.scope, this.#timeoutOf(tenant)), { text, params, planKey: lease.scope.planKey }];
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
    const scope = requireTenantScope('transaction()');
    const { tenant, signal } = scope;
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
    const entries: AuditAppend[] = [];
    const tx: TenantTransaction = {
      audit: (record) => {
        if (!open) throw new TenantryError('internal_error', 'this transaction has ended; its handle cannot be used any more');
        if (this.#audit) entries.push(auditAppend(scope, record));
      },
      query: async <R = Row>(text: string, params: readonly unknown[] = []) => {
        if (!open) throw new TenantryError('internal_error', 'this transaction has ended; its handle cannot be used any more');
        try {
          if (!begun) {
            begun = true;
            const [, , rows] = await conn.pipeline([
              { text: 'begin' }, contextStatement(tenant.id, lease.scope, this.#timeoutOf(tenant)), { text, params, planKey: lease.scope.planKey },
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
      if (entries.length) {
        // The entries, their chain's lock and COMMIT in one round trip (with BEGIN and the context
        // when nothing else ran): an insert that fails skips the COMMIT, and the catch rolls back.
        const opening = begun ? [] : [{ text: 'begin' }, contextStatement(tenant.id, lease.scope, this.#timeoutOf(tenant))];
        begun = true;
        let results: Row[][];
        try {
          results = await conn.pipeline([...opening, ...appendStatements(tenant.id, entries, lease.scope.planKey), { text: 'commit' }]);
        } catch (err) {
          broken ||= isConnectionError(err);
          throw err;
        }
        // Committed: the last insert's row is the chain's new head (lock, then one insert per entry).
        const [head] = results[opening.length + entries.length] as { seq: string; hash: string }[];
        if (head) this.#onAuditAppended?.(tenant.id, Number(head.seq), head.hash);
      } else if (begun) await conn.query('commit');
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

  /** An audit entry in a transaction of its own (an event that changes nothing, e.g. a failed login). */
  record(record: AuditRecord): Promise<void> {
    return this.transaction(async (tx) => tx.audit(record));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#placements.values()].map((p) => p.close()));
  }
}

/** An entry with who, the request and the client taken from the scope. */
function auditAppend(scope: TenantScope, record: AuditRecord): AuditAppend {
  const p = scope.principal;
  return {
    record,
    actor: record.actor ?? (p ? { type: p.kind, id: p.id } : { type: 'anonymous', id: null }),
    requestId: scope.requestId ?? null,
    clientAddress: scope.clientAddress ?? null,
  };
}

/**
 * A lease whose release also gives back the tenant's share permit (taken first, so a tenant at its
 * share waits in its own queue and never holds a pool connection while waiting).
 */
async function withShare(share: Release | Promise<Release>, acquire: () => Promise<Lease>): Promise<Lease> {
  const permit = await share;
  let lease: Lease;
  try {
    lease = await acquire();
  } catch (err) {
    permit();
    throw err;
  }
  return {
    conn: lease.conn,
    scope: lease.scope,
    release: (discard?: boolean) => {
      lease.release(discard);
      permit();
    },
  };
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
