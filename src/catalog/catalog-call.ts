import { CatalogUnavailableError, TenantryError } from '../errors.js';
import { sqlState } from '../data/driver/index.js';

/**
 * A catalog call with a deadline: past it the caller gets CatalogUnavailableError (503
 * catalog_unavailable), the query is cancelled when the driver can, and its late answer is
 * dropped. Bad data (SQLSTATE class 22) is the caller's fault (400 validation_failed); any other
 * failure is an outage — never a "not found". Every catalog store (tenants, revocations, API keys,
 * audit log) reads and writes through this.
 */
export async function catalogCall<T>(timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const pending = fn();
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      (pending as { cancel?: () => unknown }).cancel?.();
      reject(new CatalogUnavailableError(new Error(`the catalog did not answer within ${timeoutMs} ms`)));
    }, timeoutMs);
  });
  pending.catch(() => {});
  try {
    return await Promise.race([pending, deadline]);
  } catch (err) {
    if (err instanceof TenantryError) throw err;
    if (sqlState(err)?.startsWith('22')) throw new TenantryError('validation_failed', 'a value is not valid', undefined, { cause: err });
    throw new CatalogUnavailableError(err);
  } finally {
    clearTimeout(timer);
  }
}
