/**
 * The audit logs (docs/audit-log.md) on a real PostgreSQL, in all three placements: every write of
 * the helpdesk and every sign-in leaves its entry (who, what, target, request id, client address)
 * in the tenant's own log, in the transaction of the change; the runtime roles may read and insert
 * entries but never update, delete or truncate them (tried as those roles, and shown to go red when
 * a grant is put back); the chains — the tenant's and the platform log's — are verified by
 * `tenantry audit verify`, which finds an entry edited, re-hashed or removed with owner rights;
 * concurrent writes keep one chain; platform entries are written before the work they announce, or
 * the work is refused; the routes (roles, isolation, cursors) and the analytics computed from them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withPlatformScope } from '../src/index.js';
import { createPool, withCredentials, withDatabase, type Sql } from '../src/data/driver/index.js';
import { verifyTenantAudit } from '../src/audit-log/verify.js';
import { ADMIN_TOKEN, ROLE_PASSWORD, callAs, startTestStack, type TestStack } from './helpers.js';
import { runCli } from './fixtures/platform.js';

type Entry = {
  id: string; log: string; seq: number | null; at: string; actor: { type: string; id: string | null }; action: string;
  target: { type: string; id: string } | null; request_id: string | null; client_address: string | null; detail: Record<string, unknown>;
};

describe('audit logs', () => {
  let stack: TestStack;
  const slugs = ['acme', 'globex', 'initech'] as const;
  const idOf = (slug: string) => stack.tenants.find((t) => t.slug === slug)!.id;
  const hexOf = (slug: string) => idOf(slug).replace(/-/g, '');

  before(async () => { stack = await startTestStack(); });
  after(async () => { await stack?.close(); });

  async function trail(slug: string, limit = 100): Promise<Entry[]> {
    const res = await callAs(stack, slug, await stack.token(slug, 'owner'), 'GET', `/api/v1/audit-log?limit=${limit}`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json().data as Entry[];
  }

  /** The tenant log's table where the tenant's data is, for superuser edits. */
  async function logTable(slug: string): Promise<{ sql: Sql; table: string }> {
    const store = await stack.storeOf(idOf(slug));
    return { sql: store.sql, table: store.table('tenantry_audit_log') };
  }

  for (const slug of slugs) {
    it(`${slug}: every write and sign-in has its entry, with who, what, target, request id and client`, async () => {
      const owner = await stack.token(slug, 'owner');
      const ownerId = stack.tenants.find((t) => t.slug === slug)!.users.find((u) => u.role === 'owner')!.id;
      const created = await callAs(stack, slug, owner, 'POST', '/api/v1/tickets', { title: `audit ${slug}` });
      assert.equal(created.statusCode, 201, created.body);
      const ticketId = created.json().id as string;
      const requestId = created.headers['x-request-id'] as string;
      assert.equal((await callAs(stack, slug, owner, 'PATCH', `/api/v1/tickets/${ticketId}`, { status: 'resolved' })).statusCode, 200);
      assert.equal((await callAs(stack, slug, owner, 'PATCH', `/api/v1/tickets/${ticketId}`, { priority: 'high' })).statusCode, 200);
      assert.equal((await callAs(stack, slug, owner, 'POST', `/api/v1/tickets/${ticketId}/comments`, { body: 'noted' })).statusCode, 201);
      const user = await callAs(stack, slug, owner, 'POST', '/api/v1/users', { email: `audited-${slug}@example.com`, name: 'A', role: 'agent', password: 'correct-horse-1' });
      assert.equal(user.statusCode, 201, user.body);
      const userId = user.json().id as string;
      assert.equal((await callAs(stack, slug, owner, 'PATCH', `/api/v1/users/${userId}`, { role: 'admin', password: 'correct-horse-2' })).statusCode, 200);
      const bad = await stack.app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': slug }, payload: { email: `audited-${slug}@example.com`, password: 'wrong-password' } });
      assert.equal(bad.statusCode, 401);
      const good = await stack.app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { 'x-tenant': slug }, payload: { email: `audited-${slug}@example.com`, password: 'correct-horse-2' } });
      assert.equal(good.statusCode, 200);
      const key = await callAs(stack, slug, owner, 'POST', '/api/v1/api-keys', { name: 'audited key' });
      assert.equal(key.statusCode, 201, key.body);
      assert.equal((await callAs(stack, slug, owner, 'DELETE', `/api/v1/api-keys/${key.json().id}`)).statusCode, 204);
      assert.equal((await callAs(stack, slug, owner, 'DELETE', `/api/v1/users/${userId}`)).statusCode, 204);
      assert.equal((await callAs(stack, slug, owner, 'DELETE', `/api/v1/tickets/${ticketId}`)).statusCode, 204);

      const entries = await trail(slug);
      const find = (action: string, targetId?: string) => entries.find((e) => e.action === action && (!targetId || e.target?.id === targetId));
      const ticketCreated = find('ticket.created', ticketId);
      assert.ok(ticketCreated, JSON.stringify(entries.map((e) => e.action)));
      assert.deepEqual(ticketCreated.actor, { type: 'user', id: ownerId });
      assert.equal(ticketCreated.request_id, requestId);
      assert.equal(ticketCreated.client_address, '127.0.0.1');
      assert.equal(ticketCreated.log, 'tenant');
      assert.deepEqual(find('ticket.resolved', ticketId)?.detail.status, { from: 'open', to: 'resolved' });
      assert.ok(find('ticket.updated', ticketId));
      assert.ok(find('ticket.deleted', ticketId));
      assert.ok(find('comment.created'));
      assert.ok(find('user.created', userId));
      assert.deepEqual(find('user.role_changed', userId)?.detail, { from: 'agent', to: 'admin' });
      assert.ok(find('user.password_changed', userId));
      assert.ok(find('user.deleted', userId));
      const failed = find('auth.login_failed');
      assert.deepEqual(failed?.actor, { type: 'anonymous', id: null });
      assert.equal(failed?.detail.email, `audited-${slug}@example.com`);
      assert.deepEqual(find('auth.login_succeeded', userId)?.actor, { type: 'user', id: userId });
      // API keys live in the catalog: their entries too, in the platform log, merged into the trail.
      const keyCreated = find('api_key.created', key.json().id);
      assert.equal(keyCreated?.log, 'platform');
      assert.equal(keyCreated?.detail.prefix, key.json().prefix);
      // The secret is everything after `tk_<prefix>_`: base64url, so it may hold '_' itself (taking
      // the third '_'-separated part gave a fragment, once the empty string, found in any text).
      const secret = (key.json().key as string).split('_').slice(2).join('_');
      assert.equal(secret.length, 32);
      assert.ok(!JSON.stringify(keyCreated).includes(secret), 'the secret is never logged');
      assert.ok(find('api_key.revoked', key.json().id));
      assert.ok(find('tenant.created'));
      // Newest first, and the tenant log's seqs are consecutive.
      const own = entries.filter((e) => e.log === 'tenant').map((e) => e.seq!);
      assert.deepEqual(own, [...own].sort((a, b) => b - a));
      for (let i = 1; i < own.length; i++) assert.equal(own[i - 1]! - own[i]!, 1);

      const report = await verifyTenantAudit(stack.databaseUrl, slug);
      assert.equal(report.ok, true, JSON.stringify(report));
      assert.equal(report.tenantLog.entries, own[0]);
    });
  }

  it('an entry commits with its change or neither does', async () => {
    const { sql, table } = await logTable('globex');
    const owner = await stack.token('globex', 'owner');
    const count = async () => (await sql.query<{ n: number }>(`select count(*)::int as n from ${(await stack.storeOf(idOf('globex'))).table('tickets')} where title = 'refused by the log'`))[0]!.n;
    // The log refuses the entry: the ticket is not written either.
    await sql.query(`alter table ${table} add constraint refuse_ticket check (action <> 'ticket.created') not valid`);
    try {
      const res = await callAs(stack, 'globex', owner, 'POST', '/api/v1/tickets', { title: 'refused by the log' });
      assert.ok(res.statusCode >= 400, res.body);
      assert.equal(await count(), 0);
    } finally {
      await sql.query(`alter table ${table} drop constraint refuse_ticket`);
    }
    // A change that fails leaves no entry.
    const before = (await trail('globex')).length;
    const res = await callAs(stack, 'globex', owner, 'POST', '/api/v1/tickets', { title: 'bad assignee', assignee_id: '00000000-0000-7000-8000-000000000000' });
    assert.equal(res.statusCode, 422);
    assert.equal((await trail('globex')).length, before);
    assert.equal((await verifyTenantAudit(stack.databaseUrl, 'globex')).ok, true);
  });

  /**
   * What a runtime role can do to a tenant's entries: each statement in its own transaction with
   * the tenant's context, as the data plane runs them.
   */
  async function tryAsRuntime(slug: string): Promise<Record<'select' | 'insert' | 'update' | 'delete' | 'truncate', string>> {
    const t = stack.tenants.find((x) => x.slug === slug)!;
    const url = withCredentials(t.isolation === 'database' ? withDatabase(stack.databaseUrl, `tenant_${hexOf(slug)}`) : stack.databaseUrl, 'tenantry_app', ROLE_PASSWORD);
    const schema = t.isolation === 'schema' ? `t_${hexOf(slug)}` : 'app';
    const sql = createPool(url, { max: 1 });
    const run = async (text: string) => {
      try {
        await sql.transaction(async (tx) => {
          await tx.query("select set_config('app.tenant_id', $1, true), set_config('search_path', $2, true)", [t.id, schema]);
          if (t.isolation === 'schema') await tx.query(`set local role "t_${hexOf(slug)}"`);
          await tx.query(text);
          throw new Error('rolled back');
        });
        return 'allowed';
      } catch (err) {
        const e = err as { code?: string; message: string };
        return e.message === 'rolled back' ? 'allowed' : e.code === '42501' ? 'denied' : `error ${e.code}: ${e.message}`;
      }
    };
    try {
      return {
        select: await run('select count(*) from tenantry_audit_log'),
        insert: await run(`insert into tenantry_audit_log (tenant_id, seq, at, actor_type, action, hash) values ('${t.id}', 1000000, now(), 'user', 'forged', 'x')`),
        update: await run("update tenantry_audit_log set detail = '{\"edited\": true}'"),
        delete: await run('delete from tenantry_audit_log'),
        truncate: await run('truncate tenantry_audit_log'),
      };
    } finally {
      await sql.end();
    }
  }

  for (const slug of slugs) {
    it(`${slug}: the runtime role may read and insert entries, never update, delete or truncate them (red with a grant back)`, async () => {
      assert.deepEqual(await tryAsRuntime(slug), { select: 'allowed', insert: 'allowed', update: 'denied', delete: 'denied', truncate: 'denied' });
      const { sql, table } = await logTable(slug);
      const t = stack.tenants.find((x) => x.slug === slug)!;
      const role = t.isolation === 'schema' ? `"t_${hexOf(slug)}"` : 'tenantry_app';
      await sql.query(`grant update, delete on ${table} to ${role}`);
      try {
        const loose = await tryAsRuntime(slug);
        assert.equal(loose.update, 'allowed');
        assert.equal(loose.delete, 'allowed');
      } finally {
        await sql.query(`revoke update, delete on ${table} from ${role}`);
      }
    });
  }

  it('the catalog role may read and insert platform entries, never update or delete them', async () => {
    const sql = createPool(withCredentials(stack.databaseUrl, 'tenantry_platform', ROLE_PASSWORD), { max: 1 });
    try {
      await sql.query('select count(*) from tenantry.audit_log');
      for (const text of ["update tenantry.audit_log set actor = 'someone else'", 'delete from tenantry.audit_log', 'truncate tenantry.audit_log']) {
        await assert.rejects(() => sql.query(text), (err: { code?: string }) => err.code === '42501', text);
      }
    } finally {
      await sql.end();
    }
  });

  for (const slug of slugs) {
    it(`${slug}: verify finds an entry edited, re-hashed or removed with owner rights; the CLI exits 1`, async () => {
      const owner = await stack.token(slug, 'owner');
      for (let i = 0; i < 3; i++) assert.equal((await callAs(stack, slug, owner, 'POST', '/api/v1/tickets', { title: `chain ${i}` })).statusCode, 201);
      const { sql, table } = await logTable(slug);
      const id = idOf(slug);
      const clean = await verifyTenantAudit(stack.databaseUrl, slug);
      assert.equal(clean.ok, true);
      const head = clean.tenantLog.head!.seq;
      const victim = head - 1;
      // The tables' RLS is forced: the owner's edits need the tenant's context too.
      const asOwner = (text: string, params: unknown[] = []) => sql.transaction(async (tx) => {
        await tx.query("select set_config('app.tenant_id', $1, true)", [id]);
        await tx.query(text, params);
      });
      const [saved] = await sql.query<{ detail: unknown; hash: string }>(`select detail, hash from ${table} where tenant_id = $1 and seq = $2`, [id, victim]);

      await asOwner(`update ${table} set detail = '{"title": "forged"}' where tenant_id = $1 and seq = $2`, [id, victim]);
      assert.equal((await verifyTenantAudit(stack.databaseUrl, slug)).tenantLog.firstBroken, victim);
      const cli = await runCli(['audit', 'verify', slug, '--json'], stack.databaseUrl);
      assert.equal(cli.code, 1, cli.stderr);
      assert.equal((cli.lines[0] as { tenantLog: { firstBroken: number } }).tenantLog.firstBroken, victim);

      // Re-hashed to fit its new content: the next entry no longer follows.
      await asOwner(`update ${table} l set hash = encode(sha256(convert_to(p.hash || jsonb_build_array(l.seq, floor(extract(epoch from l.at) * 1000000)::bigint,
        l.actor_type, l.actor_id, l.action, l.target_type, l.target_id, l.request_id, l.client_address, l.detail)::text, 'UTF8')), 'hex')
        from ${table} p where p.tenant_id = l.tenant_id and p.seq = l.seq - 1 and l.tenant_id = $1 and l.seq = $2`, [id, victim]);
      assert.equal((await verifyTenantAudit(stack.databaseUrl, slug)).tenantLog.firstBroken, victim + 1);

      await asOwner(`update ${table} set detail = $3::jsonb, hash = $4 where tenant_id = $1 and seq = $2`, [id, victim, JSON.stringify(saved!.detail), saved!.hash]);
      assert.equal((await verifyTenantAudit(stack.databaseUrl, slug)).ok, true);

      // Removed: a gap.
      // (kept as jsonb text: a JS Date would drop the timestamp's microseconds)
      const [row] = await sql.query<{ j: string }>(`select to_jsonb(l)::text as j from ${table} l where tenant_id = $1 and seq = $2`, [id, victim]);
      await asOwner(`delete from ${table} where tenant_id = $1 and seq = $2`, [id, victim]);
      assert.equal((await verifyTenantAudit(stack.databaseUrl, slug)).tenantLog.firstBroken, victim + 1);
      await asOwner(`insert into ${table} select * from jsonb_populate_record(null::${table}, $1::jsonb)`, [row!.j]);
      const ok = await runCli(['audit', 'verify', slug], stack.databaseUrl);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /intact/);
    });
  }

  for (const slug of slugs) {
    it(`${slug}: the catalog's anchor catches the newest entry removed, and the chain re-hashed after an edit`, async () => {
      const owner = await stack.token(slug, 'owner');
      for (let i = 0; i < 2; i++) assert.equal((await callAs(stack, slug, owner, 'POST', '/api/v1/tickets', { title: `anchored ${i}` })).statusCode, 201);
      await stack.tenantry.auditAnchors.flush();
      const clean = await verifyTenantAudit(stack.databaseUrl, slug);
      assert.equal(clean.ok, true, JSON.stringify(clean));
      const head = clean.tenantLog.head!;
      assert.deepEqual(clean.tenantLog.anchor, { seq: head.seq, hash: head.hash, holds: true });
      const { sql, table } = await logTable(slug);
      const id = idOf(slug);
      const asOwner = (text: string, params: unknown[] = []) => sql.transaction(async (tx) => {
        await tx.query("select set_config('app.tenant_id', $1, true)", [id]);
        await tx.query(text, params);
      });
      const saved = await sql.query<{ seq: string; j: string; detail: unknown; hash: string }>(
        `select seq::text, to_jsonb(l)::text as j, detail, hash from ${table} l where tenant_id = $1 and seq >= $2 order by seq`, [id, head.seq - 1]);

      // The newest entry removed: what is left is an intact, shorter chain — but not the anchor.
      await asOwner(`delete from ${table} where tenant_id = $1 and seq = $2`, [id, head.seq]);
      const truncated = await verifyTenantAudit(stack.databaseUrl, slug);
      assert.equal(truncated.tenantLog.firstBroken, null);
      assert.equal(truncated.tenantLog.anchor?.holds, false);
      assert.equal(truncated.ok, false);
      const cli = await runCli(['audit', 'verify', slug], stack.databaseUrl);
      assert.equal(cli.code, 1);
      assert.match(cli.stdout, /anchored entry seq \d+ is gone or re-hashed/);
      await asOwner(`insert into ${table} select * from jsonb_populate_record(null::${table}, $1::jsonb)`, [saved[1]!.j]);
      assert.equal((await verifyTenantAudit(stack.databaseUrl, slug)).ok, true);

      // An entry edited and every hash after it recomputed: a consistent chain, but not the anchor's.
      await asOwner(`update ${table} set detail = '{"title": "rewritten"}' where tenant_id = $1 and seq = $2`, [id, head.seq - 1]);
      for (const seq of [head.seq - 1, head.seq]) {
        await asOwner(`update ${table} l set hash = encode(sha256(convert_to(p.hash || jsonb_build_array(l.seq, floor(extract(epoch from l.at) * 1000000)::bigint,
          l.actor_type, l.actor_id, l.action, l.target_type, l.target_id, l.request_id, l.client_address, l.detail)::text, 'UTF8')), 'hex')
          from ${table} p where p.tenant_id = l.tenant_id and p.seq = l.seq - 1 and l.tenant_id = $1 and l.seq = $2`, [id, seq]);
      }
      const rewritten = await verifyTenantAudit(stack.databaseUrl, slug);
      assert.equal(rewritten.tenantLog.firstBroken, null, 'the rewrite is consistent in itself');
      assert.equal(rewritten.tenantLog.anchor?.holds, false);
      assert.equal(rewritten.ok, false);
      for (const r of saved) await asOwner(`update ${table} set detail = $3::jsonb, hash = $4 where tenant_id = $1 and seq = $2`, [id, r.seq, JSON.stringify(r.detail), r.hash]);
      assert.equal((await verifyTenantAudit(stack.databaseUrl, slug)).ok, true);
    });
  }

  it('the platform log\'s chain of a tenant is verified too', async () => {
    const globex = idOf('globex');
    await withPlatformScope({ actor: 'test', reason: 'limits for the chain' }, () => stack.tenantry.tenants.setLimits(globex, { burst: 999_999 }));
    const clean = await verifyTenantAudit(stack.databaseUrl, 'globex');
    assert.equal(clean.ok, true, JSON.stringify(clean));
    assert.ok(clean.platformLog.entries >= 2);
    const seq = clean.platformLog.head!.seq;
    await stack.admin.query("update tenantry.audit_log set actor = 'nobody' where tenant_id = $1 and seq = $2", [globex, seq]);
    const broken = await verifyTenantAudit(stack.databaseUrl, 'globex');
    assert.equal(broken.ok, false);
    assert.equal(broken.platformLog.firstBroken, seq);
    await stack.admin.query("update tenantry.audit_log set actor = 'test' where tenant_id = $1 and seq = $2", [globex, seq]);
    assert.equal((await verifyTenantAudit(stack.databaseUrl, 'globex')).ok, true);
    assert.equal((await runCli(['audit', 'verify', 'no-such-tenant'], stack.databaseUrl)).code, 2);
  });

  it('concurrent writes of one tenant keep one chain (5 rounds × 30 at once)', async () => {
    const owner = await stack.token('acme', 'agent');
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) =>
        callAs(stack, 'acme', owner, 'POST', '/api/v1/tickets', { title: `race ${round}.${i}` })));
      assert.deepEqual(answers.map((a) => a.statusCode), answers.map(() => 201));
      const report = await verifyTenantAudit(stack.databaseUrl, 'acme');
      assert.equal(report.ok, true, JSON.stringify(report));
    }
    const { sql, table } = await logTable('acme');
    const [dup] = await sql.query<{ n: number }>(`select count(*)::int as n from (select seq from ${table} where tenant_id = $1 group by seq having count(*) > 1) d`, [idOf('acme')]);
    assert.equal(dup!.n, 0);
  });

  it('the trail: owners and admins only, the tenant\'s own entries only, pages by cursor without gaps or repeats', async () => {
    const agent = await callAs(stack, 'acme', await stack.token('acme', 'agent'), 'GET', '/api/v1/audit-log');
    assert.equal(agent.statusCode, 403);
    assert.equal((await callAs(stack, 'acme', await stack.token('acme', 'admin'), 'GET', '/api/v1/audit-log')).statusCode, 200);
    const all = await trail('acme', 100);
    const globexTickets = (await trail('globex', 100)).filter((e) => e.target).map((e) => e.target!.id);
    assert.ok(all.every((e) => !globexTickets.includes(e.target?.id ?? '')));
    const owner = await stack.token('acme', 'owner');
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await callAs(stack, 'acme', owner, 'GET', `/api/v1/audit-log?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as { data: Entry[]; next_cursor: string | null };
      seen.push(...body.data.map((e) => e.id));
      cursor = body.next_cursor;
    } while (cursor && seen.length < 500);
    assert.equal(new Set(seen).size, seen.length);
    const full: Entry[] = [];
    cursor = null;
    do {
      const res = await callAs(stack, 'acme', owner, 'GET', `/api/v1/audit-log?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      full.push(...(res.json() as { data: Entry[] }).data);
      cursor = res.json().next_cursor;
    } while (cursor);
    assert.deepEqual(seen, full.map((e) => e.id));
    for (let i = 1; i < full.length; i++) assert.ok(full[i - 1]!.at >= full[i]!.at, `newest first: ${full[i - 1]!.id} ${full[i]!.id}`);
    assert.ok(full.length > 20);
    assert.ok(seen.some((id) => id.startsWith('p:')) && seen.some((id) => id.startsWith('t:')));
    for (const bad of ['x', Buffer.from('[1,2]').toString('base64url'), Buffer.from('["1", 5, 1]').toString('base64url')]) {
      const res = await callAs(stack, 'acme', owner, 'GET', `/api/v1/audit-log?cursor=${bad}`);
      assert.equal(res.statusCode, 400, bad);
      assert.equal(res.json().code, 'invalid_cursor');
    }
  });

  it('admin: a tenant\'s trail by id or slug, and the platform log, by cursor', async () => {
    const admin = (url: string) => stack.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const suspend = await stack.app.inject({ method: 'POST', url: `/admin/api/tenants/${idOf('initech')}/suspend`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.ok([200, 204].includes(suspend.statusCode), suspend.body);
    const resume = await stack.app.inject({ method: 'POST', url: `/admin/api/tenants/${idOf('initech')}/resume`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.ok([200, 204].includes(resume.statusCode), resume.body);
    const bySlug = await admin('/admin/api/audit-log?tenant=initech&limit=100');
    assert.equal(bySlug.statusCode, 200, bySlug.body);
    const actions = (bySlug.json().data as Entry[]).map((e) => e.action);
    assert.ok(actions.includes('tenant.suspended') && actions.includes('tenant.resumed') && actions.includes('ticket.created'), actions.join());
    const suspended = (bySlug.json().data as Entry[]).find((e) => e.action === 'tenant.suspended')!;
    assert.deepEqual(suspended.actor, { type: 'platform', id: 'admin-api' });
    assert.equal(suspended.request_id, suspend.headers['x-request-id']);
    assert.equal(suspended.client_address, '127.0.0.1');
    assert.deepEqual(suspended.target, { type: 'tenant', id: idOf('initech') });
    const byId = await admin(`/admin/api/audit-log?tenant=${idOf('initech')}&limit=100`);
    assert.deepEqual(byId.json().data.map((e: Entry) => e.id), bySlug.json().data.map((e: Entry) => e.id));
    assert.equal((await admin('/admin/api/audit-log?tenant=nobody-here')).statusCode, 404);
    assert.equal((await stack.app.inject({ method: 'GET', url: '/admin/api/audit-log' })).statusCode, 401);
    const first = await admin('/admin/api/audit-log?limit=3');
    assert.equal(first.statusCode, 200);
    const page1 = first.json() as { data: Entry[]; next_cursor: string };
    assert.equal(page1.data.length, 3);
    assert.ok(page1.data.some((e) => e.action === 'platform_scope'), JSON.stringify(page1.data));
    const page2 = (await admin(`/admin/api/audit-log?limit=3&cursor=${page1.next_cursor}`)).json() as { data: Entry[] };
    assert.ok(page2.data.every((e) => !page1.data.some((f) => f.id === e.id)));
  });

  it('platform work waits for its entry: when the log refuses it, nothing is done (503)', async () => {
    await stack.admin.query("alter table tenantry.audit_log add constraint refuse_scope check (action <> 'platform_scope') not valid");
    try {
      const res = await stack.app.inject({ method: 'POST', url: `/admin/api/tenants/${idOf('acme')}/suspend`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(res.statusCode, 503, res.body);
      assert.equal((await stack.tenantry.catalog.findById(idOf('acme')))?.status, 'active');
      const [row] = await stack.admin.query<{ status: string }>('select status from tenantry.tenants where id = $1', [idOf('acme')]);
      assert.equal(row!.status, 'active');
    } finally {
      await stack.admin.query('alter table tenantry.audit_log drop constraint refuse_scope');
    }
  });

  it('analytics: active users, actions, tickets opened and resolved per day, from the logs', async () => {
    const slug = 'initech';
    const owner = await stack.token(slug, 'owner');
    const agent = await stack.token(slug, 'agent');
    const before = (await callAs(stack, slug, owner, 'GET', '/api/v1/analytics?days=7')).json();
    assert.equal(before.data.length, 7);
    const today = new Date().toISOString().slice(0, 10);
    const day0 = before.data[6];
    assert.equal(day0.date, today);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await callAs(stack, slug, agent, 'POST', '/api/v1/tickets', { title: `analytics ${i}` });
      ids.push(res.json().id);
    }
    await callAs(stack, slug, agent, 'PATCH', `/api/v1/tickets/${ids[0]}`, { status: 'resolved' });
    await callAs(stack, slug, agent, 'PATCH', `/api/v1/tickets/${ids[0]}`, { status: 'resolved' });
    const res = await callAs(stack, slug, owner, 'GET', '/api/v1/analytics?days=7');
    assert.equal(res.statusCode, 200);
    const day = res.json().data[6];
    assert.equal(day.tickets_opened - day0.tickets_opened, 3);
    assert.equal(day.tickets_resolved - day0.tickets_resolved, 1, 'resolving a resolved ticket is not a second resolution');
    assert.equal(day.actions['ticket.created'], day.tickets_opened);
    const agentId = stack.tenants.find((t) => t.slug === slug)!.users.find((u) => u.role === 'agent')!.id;
    const { sql, table } = await logTable(slug);
    const [truth] = await sql.query<{ n: number }>(
      `select count(distinct actor_id)::int as n from ${table} where tenant_id = $1 and actor_type = 'user' and at >= date_trunc('day', now() at time zone 'UTC') at time zone 'UTC'`, [idOf(slug)]);
    assert.equal(day.active_users, truth!.n);
    assert.ok(day.active_users >= 1 && agentId);
    for (const q of ['days=0', 'days=91', 'days=x', 'other=1']) {
      assert.equal((await callAs(stack, slug, owner, 'GET', `/api/v1/analytics?${q}`)).statusCode, 400, q);
    }
    assert.equal((await callAs(stack, slug, agent, 'GET', '/api/v1/analytics')).statusCode, 403);
  });
});
