import { withPlatformScope } from '../../src/index.js';

/** Runs `fn` in the audited platform scope of the admin API (actor `admin-api`). */
export function adminScoped<T>(reason: string, fn: () => Promise<T>): Promise<T> {
  return withPlatformScope({ actor: 'admin-api', reason }, fn);
}
