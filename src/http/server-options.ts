import { randomUUID } from 'node:crypto';
import type { ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { ErrorCode } from '../errors.js';
import { endSocketWithProblem, problemOf, sendProblem, toProblem } from './problem.js';

export interface ServerOptionsInput {
  /** A request's headers must arrive within this many milliseconds (TENANTRY_REQUEST_TIMEOUT_MS). */
  readonly requestTimeoutMs: number;
  /**
   * Whose `X-Forwarded-For` is believed for `request.ip` (TENANTRY_TRUST_PROXY, Fastify's
   * `trustProxy`): false (default) nobody, true any proxy, a number of hops, or a comma-separated
   * list of proxy addresses/CIDRs.
   */
  readonly trustProxy?: boolean | number | string;
}

/** The node:http errors a client can cause before any route runs, by `clientError` code. */
function clientErrorCode(code: string | undefined): ErrorCode {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT': return 'request_timeout';
    case 'HPE_HEADER_OVERFLOW': return 'headers_too_large';
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW': return 'payload_too_large';
    default: return 'bad_request';
  }
}

/**
 * `clientError` of the HTTP server: what node:http answers itself (408 on a request whose headers
 * do not arrive in time, 431 on headers over its limit, 400 on anything its parser refuses), as
 * problem+json with a code. No request exists yet, so the answer is written to the socket; the
 * connection is closed after it.
 */
function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  // A connection reset by the client, or one already gone: there is no one to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code = clientErrorCode(err.code);
  const requestId = randomUUID();
  this.log.info({ err, code, request_id: requestId }, 'client error');
  // Answer only if nothing of a response is on the wire yet (as node:http itself does): a reply
  // already started on this connection would be corrupted by a second status line.
  const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || current?.headersSent) {
    socket.destroy(err);
    return;
  }
  endSocketWithProblem(socket, problemOf(code, undefined, { request_id: requestId }));
}

/**
 * TENANTRY_TRUST_PROXY as Fastify's `trustProxy`. A hop count becomes proxy-addr's rule ("the
 * first n addresses, from the socket's on, are proxies"): Fastify 5 itself now trusts nobody when
 * given a number.
 */
function trustProxyOption(tp: boolean | number | string | undefined): boolean | string | ((address: string, hop: number) => boolean) {
  if (typeof tp === 'number') return tp <= 0 ? false : (_address, hop) => hop < tp;
  return tp ?? false;
}

/** Errors Fastify's router raises before a route is found: a path parameter over its length, a bad URL. */
function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  switch (err.code) {
    case 'FST_ERR_MAX_PARAM_LENGTH':
      void sendProblem(reply, request, problemOf('uri_too_long', 'a path segment is longer than any route accepts'));
      return;
    case 'FST_ERR_BAD_URL':
      void sendProblem(reply, request, problemOf('bad_request', 'the URL is not valid (bad percent-encoding)'));
      return;
    default:
      void sendProblem(reply, request, toProblem(err, request.log));
  }
}

/**
 * Fastify server options under which every answer the server gives is problem+json with a code
 * (with `registerProblemHandlers`), including those node:http and Fastify's router would otherwise
 * write themselves, with an empty body or Fastify's own JSON:
 *
 * - 408 `request_timeout`: the headers and body did not all arrive within `requestTimeoutMs` of
 *   the request's first byte (node:http's `requestTimeout`, which runs until the request message
 *   is complete — a body trickled a byte at a time is cut off too —, checked every quarter of the
 *   timeout, at most every second: node's default interval is 30 s, and a request is cut off at
 *   the first check after its deadline);
 * - 431 `headers_too_large`: headers over node's limit (16 KiB);
 * - 400 `bad_request`: a request node's parser refuses, or a URL with bad percent-encoding;
 * - 414 `uri_too_long`: a path parameter longer than Fastify's `maxParamLength` (100);
 * - 400 `host_required`: an HTTP/1.1 request without Host. node:http would answer it with an
 *   empty 400 before any hook runs, so its own check is off and registerProblemHandlers' hook
 *   answers instead.
 *
 * Fastify's own 503 while closing (plain JSON) is off too: use `Drain`, which answers 503
 * `shutting_down` as problem+json.
 */
export function serverOptions(opts: ServerOptionsInput): FastifyServerOptions & { http: ServerOptions } {
  return {
    requestTimeout: opts.requestTimeoutMs,
    trustProxy: trustProxyOption(opts.trustProxy),
    return503OnClosing: false,
    frameworkErrors,
    clientErrorHandler,
    http: {
      // Headers alone get no longer than the whole request (node's headersTimeout is 60 s).
      requestTimeout: opts.requestTimeoutMs,
      headersTimeout: opts.requestTimeoutMs,
      requireHostHeader: false,
      // node cuts a request off one check after its deadline: checking every quarter of the
      // timeout (at most every second) keeps the overshoot to that (a 1 s timeout checked every
      // second was answered at 2 s).
      connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(opts.requestTimeoutMs / 4))),
    },
  };
}
