import type { Isolation, Tenant } from '../catalog/types.js';
import type { ReservedSql } from './postgres-driver.js';

/** One statement with positional parameters ($1, $2, ...). */
export interface Statement {
  readonly text: string;
  readonly params: readonly unknown[];
}

/** The transaction-local context of a lease, as a parameterised statement and as the opening message. */
export interface Prelude extends Statement {
  /**
   * `begin; select set_config(...)` with the values inlined: one simple-protocol message that
   * opens the transaction and scopes it, so a one-statement read is three protocol messages
   * instead of four. The values are checked against strict patterns before they are inlined.
   */
  readonly open: string;
}

/** A connection lent for one tenant transaction, and the statement that scopes it. */
export interface Lease {
  readonly conn: ReservedSql;
  /** Runs first inside every transaction; sets only transaction-local settings. */
  readonly prelude: Prelude;
  /** Gives the connection back; called exactly once, after COMMIT or ROLLBACK. */
  release(): void;
}

/**
 * A placement model (DESIGN.md, "one schema, three placements"). Each implementation lives in its
 * own folder under src/data/ and runs the shared contract suite (test/placements.test.ts).
 */
export interface Placement {
  readonly isolation: Isolation;
  /** A connection for a transaction of `tenant`, and how to scope it. */
  acquire(tenant: Tenant): Promise<Lease>;
  /** Creates what the tenant needs in this placement (schema, role, database); idempotent. */
  provision(tenant: Tenant): Promise<void>;
  /** Closes the pools this placement opened. */
  close(): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

function literal(value: string, pattern: RegExp): string {
  // The only values inlined are a tenant id from the catalog and names derived from it; anything
  // else is a bug, and refusing it here keeps a quote from ever reaching the SQL text.
  if (!pattern.test(value)) throw new TypeError(`refusing to inline ${JSON.stringify(value)} into the context prelude`);
  return `'${value}'`;
}

/** The transaction-local settings every placement sets: tenant id and search_path (never `public`). */
export function contextPrelude(tenantId: string, searchPath: string, role?: string): Prelude {
  const id = literal(tenantId, UUID);
  const path = literal(searchPath, IDENTIFIER);
  return role
    ? {
      text: "select set_config('app.tenant_id', $1, true), set_config('search_path', $2, true), set_config('role', $3, true)",
      params: [tenantId, searchPath, role],
      open: `begin; select set_config('app.tenant_id', ${id}, true), set_config('search_path', ${path}, true), set_config('role', ${literal(role, IDENTIFIER)}, true)`,
    }
    : {
      text: "select set_config('app.tenant_id', $1, true), set_config('search_path', $2, true)",
      params: [tenantId, searchPath],
      open: `begin; select set_config('app.tenant_id', ${id}, true), set_config('search_path', ${path}, true)`,
    };
}
