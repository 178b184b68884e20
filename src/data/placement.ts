import type { Isolation, Tenant } from '../catalog/types.js';
import type { Sql, SqlConnection, Statement } from './driver/index.js';

/** Where a tenant's transaction runs inside its connection: search_path and, for schema tenants, the role. */
export interface SessionScope {
  readonly searchPath: string;
  readonly role?: string;
  /**
   * Set where statements plan differently per tenant (schema tenants: their own search_path and
   * role): the tenant's statements are prepared under names of their own (see Statement.planKey).
   */
  readonly planKey?: string;
}

/** A connection lent for one tenant transaction, and how to scope it. */
export interface Lease {
  readonly conn: SqlConnection;
  readonly scope: SessionScope;
  /** Gives the connection back; called exactly once. `discard` closes it instead. */
  release(discard?: boolean): void;
}

/**
 * A placement model (DESIGN.md, "one schema, three placements"): it owns the life of a tenant's
 * data in that model. Each implementation lives in its own folder under src/data/ and runs the
 * shared contract suite (test/placements.test.ts).
 */
export interface Placement {
  readonly isolation: Isolation;
  /** A connection for a transaction of `tenant`, and how to scope it. */
  acquire(tenant: Tenant): Promise<Lease>;
  /** Creates what the tenant needs in this placement (schema, role, database) and migrates it; idempotent. */
  provision(tenant: Tenant): Promise<void>;
  /**
   * Brings what the tenant has in this placement (its schema or database) up to date with the
   * tenant migrations, through the TenantMigrator it was given; idempotent. The pooled placement
   * has nothing of its own: the shared schema is migrated as one target for every tenant.
   */
  migrate(tenant: Tenant): Promise<void>;
  /** Removes every row and object of the tenant in this placement; idempotent. */
  deprovision(tenant: Tenant): Promise<void>;
  /** Closes the pools this placement opened. */
  close(): Promise<void>;
}

/** What applying the tenant migrations to one target came to (a migrate module's TargetResult). */
export interface MigrationOutcome {
  readonly status: 'applied' | 'up_to_date' | 'pending' | 'failed';
  readonly error?: string;
}

/**
 * How placements bring their targets up to date with the tenant migrations. The migrate module
 * implements it (src/migrate/tenant-migrator.ts) and the wiring (Tenantry) hands it to the
 * placements: data/ never imports migrate/, which builds on data/ (the driver, the bootstrap).
 */
export interface TenantMigrator {
  /** A schema tenant's schema on a shard (`admin` is the shard's admin pool); `runtimeRole` gets DML on its tables. */
  schema(admin: Sql, schema: string, runtimeRole: string, label: string): Promise<MigrationOutcome>;
  /** A tenant database (`adminUrl` names it): prepared (schemas, RLS helper, privileges), then migrated. */
  database(adminUrl: string, label: string): Promise<MigrationOutcome>;
}

/**
 * The statement that scopes a transaction: tenant id, search_path (never `public`), the role of a
 * schema tenant and the statement timeout — all with set_config(..., true), local to the
 * transaction (or to the implicit transaction of one pipeline), so nothing of it survives COMMIT,
 * ROLLBACK or an error, and a pooled connection (or a PgBouncer server connection) goes back with
 * no tenant on it. A session-level SET would hand this tenant's context to the next borrower.
 * The calls sit in FROM and the statement returns a row with no columns: nothing to send back
 * and parse on every read (measured: ~6 µs of Node CPU per read less than returning the values).
 */
export function contextStatement(tenantId: string, scope: SessionScope, statementTimeoutMs = 0): Statement {
  const timeout = String(Math.max(0, Math.trunc(statementTimeoutMs)));
  return scope.role
    ? {
      text: "select from set_config('app.tenant_id', $1, true) t, set_config('search_path', $2, true) p, set_config('statement_timeout', $3, true) s, set_config('role', $4, true) r",
      params: [tenantId, scope.searchPath, timeout, scope.role],
    }
    : {
      text: "select from set_config('app.tenant_id', $1, true) t, set_config('search_path', $2, true) p, set_config('statement_timeout', $3, true) s",
      params: [tenantId, scope.searchPath, timeout],
    };
}
