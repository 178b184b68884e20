/**
 * What the audit suites (test/check.test.ts, test/audit-fooling.test.ts) share: the audit of a
 * platform, its findings shown for an assertion message, SQL on one target with its schema's
 * quoted name, and the break → audit red → restore → audit clean cycle each of their cases runs.
 */
import assert from 'node:assert/strict';
import { ident, type Sql } from '../src/data/driver/index.js';
import { auditAll, type AuditReport } from '../src/migrate/check.js';
import type { MigrationTarget } from '../src/migrate/targets.js';
import type { Platform } from './fixtures/platform.js';

export interface AuditHelpers {
  /** The full audit (structural and probe) of every target. */
  audit(): Promise<AuditReport>;
  show(r: AuditReport): string;
  /** Runs `fn` on the target's database, with the target's schema as a quoted identifier. */
  on<T>(t: MigrationTarget, fn: (sql: Sql, schema: string) => Promise<T>): Promise<T>;
  /** The audit finds nothing (and covers `targets()` targets, when given). */
  assertClean(after: string): Promise<void>;
  /** Breaks something, audits, checks the findings, then restores (always) and expects a clean audit. */
  breakAndRestore(what: string, brk: () => Promise<unknown>, restore: () => Promise<unknown>, verify: (r: AuditReport) => void | Promise<void>): Promise<void>;
}

/** `platform`: the suite's platform, made in its before() hook; `targets`: how many the audit must cover. */
export function auditHelpers(platform: () => Platform, opts: { targets?: () => number } = {}): AuditHelpers {
  const audit = () => auditAll(platform().admin, platform().url);
  const show = (r: AuditReport) => JSON.stringify(r.findings, null, 1);
  const assertClean = async (after: string) => {
    const r = await audit();
    assert.deepEqual(r.findings, [], `not clean after ${after}: ${show(r)}`);
    assert.equal(r.ok, true);
    if (opts.targets) assert.equal(r.targets, opts.targets());
  };
  return {
    audit,
    show,
    on: (t, fn) => platform().on(t, (sql) => fn(sql, ident(t.schema))),
    assertClean,
    async breakAndRestore(what, brk, restore, verify) {
      try {
        await brk();
        const r = await audit();
        assert.equal(r.ok, false, `${what}: no findings`);
        await verify(r);
      } finally {
        await restore();
      }
      await assertClean(`restoring ${what}`);
    },
  };
}
