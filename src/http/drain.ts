import type { FastifyInstance } from 'fastify';
import { problemOf, sendProblem } from './problem.js';

export interface DrainResult {
  /** Requests were still in flight when the timeout passed: their connections were cut. */
  readonly timedOut: boolean;
  readonly ms: number;
}

/**
 * Graceful stop of a Fastify server. `install(app)` on a new instance, before its routes; then
 * `close(timeoutMs)` (on SIGTERM, say):
 *
 * - from that moment every new request — `/readyz` included — is answered 503 `shutting_down`
 *   (problem+json, `Connection: close`), and the listening socket is closed, so new connections
 *   are refused;
 * - requests in flight run to the end; their answers carry `Connection: close`, and keep-alive
 *   connections with no request in flight are closed (node's `server.close()` alone would leave a
 *   connection whose request finishes after it open for the whole keep-alive timeout);
 * - after `timeoutMs`, connections still open are closed, whatever they are doing.
 *
 * The promise settles when the server is closed (Fastify's onClose hooks have run).
 */
export class Drain {
  #app: FastifyInstance | undefined;
  #draining = false;
  #closing: Promise<DrainResult> | undefined;

  /** True from the moment close() is called. */
  get draining(): boolean {
    return this.#draining;
  }

  install(app: FastifyInstance): void {
    if (this.#app) throw new Error('Drain.install: already installed on a server');
    this.#app = app;
    app.addHook('onRequest', (request, reply, done) => {
      if (!this.#draining) return done();
      reply.header('connection', 'close');
      void sendProblem(reply, request, problemOf('shutting_down', 'this instance is shutting down; retry on another one'));
    });
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (this.#draining) reply.header('connection', 'close');
      done(null, payload);
    });
  }

  close(timeoutMs: number): Promise<DrainResult> {
    const app = this.#app;
    if (!app) throw new Error('Drain.close: install() was not called');
    return this.#closing ??= (async () => {
      const started = Date.now();
      this.#draining = true;
      let timedOut = false;
      const server = app.server;
      // An answer whose headers were sent before the drain began has no Connection: close; its
      // connection turns idle when it ends and is closed by the next sweep.
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const deadline = setTimeout(() => {
        timedOut = true;
        server.closeAllConnections();
      }, timeoutMs);
      try {
        await app.close();
      } finally {
        clearInterval(sweep);
        clearTimeout(deadline);
      }
      return { timedOut, ms: Date.now() - started };
    })();
  }
}
