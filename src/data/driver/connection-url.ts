/** Replaces user name and password of a connection URL. */
export function withCredentials(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** Replaces the database of a connection URL. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

/**
 * Replaces host and port of `url` with those of `target`, and the database too when `target`
 * names one (credentials stay).
 */
export function withEndpoint(url: string, target: string): string {
  const u = new URL(url);
  const t = new URL(target);
  u.host = t.host;
  if (t.pathname && t.pathname !== '/') u.pathname = t.pathname;
  return u.toString();
}

export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}
