import pg from 'pg';
import type { PoolOptions, PoolStats, Queryable, Row, Sql, SqlConnection } from '../sql.js';
import { NodePostgresConnection } from './connection.js';

/**
 * The one module that knows the PostgreSQL driver: node-postgres (pg). It was chosen because its
 * Client accepts custom query objects that write protocol messages themselves, which is what lets
 * a scoped read be set_config + statement + one Sync (see PipelinedQuery); postgres.js always
 * ends each statement with its own Sync. This folder is that module: the pool and its lanes
 * (here), a lent connection (connection.ts), the pipelined query (pipelined-query.ts) and the
 * prepared-statement bookkeeping (statement-cache.ts).
 */

const DEFAULT_STATEMENT_CACHE = 500;
/** Affinities a lane remembers serving as a guest. */
const GUESTS_PER_LANE = 32;

/** FNV-1a: a stable, cheap hash of an affinity key to a lane. */
function laneOf(key: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % lanes;
}

class NodePostgresPool implements Sql {
  /** Sub-pools (one unless PoolOptions.lanes), each a node-postgres pool. */
  readonly #lanes: pg.Pool[];
  /**
   * Connections of each lane taken or being taken, counted when connect() decides (node-postgres
   * hands out an idle connection a tick later, so its own counts lag behind same-tick callers).
   */
  readonly #taken: number[];
  readonly #sizes: number[];
  /** Per lane, affinities it served as a guest lately (least recent first): their plans may be there. */
  readonly #guests: Map<string, true>[];
  /** Callers waiting for a connection of any lane, first come first served. */
  readonly #anyLane: { take(lane: number): void }[] = [];
  readonly #url: string;
  readonly #options: PoolOptions;
  readonly #listeners = new Set<() => Promise<void>>();

  constructor(url: string, options: PoolOptions) {
    this.#url = url;
    this.#options = options;
    const max = options.max ?? 10;
    const lanes = Math.max(1, Math.min(options.lanes ?? 1, max));
    // max split as evenly as it goes: 10 over 4 lanes is 3, 3, 2, 2.
    this.#sizes = Array.from({ length: lanes }, (_, i) => Math.floor(max / lanes) + (i < max % lanes ? 1 : 0));
    this.#taken = this.#sizes.map(() => 0);
    this.#guests = this.#sizes.map(() => new Map());
    this.#lanes = this.#sizes.map((size) => {
      const pool = new pg.Pool({
        connectionString: url,
        max: size,
        idleTimeoutMillis: (options.idleTimeout ?? 30) * 1000,
        connectionTimeoutMillis: (options.connectTimeout ?? 5) * 1000,
        application_name: options.applicationName ?? 'tenantry',
        keepAlive: true,
      });
      // An idle connection that dies (server restart) must not crash the process; the next
      // checkout opens a fresh one.
      pool.on('error', () => {});
      // node-postgres drops its idle error listener while a client is checked out: keep one on for
      // good, the failure reaches the caller as the rejected query instead.
      pool.on('connect', (client) => client.on('error', () => {}));
      return pool;
    });
  }

  async connect(affinity?: string): Promise<SqlConnection> {
    let lane = this.#lane(affinity);
    // Every lane busy: wait for whichever frees first (never behind one lane's queue while
    // another lane's connection sits idle).
    if (lane < 0) lane = await this.#waitForAnyLane();
    else this.#taken[lane]!++;
    let client: pg.PoolClient;
    try {
      client = await this.#lanes[lane]!.connect();
    } catch (err) {
      this.#returned(lane);
      throw err;
    }
    const home = affinity !== undefined && (this.#lanes.length === 1 || laneOf(affinity, this.#lanes.length) === lane) ? affinity : undefined;
    if (home === undefined && affinity !== undefined) this.#guest(lane, affinity);
    return new NodePostgresConnection(client, this.#options.prepare ?? true, this.#options.statementCache ?? DEFAULT_STATEMENT_CACHE,
      () => this.#returned(lane), home);
  }

  /** A lane's connection came back (or was never got): the first waiter for any lane gets it. */
  #returned(lane: number): void {
    this.#taken[lane]!--;
    // Callers queued in the lane itself (taken beyond its size) come first: node-postgres hands
    // them the connection.
    if (this.#taken[lane]! >= this.#sizes[lane]!) return;
    const waiter = this.#anyLane.shift();
    if (waiter) {
      this.#taken[lane]!++;
      waiter.take(lane);
    }
  }

  #waitForAnyLane(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const timeoutMs = (this.#options.connectTimeout ?? 5) * 1000;
      const waiter = {
        take: (lane: number) => { clearTimeout(timer); resolve(lane); },
      };
      const timer = setTimeout(() => {
        const i = this.#anyLane.indexOf(waiter);
        if (i >= 0) this.#anyLane.splice(i, 1);
        reject(new Error('timeout exceeded when trying to connect'));
      }, timeoutMs);
      this.#anyLane.push(waiter);
    });
  }

  /**
   * The lane to take a connection from, or -1 to wait for any. With an affinity: its own lane when
   * a connection is free there; else a free lane it was a guest of lately (its plans may be
   * there); else, when its own lane has nobody waiting yet, its own (a short wait costs less CPU
   * than planning again elsewhere, and when the machine is busy CPU is what is short); else any
   * free lane (a tenant with many requests at once spreads over the pool, and each lane it uses
   * learns it). Without an affinity: any free lane.
   */
  #lane(affinity: string | undefined): number {
    const n = this.#lanes.length;
    if (n === 1) return 0;
    const taken = this.#taken;
    const sizes = this.#sizes;
    const free = (i: number) => taken[i]! < sizes[i]!;
    const own = affinity === undefined ? -1 : laneOf(affinity, n);
    if (own >= 0) {
      if (free(own)) return own;
      for (let i = 0; i < n; i++) if (free(i) && this.#guests[i]!.has(affinity!)) return i;
      if (taken[own] === sizes[own] && this.#anyLane.length === 0) return own;
    }
    for (let i = 0; i < n; i++) if (free(i)) return i;
    return -1;
  }

  /** Notes that lane `i` serves `affinity` as a guest (bounded, least recent dropped). */
  #guest(i: number, affinity: string): void {
    const guests = this.#guests[i]!;
    guests.delete(affinity);
    guests.set(affinity, true);
    if (guests.size > GUESTS_PER_LANE) guests.delete(guests.keys().next().value as string);
  }

  async query<T = Row>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    const conn = await this.connect();
    try {
      return await conn.query<T>(text, params);
    } finally {
      conn.release();
    }
  }

  async execute(script: string): Promise<void> {
    const conn = await this.connect();
    try {
      await conn.execute(script);
    } finally {
      conn.release(conn.transactionStatus !== 'idle');
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const conn = await this.connect();
    let discard = false;
    try {
      await conn.query('begin');
      try {
        const result = await fn({ query: (text, params) => conn.query(text, params), execute: (script) => conn.execute(script) });
        await conn.query('commit');
        return result;
      } catch (err) {
        await conn.query('rollback').catch(() => { discard = true; });
        throw err;
      }
    } finally {
      conn.release(discard);
    }
  }

  async listen(channel: string, onNotify: (payload: string) => void, onConnect?: () => void): Promise<() => Promise<void>> {
    let client: pg.Client | undefined;
    let stopped = false;
    let retry: NodeJS.Timeout | undefined;
    let delay = 250;
    const open = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.#url, application_name: `${this.#options.applicationName ?? 'tenantry'}-listen`, keepAlive: true,
        connectionTimeoutMillis: (this.#options.connectTimeout ?? 5) * 1000 });
      c.on('notification', (m) => { if (m.channel === channel) onNotify(m.payload ?? ''); });
      c.on('error', () => {});
      c.on('end', () => { if (!stopped && client === c) schedule(); });
      try {
        await c.connect();
        await c.query(`listen "${channel.replace(/"/g, '""')}"`);
      } catch (err) {
        // A connection that opened but could not LISTEN is closed, not left behind.
        await c.end().catch(() => {});
        throw err;
      }
      if (stopped) {
        // stop() ran while this reconnection was under way.
        await c.end().catch(() => {});
        return;
      }
      client = c;
      delay = 250;
      onConnect?.();
    };
    const schedule = () => {
      client = undefined;
      retry = setTimeout(() => {
        open().catch(() => { delay = Math.min(delay * 2, 5_000); if (!stopped) schedule(); });
      }, delay);
      retry.unref();
    };
    await open();
    const stop = async () => {
      stopped = true;
      clearTimeout(retry);
      this.#listeners.delete(stop);
      await client?.end().catch(() => {});
    };
    this.#listeners.add(stop);
    return stop;
  }

  get stats(): PoolStats {
    const sum = (f: (p: pg.Pool) => number) => this.#lanes.reduce((n, p) => n + f(p), 0);
    return { total: sum((p) => p.totalCount), idle: sum((p) => p.idleCount), waiting: sum((p) => p.waitingCount) + this.#anyLane.length };
  }

  async end(): Promise<void> {
    await Promise.all([...this.#listeners].map((stop) => stop()));
    // pg-pool waits for checked-out clients to come back; a leaked one must not hang shutdown.
    await Promise.race([Promise.all(this.#lanes.map((p) => p.end().catch(() => {}))), new Promise((r) => setTimeout(r, 5_000).unref())]);
  }
}

/** A pool of connections to `url`. */
export function createPool(url: string, options: PoolOptions = {}): Sql {
  return new NodePostgresPool(url, options);
}
