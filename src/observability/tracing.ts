/**
 * OpenTelemetry spans, through `@opentelemetry/api` only: nothing is recorded or exported unless
 * the application registers an SDK (a TracerProvider and, for nesting across awaits, a context
 * manager such as AsyncLocalStorageContextManager). Without one every call below meets the API's
 * no-op tracer: a request costs one non-recording span object and no context switch.
 *
 * - `HTTP <method> <route>` (server): one per request, from its first hook to its answer, with
 *   `http.request.method`, `http.route` (the pattern, or `unmatched`), `http.response.status_code`,
 *   and for tenant requests `tenant.id`, `tenant.slug`, `tenantry.isolation`; status error on 5xx.
 *   It is the active span of the request's hooks and handler, so spans started there (by the
 *   application, or below) are its children.
 * - `tenantry.resolve`: the tenant resolution and credential checks of a tenant route (from the
 *   `tenantry:request:resolved` event: its start is the event's time minus its duration), with
 *   `tenant.id`, `tenant.slug` and `tenantry.outcome`.
 * - `tenantry.query` / `tenantry.transaction` (client): each data-plane call (from
 *   `tenantry:data:transaction`), with `db.system` = `postgresql`, `tenant.id`,
 *   `tenantry.isolation`, `tenantry.outcome` and, on error, `error.type` (its code).
 *
 * The last two are written when their event arrives, as children of the span active then (the
 * request's).
 */
import { context, isSpanContextValid, ProxyTracerProvider, SpanKind, SpanStatusCode, trace, type Context, type Span, type SpanOptions } from '@opentelemetry/api';
import { channels, subscribe, type RequestResolvedEvent, type TransactionEvent } from '../core/events.js';

/** The tracer every tenantry span comes from (a proxy: it follows the SDK registered, whenever). */
export const tracer = trace.getTracer('tenantry');

const SERVER: SpanOptions = { kind: SpanKind.SERVER };

/** A request's span and the context in which it is the active span. */
export interface RequestSpan {
  readonly span: Span;
  readonly context: Context;
}

/**
 * Starts a request's server span; undefined when no SDK records or propagates it (then nothing
 * needs to be entered or ended).
 */
/**
 * Is an SDK registered? Without one, the API's global provider is a proxy with no delegate and
 * every span would be a no-op: the hooks then skip them altogether (measured: ≈ 2 µs of CPU per
 * request less). Asked per request, so that an SDK registered after start is used at once.
 */
function sdkRegistered(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer('tenantry') !== undefined;
}

export function startRequestSpan(method: string, route: string): RequestSpan | undefined {
  if (!sdkRegistered()) return undefined;
  const span = tracer.startSpan(`HTTP ${method} ${route}`, SERVER);
  if (!span.isRecording() && !isSpanContextValid(span.spanContext())) return undefined;
  span.setAttribute('http.request.method', method);
  span.setAttribute('http.route', route);
  return { span, context: trace.setSpan(context.active(), span) };
}

/** Ends a request's span with its answer. */
export function endRequestSpan(s: RequestSpan, status: number, tenant: { readonly id: string; readonly slug: string; readonly isolation: string } | null | undefined): void {
  const { span } = s;
  span.setAttribute('http.response.status_code', status);
  if (tenant) {
    span.setAttribute('tenant.id', tenant.id);
    span.setAttribute('tenant.slug', tenant.slug);
    span.setAttribute('tenantry.isolation', tenant.isolation);
  }
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/** Epoch milliseconds, sub-millisecond precise (what span start times take). */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A span for something that just ended and took `durationMs`, child of the active span (ended by the caller at once). */
function pastSpan(name: string, durationMs: number, kind: SpanKind): Span | undefined {
  if (!sdkRegistered()) return undefined;
  const span = tracer.startSpan(name, { kind, startTime: nowMs() - durationMs });
  return span.isRecording() ? span : undefined;
}

function onResolved(e: RequestResolvedEvent): void {
  const span = pastSpan('tenantry.resolve', e.durationMs, SpanKind.INTERNAL);
  if (span === undefined) return;
  if (e.tenantId !== null) span.setAttribute('tenant.id', e.tenantId);
  if (e.tenantSlug !== null) span.setAttribute('tenant.slug', e.tenantSlug);
  span.setAttribute('tenantry.outcome', e.outcome);
  if (e.outcome !== 'ok') span.setStatus({ code: SpanStatusCode.ERROR, message: e.outcome });
  span.end();
}

function onTransaction(e: TransactionEvent): void {
  const span = pastSpan(e.kind === 'query' ? 'tenantry.query' : 'tenantry.transaction', e.durationMs, SpanKind.CLIENT);
  if (span === undefined) return;
  span.setAttribute('db.system', 'postgresql');
  span.setAttribute('tenant.id', e.tenantId);
  span.setAttribute('tenantry.isolation', e.isolation);
  span.setAttribute('tenantry.outcome', e.outcome);
  if (e.errorCode !== null) {
    span.setAttribute('error.type', e.errorCode);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.errorCode });
  }
  span.end();
}

/** Writes the resolution and data-plane spans from the events; returns the unsubscribe function. */
export function traceEvents(): () => void {
  const stops = [subscribe(channels.requestResolved, onResolved), subscribe(channels.transaction, onTransaction)];
  return () => { for (const stop of stops) stop(); };
}
