/**
 * Names of prepared statements, and what each server connection has parsed.
 *
 * A statement's name is derived from its text and, where the plan depends on the session, a plan
 * key: PostgreSQL re-analyses and re-plans a prepared statement whenever the search_path or (with
 * RLS) the role differs from the one it was planned under, so a schema tenant's statements get a
 * name of their own per tenant (plan key = tenant id) and keep their plans on a connection that
 * serves many tenants. What a connection keeps is bounded (least recently used names are closed),
 * because each prepared statement holds server memory for its plan.
 */

/** What we know of one server connection's session: the statements it has parsed. */
export interface SessionState {
  /** Named statements parsed on this connection, least recently used first. */
  readonly parsed: Map<string, true>;
  /** Names to Close before anything else is sent: evicted, or their Parse may have failed. */
  readonly unsure: Set<string>;
  /** Most named statements this connection keeps. */
  readonly capacity: number;
}

export function newSession(capacity: number): SessionState {
  return { parsed: new Map(), unsure: new Set(), capacity };
}

/** Names by plan key and text, shared by every pool; bounded (past it, statements go unnamed). */
const names = new Map<string, string>();
const MAX_NAMES = 100_000;

/**
 * The name to run `text` under on this connection ('' = the unnamed statement, parsed every
 * time). Marks it most recently used; makes room by scheduling the least recently used for Close.
 */
export function statementName(text: string, planKey: string | undefined, session: SessionState): string {
  if (session.capacity <= 0) return '';
  const key = planKey ? `${planKey}\u0000${text}` : text;
  let name = names.get(key);
  if (name === undefined) {
    if (names.size >= MAX_NAMES) return '';
    name = `tenantry_${names.size.toString(36)}`;
    names.set(key, name);
  }
  const { parsed } = session;
  if (parsed.delete(name)) {
    parsed.set(name, true);
    return name;
  }
  if (parsed.size >= session.capacity) {
    const oldest = parsed.keys().next().value as string;
    parsed.delete(oldest);
    session.unsure.add(oldest);
  }
  return name;
}
