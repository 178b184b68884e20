import type { Isolation, Tenant } from '../catalog/types.js';
import type { Sql } from './postgres-driver.js';

/** One statement with positional parameters ($1, $2, ...). */
export interface Statement {
  readonly text: string;
  readonly params: readonly unknown[];
}

/** Where a tenant's rows live and the statement that scopes a transaction to that tenant. */
export interface ScopedTarget {
  readonly pool: Sql;
  /** Runs first inside every transaction; sets only transaction-local settings. */
  readonly prelude: Statement;
}

/**
 * A placement model (DESIGN.md, "one schema, three placements"). Each implementation lives in its
 * own folder under src/data/ and runs the shared contract suite (test/placement-contract.ts).
 */
export interface Placement {
  readonly isolation: Isolation;
  /** The pool and the scoping statement for a tenant's transactions. */
  target(tenant: Tenant): ScopedTarget | Promise<ScopedTarget>;
  /** Creates what the tenant needs in this placement; idempotent. */
  provision(tenant: Tenant): Promise<void>;
  /** Closes the pools this placement opened. */
  close(): Promise<void>;
}
