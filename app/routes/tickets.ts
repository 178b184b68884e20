import type { FastifyInstance } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import { TenantryError, type Tenantry } from '../../src/index.js';
import { principalOf, requireRole } from '../../src/http/index.js';
import { decodeCursor, page } from '../pagination.js';
import { CreateCommentBody, CreateTicketBody, IdParams, PageQuery, TicketListQuery, UpdateTicketBody } from '../schemas.js';

const columns = 'id, title, description, status, priority, requester_id, assignee_id, created_at, updated_at';
const commentColumns = 'id, ticket_id, author_id, body, created_at';

function likePattern(q: string): string {
  return '%' + q.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
}

/** The tenant cache's key of the ticket counts (GET /tickets/stats); every ticket write deletes it. */
const STATS_KEY = 'tickets:stats';
/** How long the counts are kept: writes invalidate them, so this bounds only what a lost invalidation could leave. */
const STATS_TTL_MS = 60_000;

export interface TicketStats {
  open: number;
  pending: number;
  resolved: number;
  closed: number;
  total: number;
}

/** An assignee that is not a user of this tenant (or another tenant's user) is a 422. */
function assigneeReference(err: unknown): never {
  if ((err as { code?: string }).code === '23503') throw new TenantryError('invalid_reference', 'assignee_id is not a user of this tenant');
  throw err;
}

export async function ticketRoutes(app: FastifyInstance, { tenantry }: { tenantry: Tenantry }): Promise<void> {
  const db = tenantry.db;

  app.get<{ Querystring: TicketListQuery }>('/tickets', { schema: { querystring: TicketListQuery } }, async (request) => {
    const { status, q, limit, cursor } = request.query;
    const before = decodeCursor(cursor);
    if (q && q.length >= 3) {
      // By index: search_tickets (migration 0002) picks the ids, as the search role, of this
      // tenant only; the tickets are read here as the runtime role, under RLS again.
      const rows = await db.query<{ id: string }>(
        `select ${columns} from tickets
         where id = any(array(select search_tickets($1::text, $2::text, $3::uuid, $4::integer)))
         order by id desc`, [likePattern(q), status ?? null, before ?? null, limit + 1]);
      return page(rows, limit);
    }
    const where: string[] = [];
    const params: unknown[] = [];
    if (status) where.push(`status = $${params.push(status)}`);
    // One or two characters have no trigram, so no index can narrow them: searched here, as the
    // runtime role under RLS, they read this tenant's rows only (newest first, by the tenant-first
    // primary key) and never the other tenants' (as the search function, which bypasses RLS,
    // could when the planner picks a scan of the whole table); the plan's statement timeout bounds
    // them.
    if (q) where.push(`(title ilike $${params.push(likePattern(q))} or description ilike $${params.length})`);
    if (before) where.push(`id < $${params.push(before)}`);
    const rows = await db.query<{ id: string }>(
      `select ${columns} from tickets ${where.length ? 'where ' + where.join(' and ') : ''}
       order by id desc limit $${params.push(limit + 1)}`, params);
    return page(rows, limit);
  });

  app.post<{ Body: CreateTicketBody }>('/tickets', { schema: { body: CreateTicketBody } }, async (request, reply) => {
    const me = principalOf(request);
    const { title, description, priority, assignee_id } = request.body;
    // The plan's ticket quota (403 quota_exceeded, nothing written) is checked in the insert's transaction.
    const id = uuidv7();
    const [ticket] = await tenantry.quotas.guard('tickets', { table: 'tickets' }, (tx) => {
      // Appended at COMMIT, in this transaction: no ticket without its entry, no entry without its ticket.
      tx.audit({ action: 'ticket.created', target: { type: 'ticket', id }, detail: { title, priority: priority ?? 'normal', assignee_id: assignee_id ?? null } });
      return tx.query(
        `insert into tickets (id, title, description, priority, requester_id, assignee_id)
         values ($1, $2, $3, $4, $5, $6) returning ${columns}`,
        [id, title, description ?? '', priority ?? 'normal', me.kind === 'user' ? me.id : null, assignee_id ?? null]);
    }).catch(assigneeReference);
    await tenantry.cache.delete(STATS_KEY);
    return reply.status(201).send(ticket);
  });

  // Counts by status, from the tenant cache: every ticket write below deletes them after it commits.
  app.get('/tickets/stats', async () => tenantry.cache.wrap(STATS_KEY, STATS_TTL_MS, async () => {
    const rows = await db.query<{ status: keyof TicketStats; n: number }>('select status, count(*)::int as n from tickets group by status');
    const stats: TicketStats = { open: 0, pending: 0, resolved: 0, closed: 0, total: 0 };
    for (const r of rows) {
      stats[r.status] = r.n;
      stats.total += r.n;
    }
    return stats;
  }));

  app.get<{ Params: IdParams }>('/tickets/:id', { schema: { params: IdParams } }, async (request) => {
    const [ticket] = await db.query(`select ${columns} from tickets where id = $1`, [request.params.id]);
    if (!ticket) throw new TenantryError('not_found');
    return ticket;
  });

  app.patch<{ Params: IdParams; Body: UpdateTicketBody }>('/tickets/:id', { schema: { params: IdParams, body: UpdateTicketBody } }, async (request) => {
    const b = request.body;
    const ticket = await db.transaction(async (tx) => {
      // The previous status (read with the row locked) tells a resolution from another change.
      const [row] = await tx.query<{ id: string; previous_status: string; status: string }>(
        `with old as (select id, status from tickets where id = $1 for update)
         update tickets t set
           title = coalesce($2, title), description = coalesce($3, description),
           status = coalesce($4, t.status), priority = coalesce($5, priority),
           assignee_id = case when $6::boolean then $7::uuid else assignee_id end,
           updated_at = now()
         from old where t.id = old.id
         returning ${columns.split(', ').map((c) => `t.${c}`).join(', ')}, old.status as previous_status`,
        [request.params.id, b.title ?? null, b.description ?? null, b.status ?? null, b.priority ?? null,
          'assignee_id' in b, b.assignee_id ?? null]);
      if (!row) throw new TenantryError('not_found');
      const { previous_status, ...updated } = row;
      const resolved = updated.status === 'resolved' && previous_status !== 'resolved';
      tx.audit({
        action: resolved ? 'ticket.resolved' : 'ticket.updated', target: { type: 'ticket', id: updated.id },
        detail: { fields: Object.keys(b).sort(), ...(b.status ? { status: { from: previous_status, to: updated.status } } : {}) },
      });
      return updated;
    }).catch(assigneeReference);
    await tenantry.cache.delete(STATS_KEY);
    return ticket;
  });

  app.delete<{ Params: IdParams }>('/tickets/:id', { schema: { params: IdParams } }, async (request, reply) => {
    requireRole(request, 'owner', 'admin');
    await db.transaction(async (tx) => {
      const [gone] = await tx.query<{ id: string; title: string }>('delete from tickets where id = $1 returning id, title', [request.params.id]);
      if (!gone) throw new TenantryError('not_found');
      tx.audit({ action: 'ticket.deleted', target: { type: 'ticket', id: gone.id }, detail: { title: gone.title } });
    });
    await tenantry.cache.delete(STATS_KEY);
    return reply.status(204).send();
  });

  app.get<{ Params: IdParams; Querystring: PageQuery }>('/tickets/:id/comments',
    { schema: { params: IdParams, querystring: PageQuery } }, async (request) => {
      const after = decodeCursor(request.query.cursor);
      return db.transaction(async (tx) => {
        const [ticket] = await tx.query('select 1 from tickets where id = $1', [request.params.id]);
        if (!ticket) throw new TenantryError('not_found');
        const rows = await tx.query<{ id: string }>(
          `select ${commentColumns} from comments where ticket_id = $1 and ($2::uuid is null or id > $2::uuid)
           order by id limit $3`, [request.params.id, after ?? null, request.query.limit + 1]);
        return page(rows, request.query.limit);
      });
    });

  app.post<{ Params: IdParams; Body: CreateCommentBody }>('/tickets/:id/comments',
    { schema: { params: IdParams, body: CreateCommentBody } }, async (request, reply) => {
      const me = principalOf(request);
      // The ticket must be visible (this tenant's): otherwise 404, exactly as for a missing id.
      // Comments have no count quota; the storage quota still applies.
      const comment = await tenantry.quotas.guard('comments', { table: 'comments' }, async (tx) => {
        const [row] = await tx.query<{ id: string }>(
          `insert into comments (id, ticket_id, author_id, body)
           select $1, t.id, $3, $4 from tickets t where t.id = $2
           returning ${commentColumns}`,
          [uuidv7(), request.params.id, me.kind === 'user' ? me.id : null, request.body.body]);
        if (!row) throw new TenantryError('not_found');
        tx.audit({ action: 'comment.created', target: { type: 'comment', id: row.id }, detail: { ticket_id: request.params.id } });
        return row;
      });
      return reply.status(201).send(comment);
    });
}
