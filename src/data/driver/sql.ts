/**
 * The toolkit's own view of a PostgreSQL driver: only the calls tenantry makes. Everything outside
 * src/data/driver/ depends on these interfaces, never on the driver package (as kysely's
 * `DatabaseConnection` names only what it uses), so the driver can be swapped or wrapped.
 */

export type Row = Record<string, unknown>;

/** One statement with positional parameters ($1, $2, ...). */
export interface Statement {
  readonly text: string;
  readonly params?: readonly unknown[];
  /**
   * Statements whose plan depends on the session (search_path, role) give the key it depends on
   * (a schema tenant's id): each key gets prepared statements of its own, so switching tenants on
   * a connection does not make PostgreSQL re-plan them.
   */
  readonly planKey?: string;
}

/** Transaction state the server reported when a pipeline ended (its ReadyForQuery). */
export type TransactionStatus = 'idle' | 'transaction' | 'failed';

export interface Queryable {
  /** Runs one statement; its parameters are sent separately from the text (no interpolation). */
  query<T = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * Runs a script of one or more statements without parameters (simple query protocol): for
   * migration files and DDL, never for anything that carries a value.
   */
  execute(script: string): Promise<void>;
}

/** A connection lent by a pool, for one caller until release(). */
export interface SqlConnection extends Queryable {
  /**
   * Sends the statements back to back and ends them with a single Sync: one network round trip
   * and, outside an explicit transaction, one implicit transaction — statements before a Sync
   * commit or roll back together, and transaction-local settings made by one are seen by the
   * next and gone after the last. Resolves with each statement's rows; the first error rejects
   * (the server then skips the rest up to the Sync).
   */
  pipeline(statements: readonly Statement[]): Promise<Row[][]>;
  /** The transaction state after the last pipeline or query ('idle' outside a transaction). */
  readonly transactionStatus: TransactionStatus;
  /** Asks the server to cancel the statement this connection is running (no-op when idle). */
  cancel(): Promise<void>;
  /** Gives the connection back; `discard` closes it instead (its state cannot be trusted). */
  release(discard?: boolean): void;
}

export interface PoolStats {
  /** Open server connections. */
  readonly total: number;
  readonly idle: number;
  /** Callers waiting for a connection. */
  readonly waiting: number;
}

/** A pool of connections to one database as one role. */
export interface Sql extends Queryable {
  /**
   * A connection; with `affinity`, one that has served the same key before if the pool can
   * (see PoolOptions.lanes), so its prepared statements are still there.
   */
  connect(affinity?: string): Promise<SqlConnection>;
  /** BEGIN, fn, COMMIT on one connection (ROLLBACK when fn throws). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * LISTEN on a connection of its own, re-established after a failure. `onConnect` runs after
   * every (re)connection: notifications sent while it was down are lost. Resolves once listening
   * (rejects if the first connection fails); the returned function stops.
   */
  listen(channel: string, onNotify: (payload: string) => void, onConnect?: () => void): Promise<() => Promise<void>>;
  readonly stats: PoolStats;
  end(): Promise<void>;
}

export interface PoolOptions {
  /** Maximum server connections of this pool. */
  readonly max?: number;
  /** Seconds an idle connection is kept. */
  readonly idleTimeout?: number;
  /** Seconds to wait for a connection (opening one, or one of the pool's to be free). */
  readonly connectTimeout?: number;
  readonly applicationName?: string;
  /**
   * Named prepared statements, parsed once per connection. Off behind a transaction pooler
   * (PgBouncer before 1.21 cannot route them): every statement is then sent as the unnamed
   * statement, still pipelined, still one round trip.
   */
  readonly prepare?: boolean;
  /** Named statements one connection keeps prepared (least recently used are closed); default 500. */
  readonly statementCache?: number;
  /**
   * Splits the pool into this many lanes (sub-pools, `max` shared among them). connect(affinity)
   * takes a connection of the affinity's lane when one is free there, else any free one (and waits
   * on its own lane only when every connection is busy); connect() without affinity takes any.
   * Default 1.
   */
  readonly lanes?: number;
}

/** Is this a PostgreSQL server error with a SQLSTATE (as opposed to a connection failure)? */
export function sqlState(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    const code = (err as { code: string }).code;
    return /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  }
  return undefined;
}

/** Connection-level failures (refused, reset, timeouts, server shutting down). */
export function isConnectionError(err: unknown): boolean {
  const state = sqlState(err);
  if (state) return state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03' || state === '53300';
  const e = err as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_|CONNECT_TIMEOUT|CONNECTION_)/.test(e.code)) return true;
  return typeof e?.message === 'string' && /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection refused)/.test(e.message);
}
