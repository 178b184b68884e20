import type { AuditReport } from '../migrate/check.js';

/** A plain-text table: a header, a rule, the rows (cells cut at 60 characters). */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length))));
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').slice(0, 60).padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function printAudit(report: AuditReport, print: (s: string) => void): void {
  if (report.ok) { print(`audit: ${report.targets} targets, no findings`); return; }
  print(`audit: ${report.targets} targets, ${report.findings.length} findings`);
  print(table(['target', 'check', 'object', 'message'], report.findings.map((f) => [f.target, f.check, f.object, f.message])));
}
