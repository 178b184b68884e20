/**
 * Instrumentation: what tenantry does, published on `node:diagnostics_channel` channels named
 * `tenantry:…`. Metrics, metering and tracing subscribe; the toolkit knows nothing of them.
 *
 * Publishing costs nothing without subscribers: every site checks `hasSubscribers` before it reads
 * a clock or builds a message, so a process that subscribes to nothing pays one property read per
 * site. A message is built once per event and must be treated as read-only by subscribers, which
 * run synchronously inside the request: keep them cheap (count, record, defer the rest).
 *
 * ```ts
 * import diagnostics_channel from 'node:diagnostics_channel';
 * import { channels, type TransactionEvent } from 'tenantry';
 * diagnostics_channel.subscribe(channels.transaction, (message) => {
 *   const e = message as TransactionEvent;
 *   histogram.record(e.durationMs, { isolation: e.isolation, outcome: e.outcome });
 * });
 * ```
 * See docs/events.md.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { Isolation } from '../catalog/types.js';

/** The channel names (stable: part of the public API). */
export const channels = {
  /** A request's tenant was resolved (or resolution failed): RequestResolvedEvent. */
  requestResolved: 'tenantry:request:resolved',
  /** A request passed resolution and authentication and enters its handler in the tenant context: RequestAdmittedEvent. */
  requestAdmitted: 'tenantry:request:admitted',
  /** A request of a resolved tenant was refused by admission control (429): RequestLimitedEvent. */
  requestLimited: 'tenantry:request:limited',
  /** An admitted request's answer was sent (or its client went away): RequestCompletedEvent. */
  requestCompleted: 'tenantry:request:completed',
  /** A data-plane call (`db.query()` or `db.transaction()`) ended: TransactionEvent. */
  transaction: 'tenantry:data:transaction',
  /** A tenant was looked up in the catalog (cache or database): CatalogLookupEvent. */
  catalogLookup: 'tenantry:catalog:lookup',
} as const;

export type ChannelName = (typeof channels)[keyof typeof channels];

/** `tenantry:request:resolved` */
export interface RequestResolvedEvent {
  /** The request's id (Fastify's `request.id`). */
  readonly requestId: string;
  /** `ok`, or the error code the request is answered with (`tenant_not_found`, `tenant_ambiguous`, …). */
  readonly outcome: 'ok' | string;
  /** The tenant (null when resolution failed). */
  readonly tenantId: string | null;
  readonly tenantSlug: string | null;
  /** The strategies that named a tenant (`subdomain`, `header`, `jwt`, …), in chain order; empty on failure. */
  readonly strategies: readonly string[];
  /** Who is asking, when a credential was given: `user` or `api_key`. */
  readonly principal: 'user' | 'api_key' | null;
  /** Time spent resolving (strategies, catalog lookups, credential checks), milliseconds. */
  readonly durationMs: number;
}

/** `tenantry:request:admitted` */
export interface RequestAdmittedEvent {
  readonly requestId: string;
  readonly tenantId: string;
  readonly isolation: Isolation;
  readonly principal: 'user' | 'api_key' | null;
}

/** `tenantry:request:limited` */
export interface RequestLimitedEvent {
  readonly requestId: string;
  readonly tenantId: string;
  readonly tenantSlug: string;
  /** The tenant's plan (its limits are the plan's, or its own overrides). */
  readonly plan: string;
  /** The error code the request is answered with (429). */
  readonly reason: 'rate_limited' | 'concurrency_limited';
  /** What `Retry-After` tells the client, seconds. */
  readonly retryAfterSeconds: number;
}

/** `tenantry:request:completed` */
export interface RequestCompletedEvent {
  readonly requestId: string;
  readonly tenantId: string;
  readonly isolation: Isolation;
  /** The answer's status code. */
  readonly statusCode: number;
  /**
   * Bytes of the answer's body: its `Content-Length` (Fastify sets it for every string or buffer
   * body); 0 without one (no body, or a stream).
   */
  readonly bodyBytes: number;
}

/** `tenantry:data:transaction` */
export interface TransactionEvent {
  readonly tenantId: string;
  readonly isolation: Isolation;
  /** `query`: one statement (`db.query()`); `transaction`: `db.transaction(fn)`. */
  readonly kind: 'query' | 'transaction';
  /** From asking the placement for a connection to giving it back, milliseconds. */
  readonly durationMs: number;
  readonly outcome: 'ok' | 'error';
  /** On error: the toolkit's error code (`query_timeout`, `database_busy`, …) or the SQLSTATE. */
  readonly errorCode: string | null;
}

/** `tenantry:catalog:lookup` */
export interface CatalogLookupEvent {
  /** What the tenant was looked up by. */
  readonly by: 'id' | 'slug' | 'domain';
  /** Answered from this process's cache (no query). */
  readonly hit: boolean;
  /** A tenant was found. */
  readonly found: boolean;
  readonly durationMs: number;
  /** On error (the catalog is unavailable): its code; else null. */
  readonly errorCode: string | null;
}

/** The message type of each channel. */
export interface EventMessages {
  'tenantry:request:resolved': RequestResolvedEvent;
  'tenantry:request:admitted': RequestAdmittedEvent;
  'tenantry:request:limited': RequestLimitedEvent;
  'tenantry:request:completed': RequestCompletedEvent;
  'tenantry:data:transaction': TransactionEvent;
  'tenantry:catalog:lookup': CatalogLookupEvent;
}

/** A channel whose messages are typed. */
export interface TypedChannel<M> {
  readonly name: string;
  readonly hasSubscribers: boolean;
  publish(message: M): void;
}

function typed<N extends ChannelName>(name: N): TypedChannel<EventMessages[N]> {
  return diagnostics_channel.channel(name) as unknown as TypedChannel<EventMessages[N]>;
}

/**
 * The channel objects the toolkit publishes on (the same objects `diagnostics_channel.channel(name)`
 * returns). Publishing sites use them as `if (ch.hasSubscribers) ch.publish({...})`.
 */
export const events = {
  requestResolved: typed(channels.requestResolved),
  requestAdmitted: typed(channels.requestAdmitted),
  requestLimited: typed(channels.requestLimited),
  requestCompleted: typed(channels.requestCompleted),
  transaction: typed(channels.transaction),
  catalogLookup: typed(channels.catalogLookup),
} as const;

/**
 * Subscribes `fn` to one channel, typed; returns the unsubscribe function. (The same as
 * `diagnostics_channel.subscribe(name, fn)` with the message type spelled out.)
 */
export function subscribe<N extends ChannelName>(name: N, fn: (message: EventMessages[N]) => void): () => void {
  const listener = (message: unknown) => fn(message as EventMessages[N]);
  diagnostics_channel.subscribe(name, listener);
  return () => { diagnostics_channel.unsubscribe(name, listener); };
}

/** A start time for an event's duration: `performance.now()` when `channel` has subscribers, else 0 (no clock read). */
export function startTimer(channel: TypedChannel<unknown>): number {
  return channel.hasSubscribers ? performance.now() : 0;
}

/** The code of an error for an event: a TenantryError's code, a SQLSTATE, or `error`. */
export function errorCodeOf(err: unknown): string {
  const e = err as { code?: unknown } | null;
  return typeof e?.code === 'string' ? e.code : 'error';
}

/** Publishes a data-plane call that started at `t0` (from startTimer; 0 = no subscriber then: nothing is published). */
export function publishTransaction(t0: number, tenant: { readonly id: string; readonly isolation: Isolation }, kind: 'query' | 'transaction', error: unknown): void {
  if (t0 === 0 || !events.transaction.hasSubscribers) return;
  events.transaction.publish({
    tenantId: tenant.id, isolation: tenant.isolation, kind, durationMs: performance.now() - t0,
    outcome: error === undefined ? 'ok' : 'error', errorCode: error === undefined ? null : errorCodeOf(error),
  });
}

/** Publishes a catalog lookup that started at `t0` (from startTimer; 0: nothing is published). */
export function publishCatalogLookup(t0: number, by: CatalogLookupEvent['by'], hit: boolean, found: boolean, error?: unknown): void {
  if (t0 === 0 || !events.catalogLookup.hasSubscribers) return;
  events.catalogLookup.publish({
    by, hit, found, durationMs: performance.now() - t0, errorCode: error === undefined ? null : errorCodeOf(error),
  });
}
