import type { Sql } from '../data/driver/index.js';
import { UUID_PATTERN_ANY_CASE } from '../core/tenant-ids.js';

/**
 * Channel of the catalog's change notifications, sent by triggers at commit: a tenant id when a
 * tenant or one of its domains changed (migrations/0002_catalog_notify.sql), `revocations` when a
 * credential was revoked (migrations/0004_credentials.sql).
 */
export const CATALOG_CHANNEL = 'tenantry_catalog';

/** What a process does on each kind of notification. */
export interface CatalogChannelHandlers {
  /** A tenant (or one of its domains) changed. */
  tenantChanged(tenantId: string): void;
  /** Something changed that cannot be pinned to one tenant (an unknown payload). */
  somethingChanged(): void;
  /** A credential was revoked. */
  revocationsChanged(): void;
  /**
   * The listening connection was (re)established: notifications may have been missed while it was
   * down, so everything derived from the catalog must be reloaded.
   */
  resync(): void;
}

/** LISTENs on `listener` (a direct connection, never a transaction pooler); returns the stop function. */
export function followCatalogChannel(listener: Sql, handlers: CatalogChannelHandlers): Promise<() => Promise<void>> {
  return listener.listen(CATALOG_CHANNEL, (payload) => {
    if (payload === 'revocations') handlers.revocationsChanged();
    else if (UUID_PATTERN_ANY_CASE.test(payload)) handlers.tenantChanged(payload.toLowerCase());
    else handlers.somethingChanged();
  }, () => handlers.resync());
}
