/** The driver seam: the toolkit's interfaces and the one implementation, node-postgres. */
export type { PoolOptions, PoolStats, Queryable, Row, Sql, SqlConnection, Statement, TransactionStatus } from './sql.js';
export { isConnectionError, sqlState } from './sql.js';
export { createPool } from './node-postgres/pool.js';
export { ident, quoteIdent } from './identifiers.js';
export { databaseName, withCredentials, withDatabase, withEndpoint } from './connection-url.js';
