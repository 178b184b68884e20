import type { Tenant } from '../../catalog/types.js';
import { TenantryError } from '../../errors.js';
import { schemas } from '../bootstrap.js';
import { ident, isConnectionError, type Sql, type SqlConnection } from '../driver/index.js';
import type { Lease, Placement } from '../placement.js';

const POOLED_SCOPE = Object.freeze({ searchPath: schemas.pooled });

/**
 * Shared schema `app`, rows told apart by tenant_id and filtered by RLS.
 *
 * Every transaction is scoped with transaction-local settings (see contextStatement), so the
 * next transaction on the same pooled connection (or behind PgBouncer in transaction mode) starts
 * with no tenant. search_path is set the same way, so unqualified table names resolve to the
 * placement's schema and never to `public`.
 */
export class PooledPlacement implements Placement {
  readonly isolation = 'pooled' as const;
  readonly #pool: Sql;
  readonly #admin: Sql;

  constructor(pool: Sql, admin: Sql) {
    this.#pool = pool;
    this.#admin = admin;
  }

  async acquire(): Promise<Lease> {
    const conn = await reserve(this.#pool);
    return { conn, scope: POOLED_SCOPE, release: (discard) => conn.release(discard) };
  }

  async provision(): Promise<void> {
    // Nothing to create: the shared schema exists once per shard.
  }

  async migrate(): Promise<void> {
    // Nothing of the tenant's own: the shared schema is one migration target for all its tenants.
  }

  /** Deletes the tenant's rows from every table of the shared schema, children before parents. */
  async deprovision(tenant: Tenant): Promise<void> {
    await deleteTenantRows(this.#admin, schemas.pooled, tenant.id);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/** Deletes a tenant's rows from every tenant table of `schema` in one transaction (as the admin). */
export async function deleteTenantRows(admin: Sql, schema: string, tenantId: string): Promise<void> {
  await admin.transaction(async (tx) => {
    const tables = await tx.query<{ name: string }>(`
      select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
      where n.nspname = $1 and c.relkind in ('r', 'p')`, [schema]);
    const edges = await tx.query<{ child: string; parent: string }>(`
      select c.relname as child, p.relname as parent from pg_constraint k
      join pg_class c on c.oid = k.conrelid join pg_class p on p.oid = k.confrelid
      join pg_namespace n on n.oid = c.relnamespace
      where k.contype = 'f' and n.nspname = $1 and k.conrelid <> k.confrelid`, [schema]);
    for (const table of childrenFirst(tables.map((t) => t.name), edges)) {
      await tx.query(`delete from ${ident(schema)}.${ident(table)} where tenant_id = $1`, [tenantId]);
    }
  });
}

/** Tables ordered so that each comes before every table it references. */
function childrenFirst(tables: readonly string[], edges: readonly { child: string; parent: string }[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (t: string) => {
    if (seen.has(t)) return;
    seen.add(t);
    for (const e of edges) if (e.parent === t) visit(e.child);
    out.push(t);
  };
  for (const t of tables) visit(t);
  return out.filter((t) => tables.includes(t));
}

/** A connection from the pool; a server that cannot be reached is a 503, not a 500. */
export async function reserve(pool: Sql, affinity?: string): Promise<SqlConnection> {
  try {
    return await pool.connect(affinity);
  } catch (err) {
    if (isConnectionError(err)) throw new TenantryError('database_unavailable', undefined, undefined, { cause: err });
    throw err;
  }
}
