import type { Tenant } from '../../catalog/types.js';
import { TenantryError } from '../../errors.js';
import { schemas } from '../bootstrap.js';
import { reserve } from '../pooled/pooled-placement.js';
import type { Lease, Placement, TenantMigrator } from '../placement.js';
import { createPool, ident, sqlState, withDatabase, type Sql } from '../driver/index.js';
import { tenantDatabase } from '../../core/tenant-ids.js';
import { ConnectionBudget } from './connection-budget.js';

export interface DatabasePlacementOptions {
  /** Admin URL of the shard (creates databases, runs migrations). */
  readonly adminUrl: string;
  /** Runtime role URL of the shard; the database name is replaced per tenant. */
  readonly runtimeUrl: string;
  /** Prepares and migrates a tenant database (the migrate module's, handed over by the wiring). */
  readonly migrator: TenantMigrator;
  /** Named prepared statements on the runtime pools (off behind a transaction pooler). */
  readonly prepare?: boolean;
  /** Server connections all tenant pools of this shard may hold together. */
  readonly maxConnections: number;
  /** Connections of one tenant's pool. */
  readonly perTenantConnections: number;
  /** How long a request waits for a connection before a 503, milliseconds. */
  readonly acquireTimeoutMs: number;
  /** A tenant pool unused this long is closed, seconds. */
  readonly idleSeconds: number;
}

interface TenantPool {
  readonly pool: Sql;
  /** Uses claimed and not yet released; a pool with any is never closed. */
  inFlight: number;
  lastUsed: number;
}

/** A pool being opened, and how many callers wait for it (each gets one use claimed for it). */
interface Opening {
  promise: Promise<TenantPool>;
  claims: number;
}

/**
 * A database `tenant_<hex>` per tenant, each with its own small pool, opened on first use.
 *
 * Why LRU-bounded: a thousand tenant databases with a pool each would need thousands of server
 * connections, and PostgreSQL's max_connections is a hard wall that takes every tenant down when
 * hit. All tenant pools of the shard draw from one connection budget; to open a pool, idle pools
 * are closed least-recently-used first; when every connection is busy, the request that cannot
 * get one waits briefly and then gets a 503 with Retry-After — the tenants already connected go on.
 */
export class DatabasePlacement implements Placement {
  readonly isolation = 'database' as const;
  readonly #opts: DatabasePlacementOptions;
  readonly #budget: ConnectionBudget;
  /** Map order is recency: the first entry is the least recently used. */
  readonly #pools = new Map<string, TenantPool>();
  readonly #opening = new Map<string, Opening>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(opts: DatabasePlacementOptions) {
    if (opts.perTenantConnections > opts.maxConnections) throw new RangeError('perTenantConnections exceeds maxConnections');
    this.#opts = opts;
    this.#budget = new ConnectionBudget(opts.maxConnections);
    this.#sweeper = setInterval(() => void this.#sweep(), Math.max(1000, (opts.idleSeconds * 1000) / 2));
    this.#sweeper.unref();
  }

  /** Server connections the tenant pools may hold right now (open pools × their size). */
  get connectionsReserved(): number {
    return this.#budget.used;
  }

  get openPools(): number {
    return this.#pools.size;
  }

  async acquire(tenant: Tenant): Promise<Lease> {
    // The use is claimed (inFlight counted) by #claim itself, never after an await: a pool with
    // nothing in flight may be closed by any other request that needs its connection, and one
    // just opened or found has nothing in flight until its caller resumes.
    const entry = await this.#claim(tenant);
    try {
      const conn = await reserve(entry.pool);
      let released = false;
      return {
        conn,
        scope: { searchPath: schemas.pooled },
        release: (discard) => {
          if (released) return;
          released = true;
          conn.release(discard);
          entry.inFlight--;
          entry.lastUsed = Date.now();
          this.#budgetChanged();
        },
      };
    } catch (err) {
      entry.inFlight--;
      this.#budgetChanged();
      if (sqlState(err) === '3D000') throw new TenantryError('database_unavailable', 'the tenant database does not exist');
      throw err;
    }
  }

  /** The tenant's pool with one use claimed for the caller, in the same tick as it is found or created. */
  #claim(tenant: Tenant): Promise<TenantPool> {
    const existing = this.#pools.get(tenant.id);
    if (existing) {
      this.#pools.delete(tenant.id);
      this.#pools.set(tenant.id, existing);
      existing.inFlight++;
      return Promise.resolve(existing);
    }
    let opening = this.#opening.get(tenant.id);
    if (opening) {
      opening.claims++;
      return opening.promise;
    }
    opening = { promise: undefined as unknown as Promise<TenantPool>, claims: 1 };
    this.#opening.set(tenant.id, opening);
    opening.promise = this.#open(tenant, opening).finally(() => this.#opening.delete(tenant.id));
    return opening.promise;
  }

  async #open(tenant: Tenant, opening: Opening): Promise<TenantPool> {
    const need = this.#opts.perTenantConnections;
    const deadline = Date.now() + this.#opts.acquireTimeoutMs;
    while (!this.#budget.tryTake(need)) {
      const victim = [...this.#pools.entries()].find(([, p]) => p.inFlight === 0);
      if (victim) {
        await this.#close(victim[0], victim[1]);
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new TenantryError('database_busy', 'all database connections of this shard are in use', { retry_after: 1 });
      }
      await this.#budget.changed(left);
    }
    const pool = createPool(withDatabase(this.#opts.runtimeUrl, tenantDatabase(tenant.id)), {
      max: need, idleTimeout: this.#opts.idleSeconds, applicationName: 'tenantry-tenant', prepare: this.#opts.prepare,
    });
    // Every caller waiting for this pool has its use claimed now; later callers find it in #pools.
    const entry: TenantPool = { pool, inFlight: opening.claims, lastUsed: Date.now() };
    this.#pools.set(tenant.id, entry);
    return entry;
  }

  /** Closes a pool; its share of the budget is returned only once its connections are gone. */
  async #close(tenantId: string, entry: TenantPool): Promise<void> {
    if (this.#pools.get(tenantId) !== entry) return;
    this.#pools.delete(tenantId);
    try {
      await entry.pool.end();
    } finally {
      this.#budget.give(this.#opts.perTenantConnections);
    }
  }

  #budgetChanged(): void {
    // A released connection can let a waiting tenant evict an idle pool.
    this.#budget.give(0);
  }

  async #sweep(): Promise<void> {
    const cutoff = Date.now() - this.#opts.idleSeconds * 1000;
    for (const [id, entry] of [...this.#pools.entries()]) {
      if (entry.inFlight === 0 && entry.lastUsed < cutoff) await this.#close(id, entry).catch(() => {});
    }
  }

  async provision(tenant: Tenant): Promise<void> {
    const name = tenantDatabase(tenant.id);
    const admin = createPool(this.#opts.adminUrl, { max: 1, applicationName: 'tenantry-admin' });
    try {
      const exists = await admin.query('select 1 from pg_database where datname = $1', [name]);
      if (!exists.length) {
        try {
          await admin.query(`create database ${ident(name)}`);
        } catch (err) {
          if (sqlState(err) !== '42P04') throw err; // created concurrently: fine
        }
      }
    } finally {
      await admin.end();
    }
    await this.migrate(tenant);
  }

  /** Prepares the tenant's database (schemas, RLS helper, privileges) and applies pending tenant migrations. */
  async migrate(tenant: Tenant): Promise<void> {
    const name = tenantDatabase(tenant.id);
    const result = await this.#opts.migrator.database(withDatabase(this.#opts.adminUrl, name), `database:${name}`);
    if (result.status === 'failed') throw new Error(`migrating ${tenant.slug}: ${result.error}`);
  }

  /** Closes the tenant's pool and drops its database (connections still open are terminated). */
  async deprovision(tenant: Tenant): Promise<void> {
    const entry = this.#pools.get(tenant.id);
    if (entry) await this.#close(tenant.id, entry);
    const admin = createPool(this.#opts.adminUrl, { max: 1, applicationName: 'tenantry-admin' });
    try {
      await admin.query(`drop database if exists ${ident(tenantDatabase(tenant.id))} with (force)`);
    } finally {
      await admin.end();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await Promise.all([...this.#pools.entries()].map(([id, e]) => this.#close(id, e)));
  }
}
