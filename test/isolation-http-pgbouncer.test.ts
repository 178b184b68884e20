/**
 * The whole HTTP isolation suite (every route both ways, all placement pairs, identification, API
 * keys, 200 concurrent requests of 16 tenants) again, with the runtime connections going through
 * PgBouncer 1.18 in transaction mode (TENANTRY_RUNTIME_URL + TENANTRY_POOLER=transaction): no named
 * prepared statements, no session state, server connections shared by every tenant.
 */
import { runThroughPgBouncer } from './helpers.js';

await runThroughPgBouncer(() => import('./isolation-http.test.js'));
