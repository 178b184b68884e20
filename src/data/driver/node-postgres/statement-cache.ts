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
  /** Every named statement parsed on this connection (either segment below). */
  readonly parsed: Map<string, true>;
  /**
   * Two least-recently-used segments: `home` for shared statements and those of the tenants whose
   * lane this connection is in, `guest` (a tenth) for tenants that borrowed it while their own was
   * busy — so that guests, many and each rarely back, cannot push out the home tenants' plans.
   */
  readonly home: Map<string, true>;
  readonly guest: Map<string, true>;
  /** Names to Close before anything else is sent: evicted, or their Parse may have failed. */
  readonly unsure: Set<string>;
  /**
   * The row description of each parsed statement, from its first execution: later executions
   * skip the Describe message (the server would send the same description again; if a
   * migration changes it, PostgreSQL refuses the statement with 0A000 and it is parsed afresh).
   */
  readonly described: Map<string, unknown[]>;
  readonly homeCapacity: number;
  readonly guestCapacity: number;
}

export function newSession(capacity: number): SessionState {
  const guestCapacity = capacity > 0 ? Math.max(1, Math.floor(capacity / 10)) : 0;
  return {
    parsed: new Map(), home: new Map(), guest: new Map(), unsure: new Set(), described: new Map(),
    homeCapacity: capacity - guestCapacity, guestCapacity,
  };
}

/** Forgets what this connection has of `name`; it is closed before anything else is sent. */
export function forget(session: SessionState, name: string): void {
  session.parsed.delete(name);
  session.described.delete(name);
  session.unsure.add(name);
}

/** Names by plan key and text, shared by every pool; bounded (past it, statements go unnamed). */
const names = new Map<string, string>();
const MAX_NAMES = 100_000;

/**
 * The name to run `text` under on this connection ('' = the unnamed statement, parsed every
 * time). Marks it most recently used in its segment; makes room by scheduling the least recently
 * used of that segment for Close.
 */
export function statementName(text: string, planKey: string | undefined, session: SessionState, guest = false): string {
  if (session.homeCapacity <= 0) return '';
  const key = planKey ? `${planKey}\u0000${text}` : text;
  let name = names.get(key);
  if (name === undefined) {
    if (names.size >= MAX_NAMES) return '';
    name = `tenantry_${names.size.toString(36)}`;
    names.set(key, name);
  }
  const { parsed } = session;
  // A statement already parsed stays in the segment it is in.
  for (const segment of [session.home, session.guest]) {
    if (segment.delete(name)) {
      segment.set(name, true);
      return name;
    }
  }
  const segment = guest ? session.guest : session.home;
  if (segment.size >= (guest ? session.guestCapacity : session.homeCapacity)) {
    const oldest = segment.keys().next().value as string;
    segment.delete(oldest);
    forget(session, oldest);
  }
  segment.set(name, true);
  return name;
}
