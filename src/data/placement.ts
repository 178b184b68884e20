import type { Isolation, Tenant } from '../catalog/types.js';
import type { ReservedSql } from './postgres-driver.js';

/** One statement with positional parameters ($1, $2, ...). */
export interface Statement {
  readonly text: string;
  readonly params: readonly unknown[];
}

/** A connection lent for one tenant transaction, and the statement that scopes it. */
export interface Lease {
  readonly conn: ReservedSql;
  /** Runs first inside every transaction; sets only transaction-local settings. */
  readonly prelude: Statement;
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

/** The transaction-local settings every placement sets: tenant id and search_path (never `public`). */
export function contextPrelude(tenantId: string, searchPath: string, role?: string): Statement {
  return role
    ? {
      text: "select set_config('app.tenant_id', $1, true), set_config('search_path', $2, true), set_config('role', $3, true)",
      params: [tenantId, searchPath, role],
    }
    : {
      text: "select set_config('app.tenant_id', $1, true), set_config('search_path', $2, true)",
      params: [tenantId, searchPath],
    };
}
