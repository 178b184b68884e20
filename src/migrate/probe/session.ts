/**
 * The probe's connection: one transaction per target (begun and rolled back by the caller), in
 * which every probed statement runs inside a savepoint, so that no outcome leaks into the next.
 *
 * Hazards this module takes care of:
 * - In a pipeline the first error rejects and the server skips the rest up to the Sync; inside a
 *   transaction it also leaves the transaction aborted. The savepoint that was open is then rolled
 *   back at the start of the next pipeline (`pending`), never in a round trip of its own.
 * - There is one savepoint name and never two savepoints at once: each is rolled back or kept and
 *   then released before the next is taken, so no subtransaction outlives its check.
 * - set_config(…, true) inside a savepoint is undone by rolling it back: a tenant context meant
 *   to outlive the checks must be set outside any savepoint (the `prelude` of checks()).
 */
import { sqlState, type Row, type SqlConnection, type Statement } from '../../data/driver/index.js';

export interface DbError { code: string | undefined; message: string; constraint?: string; column?: string; dataType?: string }

export function dbError(err: unknown): DbError {
  const e = err as { message?: string; constraint?: string; column?: string; dataType?: string };
  return { code: sqlState(err), message: e?.message ?? String(err), constraint: e?.constraint, column: e?.column, dataType: e?.dataType };
}

export const describe = (e: DbError) => `${e.code ?? 'error'}: ${e.message}`;

/** 42501 (insufficient privilege): what row level security raises for a row WITH CHECK refuses. */
export const isRlsRefusal = (e: DbError | undefined) => e?.code === '42501';

/** Where a group of probed statements ended: the rows of each, or the server's error. */
export type Result = { readonly rows: Row[][]; readonly error?: undefined } | { readonly rows?: undefined; readonly error: DbError };

/** Probed statements, run inside a savepoint that is rolled back, and what their outcome means. */
export interface Check {
  readonly stmts: readonly Statement[];
  readonly judge: (result: Result) => void;
}

/** The tenant context as the data plane sets it (transaction-local); null: no tenant. */
export const tenantContext = (tenant: string | null): Statement => ({ text: `select set_config('app.tenant_id', $1, true)`, params: [tenant ?? ''] });

const SAVEPOINT = 'tenantry_probe';
const SP: Statement = { text: `savepoint ${SAVEPOINT}` };
const UNDO: Statement[] = [{ text: `rollback to savepoint ${SAVEPOINT}` }, { text: `release savepoint ${SAVEPOINT}` }];
const KEEP: Statement = { text: `release savepoint ${SAVEPOINT}` };

/**
 * Round trips are few: checks() runs many checks as one pipeline, and only when that pipeline
 * fails runs them one by one to tell which failed. A statement expected to fail (a write refused
 * by row level security) takes a round trip of its own through run(): an error ends a pipeline.
 */
export class ProbeSession {
  readonly #conn: SqlConnection;
  /** A failed pipeline left the transaction aborted inside the savepoint: undo it first. */
  #pending = false;

  constructor(conn: SqlConnection) {
    this.#conn = conn;
  }

  /** One pipeline (one round trip), after undoing a failed one. */
  async pipe(stmts: readonly Statement[]): Promise<Row[][]> {
    const prefix = this.#pending ? UNDO : [];
    this.#pending = false;
    try {
      return (await this.#conn.pipeline([...prefix, ...stmts])).slice(prefix.length);
    } catch (err) {
      this.#pending = true;
      throw err;
    }
  }

  /** Statements inside a savepoint; kept (`keep`: a setup row) or rolled back. */
  async run(stmts: readonly Statement[], keep = false): Promise<Result> {
    try {
      const rows = await this.pipe([SP, ...stmts, ...(keep ? [KEEP] : UNDO)]);
      return { rows: rows.slice(1, 1 + stmts.length) };
    } catch (err) {
      return { error: dbError(err) };
    }
  }

  /**
   * Runs groups of checks as one pipeline, after `prelude` (statements outside any savepoint, such
   * as the tenant context, which therefore stays set). The checks of a group share a savepoint,
   * rolled back after the group (they must leave each other's rows alone: one table's checks);
   * when the pipeline fails, every check runs alone, in a savepoint of its own. Each check is
   * judged once, in order, either way.
   */
  async checks(groups: readonly (readonly Check[])[], prelude: readonly Statement[] = []): Promise<void> {
    const live = groups.filter((g) => g.length);
    let rows: Row[][] | undefined;
    try {
      rows = (await this.pipe([...prelude, ...live.flatMap((g) => [SP, ...g.flatMap((c) => c.stmts), ...UNDO])])).slice(prelude.length);
    } catch (err) {
      // Undoing the savepoint and running the prelude again fails when the prelude itself failed
      // (no savepoint was taken, the transaction is aborted outside one): give up.
      if (prelude.length) {
        try { await this.pipe(prelude); } catch { throw err; }
      }
      for (const c of live.flat()) c.judge(await this.run(c.stmts));
      return;
    }
    let at = 0;
    for (const g of live) {
      at += 1;
      for (const c of g) {
        c.judge({ rows: rows.slice(at, at + c.stmts.length) });
        at += c.stmts.length;
      }
      at += UNDO.length;
    }
  }
}
