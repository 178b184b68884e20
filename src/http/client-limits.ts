import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { clientAddressKey } from '../core/client-address.js';
import { endSocketWithProblem, problemOf } from './problem.js';

export interface ClientLimitsOptions {
  /** Open connections one client address may hold (TENANTRY_MAX_CONNECTIONS_PER_CLIENT). */
  readonly maxConnectionsPerClient: number;
}

/** What installClientLimits() leaves on the server: the connections counted now, for tests and metrics. */
export interface ClientLimits {
  /** Open connections of one client address (as counted: an IPv6 address by its /64), or of all. */
  connections(address?: string): number;
}

/**
 * Per-client limits of an HTTP server that no route sees:
 *
 * - **A connection cap per client address.** Sockets are counted by their remote address (the
 *   socket's, never `X-Forwarded-For`: behind a proxy the proxy is the client, so size the cap for
 *   its connection pool); an IPv6 address counts as its /64. A connection over
 *   `maxConnectionsPerClient` is answered `HTTP/1.1 429` problem+json `too_many_connections`
 *   (`Retry-After: 1`, `Connection: close`) and closed at once, before any request on it is
 *   served; a connection counts until it closes. Counting is two map updates per connection,
 *   none per request.
 *
 * Slow requests need nothing here: node:http's `requestTimeout` (set by serverOptions()) runs
 * until the whole request — headers and body — has arrived, so a body trickled a byte at a time
 * is answered 408 `request_timeout` and its connection closed (test/slow-clients.test.ts).
 *
 * Install it on a new instance, before it listens.
 */
export function installClientLimits(app: FastifyInstance, opts: ClientLimitsOptions): ClientLimits {
  return capConnections(app.server, opts.maxConnectionsPerClient, (info) => app.log.info(info, 'connection refused: too many from this client address'));
}

/** The connection cap on a node:http server (see installClientLimits). */
export function capConnections(server: Server, max: number, log: (info: object) => void = () => {}): ClientLimits {
  if (!(Number.isInteger(max) && max >= 1)) throw new RangeError('maxConnectionsPerClient must be a positive integer');
  const open = new Map<string, number>();
  let total = 0;
  // Before node:http's own listener: a refused connection is answered before a parser reads it.
  server.prependListener('connection', (socket: Socket) => {
    const key = clientAddressKey(socket.remoteAddress);
    const n = (open.get(key) ?? 0) + 1;
    open.set(key, n);
    total++;
    socket.once('close', () => {
      total--;
      const left = (open.get(key) ?? 1) - 1;
      if (left <= 0) open.delete(key);
      else open.set(key, left);
    });
    if (n <= max) return;
    const requestId = randomUUID();
    log({ client: key, connections: n - 1, max, request_id: requestId });
    // Nothing the client sends on it is served: the parser node attaches next reads nothing.
    socket.pause();
    endSocketWithProblem(socket, problemOf('too_many_connections',
      `this client address already holds ${max} open connections`, { retry_after: 1, request_id: requestId }));
  });
  return {
    connections: (address) => (address === undefined ? total : open.get(clientAddressKey(address)) ?? 0),
  };
}
