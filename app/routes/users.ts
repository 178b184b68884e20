import type { FastifyInstance } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import { TenantryError, currentTenant, hashPassword, type Tenantry } from '../../src/index.js';
import { principalOf, requireRole } from '../../src/http/index.js';
import { decodeCursor, page } from '../pagination.js';
import { CreateUserBody, IdParams, PageQuery, UpdateUserBody } from '../schemas.js';

const columns = 'id, email, name, role, created_at, updated_at';
type UserRow = { id: string; email: string; name: string; role: 'owner' | 'admin' | 'agent' };

function uniqueEmail(err: unknown): never {
  if ((err as { code?: string }).code === '23505') throw new TenantryError('email_taken');
  throw err;
}

export async function userRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  const db = tenantry.db;

  app.get('/me', async (request) => {
    const principal = principalOf(request);
    const t = currentTenant();
    const tenant = { id: t.id, slug: t.slug, name: t.name, plan: t.plan, isolation: t.isolation };
    if (principal.kind === 'api_key') return { api_key: { id: principal.id, role: principal.role }, tenant };
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
    const me = requireRole(request, 'owner', 'admin');
    if (request.body.role === 'owner' && me.role !== 'owner') throw new TenantryError('insufficient_role', 'only an owner can create owners');
    const passwordHash = await hashPassword(request.body.password);
    const [user] = await db.query(
      `insert into users (id, email, name, role, password_hash) values ($1, $2, $3, $4, $5) returning ${columns}`,
      [uuidv7(), request.body.email.toLowerCase(), request.body.name, request.body.role, passwordHash]).catch(uniqueEmail);
    return reply.status(201).send(user);
  });

  app.get<{ Params: IdParams }>('/users/:id', { schema: { params: IdParams } }, async (request) => {
    const [user] = await db.query(`select ${columns} from users where id = $1`, [request.params.id]);
    if (!user) throw new TenantryError('not_found');
    return user;
  });

  app.patch<{ Params: IdParams; Body: UpdateUserBody }>('/users/:id', { schema: { params: IdParams, body: UpdateUserBody } }, async (request) => {
    const me = requireRole(request, 'owner', 'admin');
    const { name, role, password } = request.body;
    const passwordHash = password ? await hashPassword(password) : null;
    return db.transaction(async (tx) => {
      const [target] = await tx.query<UserRow>(`select ${columns} from users where id = $1 for update`, [request.params.id]);
      if (!target) throw new TenantryError('not_found');
      if (me.role !== 'owner' && (target.role === 'owner' || role === 'owner')) {
        throw new TenantryError('insufficient_role', 'only an owner can change owners');
      }
      // Tokens carry the role: a changed role or password ends the user's sessions (they log in
      // again). Revoked before the write, so that a crash in between fails closed.
      if (passwordHash !== null || (role !== undefined && role !== target.role)) await tenantry.revokeTokens(request.params.id);
      const [user] = await tx.query(
        `update users set name = coalesce($2, name), role = coalesce($3, role),
           password_hash = coalesce($4, password_hash), updated_at = now()
         where id = $1 returning ${columns}`,
        [request.params.id, name ?? null, role ?? null, passwordHash]);
      return user;
    });
  });

  app.delete<{ Params: IdParams }>('/users/:id', { schema: { params: IdParams } }, async (request, reply) => {
    const me = requireRole(request, 'owner', 'admin');
    if (me.kind === 'user' && me.id === request.params.id) throw new TenantryError('conflict', 'you cannot delete yourself');
    await db.transaction(async (tx) => {
      const [target] = await tx.query<UserRow>('select id, role from users where id = $1 for update', [request.params.id]);
      if (!target) throw new TenantryError('not_found');
      if (target.role === 'owner' && me.role !== 'owner') throw new TenantryError('insufficient_role', 'only an owner can delete owners');
      await tenantry.revokeTokens(request.params.id);
      await tx.query('delete from users where id = $1', [request.params.id]);
    });
    return reply.status(204).send();
  });
}
