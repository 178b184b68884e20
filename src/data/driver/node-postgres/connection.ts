import pg from 'pg';
import type { Row, SqlConnection, Statement, TransactionStatus } from '../sql.js';
import { PipelinedQuery } from './pipelined-query.js';
import { newSession, statementName, type SessionState } from './statement-cache.js';

const TX_STATUS: Record<string, TransactionStatus> = { I: 'idle', T: 'transaction', E: 'failed' };

interface ClientInternals {
  readonly processID: number | null;
  readonly secretKey: number | null;
  readonly host: string;
  readonly port: number;
  getTransactionStatus(): string | null;
}

/** The parts of node-postgres' protocol Connection a CancelRequest needs (pg/lib/connection.js). */
interface CancelConnection {
  readonly stream: { destroy?(): void };
  connect(port: number | string, host?: string): void;
  cancel(processID: number, secretKey: number): void;
  once(event: 'connect' | 'end' | 'error', listener: () => void): void;
}

const sessions = new WeakMap<pg.PoolClient, SessionState>();

/** A connection lent by NodePostgresPool: pipelines, cancel, release (discarding a dirty one). */
export class NodePostgresConnection implements SqlConnection {
  readonly #client: pg.PoolClient;
  readonly #session: SessionState;
  readonly #prepare: boolean;
  /** The last call of this borrower, and how many have not settled yet (see #serial). */
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #released = false;

  readonly #onRelease: () => void;
  /** The affinity this connection's lane is home to, if it was taken for that affinity. */
  readonly #home: string | undefined;

  constructor(client: pg.PoolClient, prepare: boolean, statementCache: number, onRelease: () => void, home?: string) {
    this.#client = client;
    this.#onRelease = onRelease;
    this.#home = home;
    this.#prepare = prepare;
    let session = sessions.get(client);
    if (!session) sessions.set(client, (session = newSession(prepare ? statementCache : 0)));
    this.#session = session;
  }

  pipeline(statements: readonly Statement[]): Promise<Row[][]> {
    return this.#serial(() => new Promise<Row[][]>((resolve, reject) => {
      const names = statements.map((s) => (this.#prepare
        ? statementName(s.text, s.planKey, this.#session, s.planKey !== undefined && s.planKey !== this.#home) : ''));
      const query = new PipelinedQuery(statements, names, this.#session, (err, rows) => (err ? reject(err) : resolve(rows!)));
      query.callback = (err) => { if (err) reject(err); };
      this.#client.query(query as unknown as pg.QueryConfig);
    }));
  }

  execute(script: string): Promise<void> {
    return this.#serial(async () => { await this.#client.query(script); });
  }

  /**
   * Runs the calls of one borrower one after another (node-postgres deprecates queueing on a
   * client). The usual case — nothing else pending — starts at once, without chaining promises.
   */
  #serial<T>(run: () => Promise<T>): Promise<T> {
    if (this.#released) return Promise.reject(new Error('connection used after release'));
    const started = this.#pending === 0 ? run() : this.#tail.then(run, run);
    this.#pending++;
    const settled = () => { this.#pending--; };
    started.then(settled, settled);
    this.#tail = started;
    return started;
  }

  async query<T = Row>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    const [rows] = await this.pipeline([{ text, params }]);
    return rows as T[];
  }

  get transactionStatus(): TransactionStatus {
    return TX_STATUS[(this.#client as unknown as ClientInternals).getTransactionStatus() ?? 'I'] ?? 'failed';
  }

  async cancel(): Promise<void> {
    const c = this.#client as unknown as ClientInternals;
    if (c.processID == null || c.secretKey == null) return;
    // A CancelRequest goes on a connection of its own (protocol: "canceling requests in progress").
    await new Promise<void>((resolve) => {
      const con = new pg.Connection() as unknown as CancelConnection;
      const done = () => { resolve(); con.stream.destroy?.(); };
      con.once('connect', () => con.cancel(c.processID!, c.secretKey!));
      con.once('end', done);
      con.once('error', done);
      con.connect(c.host.startsWith('/') ? `${c.host}/.s.PGSQL.${c.port}` : c.port, c.host);
      setTimeout(done, 2_000).unref();
    });
  }

  release(discard = false): void {
    if (this.#released) return;
    this.#released = true;
    // A connection still inside a transaction must not serve anyone else: its settings would.
    const dirty = discard || this.transactionStatus !== 'idle';
    this.#client.release(dirty ? new Error('discarded by tenantry') : undefined);
    this.#onRelease();
  }
}

