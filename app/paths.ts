import { fileURLToPath } from 'node:url';

/** The helpdesk's tenant migrations: one source for every placement. */
export const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));
