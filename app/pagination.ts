import { isUuid, TenantryError } from '../src/index.js';

/** Cursors are opaque to clients: the base64url of the last id of the page. */
export function encodeCursor(id: string): string {
  return Buffer.from(id).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!isUuid(id)) throw new TenantryError('invalid_cursor');
  return id;
}

/** Takes `limit + 1` rows and returns the page and the cursor of the next one. */
export function page<T extends { id: string }>(rows: T[], limit: number): { data: T[]; next_cursor: string | null } {
  const data = rows.slice(0, limit);
  return { data, next_cursor: rows.length > limit ? encodeCursor(data[data.length - 1]!.id) : null };
}
