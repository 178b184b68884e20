/**
 * Request ids and the request log lines.
 *
 * Request id: a valid incoming `X-Request-Id` (1–128 characters of `A-Z a-z 0-9 . _ : -`) is kept,
 * so a request can be followed from the proxy or the client that named it; anything else (absent,
 * longer, with spaces, newlines or other characters) is replaced by a random UUID. The id is the
 * request's `request.id`, the `request_id` of every log line and problem answer, and the
 * `X-Request-Id` of every answer (the observability plugin and sendProblem set it).
 *
 * Log lines: every line written with the request's logger carries `request_id` (Fastify binds it
 * under the controller's `requestIdLogLabel`), and, once the tenancy plugin has resolved the
 * tenant, `tenant_id` and `tenant` (it sets them on that logger with pino's `setBindings`).
 * Fastify writes its "incoming request" line before any hook, when no tenant is known yet: this
 * controller holds it back until the tenant is resolved (the observability plugin writes it in
 * its preParsing hook, the first after resolution and admission), or, for a request answered
 * before that (an unknown tenant, a 401, a 429), just before "request completed". Both lines are
 * Fastify's own, with their usual fields; "incoming request" is merely written a little later.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

/** What an incoming `X-Request-Id` must look like to be kept. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Fastify's `genReqId`: the client's `X-Request-Id` when it is valid, else a random UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
}

/**
 * The request's field that holds the controller of its held-back "incoming request" line (null
 * once written, or when none is held). A field, not a WeakMap: a WeakMap entry per request costs
 * more (its set, and the garbage collector's ephemeron work). The observability plugin declares it
 * (decorateRequest), so every request object has the same shape.
 */
export const HELD_LOG_FIELD = 'tenantryHeldLog';
type Holder = FastifyRequest & { [HELD_LOG_FIELD]?: TenantLogController | null };

/**
 * Fastify's LogController with the "incoming request" line held back until the tenant is known
 * (see the module comment); the log label of the request id is `request_id`.
 */
export class TenantLogController extends LogController {
  constructor() {
    super({ requestIdLogLabel: 'request_id' });
  }

  override incomingRequest(request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    (request as Holder)[HELD_LOG_FIELD] = this;
    void reply;
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    writeIncomingRequest(request, reply);
    super.requestCompleted(error, request, reply);
  }

  /** Fastify's own "incoming request" line, now. */
  writeIncoming(request: FastifyRequest, reply: FastifyReply): void {
    super.incomingRequest(request, reply);
  }
}

/** Writes the request's held-back "incoming request" line, if it has one that was not written yet. */
export function writeIncomingRequest(request: FastifyRequest, reply: FastifyReply): void {
  const controller = (request as Holder)[HELD_LOG_FIELD];
  if (controller == null) return;
  (request as Holder)[HELD_LOG_FIELD] = null;
  controller.writeIncoming(request, reply);
}

/**
 * Fastify server options for the request ids and log lines above: spread them into `Fastify({…})`
 * and register the observability plugin.
 */
export function requestLogOptions(): { genReqId: (req: IncomingMessage) => string; logController: TenantLogController } {
  return { genReqId: requestIdOf, logController: new TenantLogController() };
}
