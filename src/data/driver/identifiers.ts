/** Quotes an identifier that we built ourselves (never user input). */
export function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new TypeError(`refusing unsafe identifier ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** Quotes any identifier (for names we read from the server, such as current_database()). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
