import pg from 'pg';
import type { Row, Statement } from '../sql.js';

import { forget, type SessionState } from './statement-cache.js';

/** The parts of node-postgres' Result that a custom query object drives (pg/lib/result.js). */
interface ResultBuilder {
  readonly rows: unknown[];
  addFields(fields: unknown[]): void;
  parseRow(fields: unknown[]): unknown;
  addRow(row: unknown): void;
  addCommandComplete(msg: unknown): void;
}
const Result = pg.Result as unknown as new (rowMode: string | undefined, types: unknown) => ResultBuilder;
/** node-postgres' own serializer of parameter values (Date, Buffer, arrays, JSON objects). */
const prepareValue: (value: unknown) => unknown = (pg as unknown as { utils: { prepareValue(v: unknown): unknown } }).utils.prepareValue;

interface ProtocolConnection {
  readonly stream: { cork(): void; uncork(): void };
  parse(msg: { text: string; name: string; types: number[] }): void;
  bind(msg: { portal: string; statement: string; values: unknown[] }): void;
  describe(msg: { type: 'P' | 'S'; name: string }): void;
  execute(msg: { portal: string; rows: number }): void;
  close(msg: { type: 'S' | 'P'; name: string }): void;
  sync(): void;
  sendCopyFail(msg: string): void;
}

/**
 * Several statements in one extended-protocol exchange with a single Sync, as a node-postgres
 * "submittable" (the custom query object its Client accepts, like pg-cursor's): Parse (when the
 * connection has not parsed it yet), Bind, Describe, Execute for each statement, then one Sync —
 * written to the socket together (corked) and answered together.
 *
 * Why one Sync: each Sync is a unit of work for the server (it ends the implicit transaction and
 * answers ReadyForQuery); BEGIN ... COMMIT as separate messages with a Sync each cost four. Before
 * one Sync the statements already form one implicit transaction, so set_config(..., true)
 * followed by the statement is a complete, transaction-local scoped read.
 */
export class PipelinedQuery {
  readonly #statements: readonly Statement[];
  /** Statement name per statement ('' = the unnamed statement, parsed every time). */
  readonly #names: readonly string[];
  readonly #session: SessionState;
  readonly #results: ResultBuilder[];
  readonly #done: (err: Error | undefined, rows?: Row[][]) => void;
  #index = 0;
  #rowError: Error | undefined;
  /** Per statement: the row description the server sent for it (a Describe was sent). */
  readonly #descriptions: (unknown[] | undefined)[];
  /** Per statement: was a Describe sent for it (else its description came from the session). */
  readonly #describing: boolean[];
  /** node-postgres calls this when the exchange fails before or without a server error. */
  callback: ((err: Error | undefined) => void) | undefined;

  constructor(statements: readonly Statement[], names: readonly string[], session: SessionState,
    done: (err: Error | undefined, rows?: Row[][]) => void) {
    this.#statements = statements;
    this.#names = names;
    this.#session = session;
    this.#done = done;
    this.#results = statements.map(() => new Result(undefined, pg.types));
    this.#descriptions = statements.map(() => undefined);
    this.#describing = statements.map(() => true);
  }

  submit(connection: ProtocolConnection): Error | null {
    // Serialize every value first: a value that cannot be sent fails the query before any byte
    // is written, so the connection is never left with half a pipeline and no Sync.
    let values: unknown[][];
    try {
      values = this.#statements.map((s) => (s.params ?? []).map(prepareValue));
    } catch (err) {
      return err as Error;
    }
    const { parsed, unsure, described } = this.#session;
    connection.stream.cork();
    try {
      for (const name of unsure) connection.close({ type: 'S', name });
      unsure.clear();
      for (let i = 0; i < this.#statements.length; i++) {
        const name = this.#names[i]!;
        const known = name && parsed.has(name) ? described.get(name) : undefined;
        if (!name || !parsed.has(name)) {
          connection.parse({ text: this.#statements[i]!.text, name, types: [] });
          if (name) parsed.set(name, true);
        }
        connection.bind({ portal: '', statement: name, values: values[i]! });
        if (known) {
          this.#results[i]!.addFields(known);
          this.#describing[i] = false;
        } else {
          connection.describe({ type: 'P', name: '' });
        }
        connection.execute({ portal: '', rows: 0 });
      }
      connection.sync();
    } finally {
      connection.stream.uncork();
    }
    return null;
  }

  handleRowDescription(msg: { fields: unknown[] }): void {
    this.#results[this.#index]?.addFields(msg.fields);
    this.#descriptions[this.#index] = msg.fields;
  }

  handleDataRow(msg: { fields: unknown[] }): void {
    const result = this.#results[this.#index];
    if (!result || this.#rowError) return;
    try {
      result.addRow(result.parseRow(msg.fields));
    } catch (err) {
      this.#rowError = err as Error;
    }
  }

  handleCommandComplete(msg: unknown): void {
    this.#results[this.#index]?.addCommandComplete(msg);
    this.#remember(this.#index);
    this.#index++;
  }

  /** Keeps the description of a named statement that was described (none at all: NoData). */
  #remember(i: number): void {
    const name = this.#names[i];
    if (name && this.#describing[i] && this.#session.parsed.has(name)) this.#session.described.set(name, this.#descriptions[i] ?? []);
  }

  handleEmptyQuery(): void {
    this.#index++;
  }

  handlePortalSuspended(): void {
    // Never: every Execute asks for all rows.
  }

  handleError(err: Error): void {
    // The server skipped every message after the failing one up to the Sync: the Parse of a
    // named statement from here on may not have happened (or, for the failing one, may have).
    // 0A000 "cached plan must not change result type": a migration changed what a parsed
    // statement returns; it is parsed afresh next time.
    const from = (err as { code?: string }).code === '0A000' ? 0 : this.#index;
    for (let i = from; i < this.#names.length; i++) {
      const name = this.#names[i]!;
      if (name && this.#session.parsed.has(name)) forget(this.#session, name);
    }
    this.#done(err);
  }

  handleReadyForQuery(): void {
    if (this.#rowError) this.#done(this.#rowError);
    else this.#done(undefined, this.#results.map((r) => r.rows as Row[]));
  }

  handleCopyInResponse(connection: ProtocolConnection): void {
    connection.sendCopyFail('COPY is not supported here');
  }

  handleCopyData(): void {}
}
