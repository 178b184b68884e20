import postgres from 'postgres';

/**
 * The one place that knows the PostgreSQL driver (porsager/postgres). It was chosen because it
 * pipelines: queries issued on a reserved connection without awaiting each other are written to
 * the socket together, which is what lets BEGIN, the tenant context, the statement and COMMIT
 * travel in one round trip.
 */
export type Sql = postgres.Sql<Record<string, never>>;
export type ReservedSql = postgres.ReservedSql<Record<string, never>>;
export type Row = Record<string, unknown>;
/** Statement parameters as the driver types them; values are serialized by the driver. */
export type Params = postgres.ParameterOrJSON<never>[];
export function params(values: readonly unknown[]): Params {
  return values as Params;
}

export interface PoolOptions {
  /** Maximum server connections of this pool. */
  max?: number;
  /** Seconds an idle connection is kept. */
  idleTimeout?: number;
  /** Seconds to wait for a connection to open. */
  connectTimeout?: number;
  applicationName?: string;
  /** Named prepared statements; turn off behind PgBouncer < 1.21 in transaction mode. */
  prepare?: boolean;
}

export function createPool(url: string, options: PoolOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    idle_timeout: options.idleTimeout ?? 30,
    connect_timeout: options.connectTimeout ?? 5,
    prepare: options.prepare ?? true,
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? 'tenantry' },
    // Keep bigint and numeric as strings: no silent precision loss.
    types: {},
  }) as unknown as Sql;
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
  if (state) return state.startsWith('08') || state.startsWith('57P') || state === '53300';
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|CONNECT_TIMEOUT|CONNECTION_|EAI_)/.test(code);
}

/** Replaces user name and password of a connection URL. */
export function withCredentials(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

/** Quotes an identifier that we built ourselves (never user input). */
export function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new TypeError(`refusing unsafe identifier ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** Quotes any identifier (for names we read from the server, such as current_database()). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
