import type { FastifyRequest } from 'fastify';
import { withPlatformScope } from '../../src/index.js';

/**
 * Runs `fn` in the audited platform scope of the admin API (actor `admin-api`); the request's id
 * and client address go into the audit log's entries.
 */
export function adminScoped<T>(request: FastifyRequest, reason: string, fn: () => Promise<T>): Promise<T> {
  return withPlatformScope({ actor: 'admin-api', reason, requestId: request.id, clientAddress: request.ip }, fn);
}
