import type { FastifyInstance } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import { TenantryError, currentTenant, type TenantTransaction, type Tenantry } from '../../src/index.js';
import { principalOf, requireRole } from '../../src/http/index.js';
import '../errors.js';
import { canManageApiKeys, userManagers, type Role } from '../roles.js';
import { decodeCursor, page } from '../pagination.js';
import { CreateUserBody, IdParams, PageQuery, UpdateUserBody } from '../schemas.js';

const columns = 'id, email, name, role, created_at, updated_at';
type UserRow = { id: string; email: string; name: string; role: Role };

function uniqueEmail(err: unknown): never {
  if ((err as { code?: string }).code === '23505') throw new TenantryError('email_taken');
  throw err;
}

/**
 * Locks the user `id` and every owner of the tenant, in id order, and returns the target
 * (undefined if there is none) and how many owners there are.
 *
 * Every change that could take an owner away runs this first, so two of them never both see
 * "another owner is left": the second waits for the first, and then re-reads the rows it locks
 * (READ COMMITTED re-checks `role = 'owner'` on the version the first committed), counting one
 * owner fewer. One statement, rows locked in one order (id): two such changes cannot deadlock.
 * Locking the target's row also orders the change after any login reading it (FOR SHARE) and
 * before any that reads it next — what makes revoking its tokens race-free. FOR NO KEY UPDATE
 * conflicts with both of those and with itself, but not with the key-share locks of foreign keys:
 * tickets and comments of these users are written meanwhile without waiting.
 */
async function lockTargetAndOwners(tx: TenantTransaction, id: string): Promise<{ target: UserRow | undefined; owners: number }> {
  const rows = await tx.query<UserRow>(`select ${columns} from users where id = $1 or role = 'owner' order by id for no key update`, [id]);
  return { target: rows.find((r) => r.id === id), owners: rows.filter((r) => r.role === 'owner').length };
}

export async function userRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  const db = tenantry.db;

  app.get('/me', async (request) => {
    const principal = principalOf(request);
    const t = currentTenant();
    const tenant = { id: t.id, slug: t.slug, name: t.name, plan: t.plan, isolation: t.isolation };
    if (principal.kind === 'api_key') return { api_key: { id: principal.id, role: principal.role, scopes: principal.scopes }, tenant };
    const [user] = await db.query(`select ${columns} from users where id = $1`, [principal.id]);
    if (!user) throw new TenantryError('invalid_token', 'the user of this token no longer exists');
    return { user, tenant };
  });

  app.get<{ Querystring: PageQuery }>('/users', { schema: { querystring: PageQuery } }, async (request) => {
    const after = decodeCursor(request.query.cursor);
    const rows = await db.query<UserRow>(
      `select ${columns} from users where ($1::uuid is null or id > $1::uuid) order by id limit $2`,
      [after ?? null, request.query.limit + 1]);
    return page(rows, request.query.limit);
  });

  app.post<{ Body: CreateUserBody }>('/users', { schema: { body: CreateUserBody } }, async (request, reply) => {
    const me = requireRole(request, ...userManagers);
    if (request.body.role === 'owner' && me.role !== 'owner') throw new TenantryError('insufficient_role', 'only an owner can create owners');
    const passwordHash = await tenantry.passwords.hash(request.body.password);
    const id = uuidv7();
    const email = request.body.email.toLowerCase();
    const [user] = await tenantry.quotas.guard('users', { table: 'users' }, (tx) => {
      tx.audit({ action: 'user.created', target: { type: 'user', id }, detail: { email, role: request.body.role } });
      return tx.query(
        `insert into users (id, email, name, role, password_hash) values ($1, $2, $3, $4, $5) returning ${columns}`,
        [id, email, request.body.name, request.body.role, passwordHash]);
    }).catch(uniqueEmail);
    return reply.status(201).send(user);
  });

  app.get<{ Params: IdParams }>('/users/:id', { schema: { params: IdParams } }, async (request) => {
    const [user] = await db.query(`select ${columns} from users where id = $1`, [request.params.id]);
    if (!user) throw new TenantryError('not_found');
    return user;
  });

  app.patch<{ Params: IdParams; Body: UpdateUserBody }>('/users/:id', { schema: { params: IdParams, body: UpdateUserBody } }, async (request) => {
    const me = requireRole(request, ...userManagers);
    const { name, role, password } = request.body;
    const passwordHash = password ? await tenantry.passwords.hash(password) : null;
    return db.transaction(async (tx) => {
      const { target, owners } = await lockTargetAndOwners(tx, request.params.id);
      if (!target) throw new TenantryError('not_found');
      if (me.role !== 'owner' && (target.role === 'owner' || role === 'owner')) {
        throw new TenantryError('insufficient_role', 'only an owner can change owners');
      }
      const roleChanges = role !== undefined && role !== target.role;
      if (roleChanges && target.role === 'owner' && owners <= 1) throw new TenantryError('last_owner', 'the tenant\'s only owner cannot be demoted');
      // Tokens carry the role: a changed role or password ends the user's sessions (they log in
      // again); losing the right to create API keys ends the keys they created. Revoked with the
      // row locked and before the write (see src/auth/revocations.ts), so that a login racing this
      // change cannot keep the old rights, and a crash in between fails closed.
      if (passwordHash !== null || roleChanges) {
        await tenantry.revokeTokens(target.id, { apiKeys: roleChanges && canManageApiKeys(target.role) && !canManageApiKeys(role!) });
      }
      const [user] = await tx.query(
        `update users set name = coalesce($2, name), role = coalesce($3, role),
           password_hash = coalesce($4, password_hash), updated_at = now()
         where id = $1 returning ${columns}`,
        [target.id, name ?? null, role ?? null, passwordHash]);
      const subject = { type: 'user', id: target.id };
      if (roleChanges) tx.audit({ action: 'user.role_changed', target: subject, detail: { from: target.role, to: role } });
      if (passwordHash !== null) tx.audit({ action: 'user.password_changed', target: subject });
      if (name !== undefined && name !== target.name) tx.audit({ action: 'user.updated', target: subject, detail: { fields: ['name'] } });
      return user;
    });
  });

  app.delete<{ Params: IdParams }>('/users/:id', { schema: { params: IdParams } }, async (request, reply) => {
    const me = requireRole(request, ...userManagers);
    if (me.kind === 'user' && me.id === request.params.id) throw new TenantryError('conflict', 'you cannot delete yourself');
    await db.transaction(async (tx) => {
      const { target, owners } = await lockTargetAndOwners(tx, request.params.id);
      if (!target) throw new TenantryError('not_found');
      if (target.role === 'owner' && me.role !== 'owner') throw new TenantryError('insufficient_role', 'only an owner can delete owners');
      if (target.role === 'owner' && owners <= 1) throw new TenantryError('last_owner', 'the tenant\'s only owner cannot be deleted');
      await tenantry.revokeTokens(target.id, { apiKeys: true });
      await tx.query('delete from users where id = $1', [target.id]);
      tx.audit({ action: 'user.deleted', target: { type: 'user', id: target.id }, detail: { email: target.email, role: target.role } });
    });
    return reply.status(204).send();
  });
}
