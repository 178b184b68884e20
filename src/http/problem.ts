import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorCatalog, isTenantryError, type ErrorCode } from '../errors.js';
import { sqlState } from '../data/driver/index.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  instance?: string;
  request_id?: string;
  errors?: unknown[];
  /** Seconds; also sent as the Retry-After header. */
  retry_after?: number;
}

export function problemOf(code: ErrorCode, detail?: string, extra: Record<string, unknown> = {}): Problem {
  const entry = errorCatalog[code];
  return { type: `urn:tenantry:problem:${code}`, title: entry.title, status: entry.status, code, ...(detail ? { detail } : {}), ...extra };
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, problem: Problem): FastifyReply {
  if (typeof problem.retry_after === 'number') reply.header('retry-after', String(problem.retry_after));
  return reply
    .status(problem.status)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .header('x-request-id', request.id)
    .send({ ...problem, instance: request.url, request_id: request.id });
}

/**
 * Answers a connection with no request object (node:http's client errors, a connection refused
 * before it is served): the problem written to the socket with `Connection: close`, then the
 * connection closed once it is out.
 */
export function endSocketWithProblem(socket: Socket, problem: Problem): void {
  const body = JSON.stringify(problem);
  socket.end(
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\n` +
    `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    (typeof problem.retry_after === 'number' ? `Retry-After: ${problem.retry_after}\r\n` : '') +
    'Connection: close\r\n\r\n' + body,
    () => socket.destroy(),
  );
}

/** Maps any error to a problem with a stable code; 5xx details are logged, never sent. */
export function toProblem(err: unknown, log: FastifyRequest['log']): Problem {
  if (isTenantryError(err)) {
    if (err.status >= 500) log.error({ err }, err.message);
    return problemOf(err.code, err.status >= 500 ? undefined : err.message, err.details ?? {});
  }
  const fe = err as FastifyError & { validation?: { instancePath: string; message?: string; params?: unknown }[] };
  if (fe?.validation) {
    return problemOf('validation_failed', fe.message, {
      errors: fe.validation.map((v) => ({ path: v.instancePath || '/', message: v.message, params: v.params })),
    });
  }
  switch (fe?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return problemOf('payload_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return problemOf('unsupported_media_type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY': return problemOf('malformed_json');
  }
  if (fe instanceof SyntaxError && fe.statusCode === 400) return problemOf('malformed_json');
  switch (sqlState(err)) {
    case '23503': return problemOf('invalid_reference');
    case '23505': return problemOf('conflict');
    case '23514': case '22001': case '22P02': case '22007': case '22008': case '22021': return problemOf('validation_failed', 'a value is out of range');
  }
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    if (fe.statusCode === 413) return problemOf('payload_too_large');
    if (fe.statusCode === 415) return problemOf('unsupported_media_type');
    if (fe.statusCode === 404) return problemOf('route_not_found');
    if (fe.statusCode === 405) return problemOf('method_not_allowed');
    return problemOf('validation_failed', fe.message);
  }
  log.error({ err }, 'unhandled error');
  return problemOf('internal_error');
}

/** Every error and every unknown route answers application/problem+json with a code. */
export function registerProblemHandlers(app: FastifyInstance): void {
  // HTTP/1.1 requires Host (RFC 9112 §3.2); tenants are told apart by it. node:http answers its
  // absence itself with an empty 400 unless `requireHostHeader` is off (see serverOptions).
  app.addHook('onRequest', (request, reply, done) => {
    if (request.headers.host === undefined && request.raw.httpVersionMajor === 1 && request.raw.httpVersionMinor >= 1) {
      reply.header('connection', 'close');
      void sendProblem(reply, request, problemOf('host_required', 'an HTTP/1.1 request must have a Host header'));
      return;
    }
    done();
  });
  app.setErrorHandler((err, request, reply) => sendProblem(reply, request, toProblem(err, request.log)));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, request, problemOf('route_not_found', `${request.method} ${request.url.split('?')[0]} is not a route`)));
}
