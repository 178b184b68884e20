import { v7 as uuidv7 } from 'uuid';
import type { Tenantry } from '../src/index.js';

/**
 * A new tenant's first owner, inside that tenant's context; returns the user's id. Idempotent,
 * because a tenant creation that crashed half-way is finished by running it again
 * (Tenantry.createTenant): an owner with the same email already there is updated, not doubled.
 */
export async function createOwner(tenantry: Tenantry, owner: { email: string; name: string }, passwordHash: string): Promise<string> {
  const [row] = await tenantry.db.query<{ id: string }>(
    `insert into users (id, email, name, role, password_hash) values ($1, $2, $3, 'owner', $4)
     on conflict (tenant_id, email) do update
       set name = excluded.name, role = 'owner', password_hash = excluded.password_hash, updated_at = now()
     returning id`,
    [uuidv7(), owner.email.toLowerCase(), owner.name, passwordHash]);
  return row!.id;
}
