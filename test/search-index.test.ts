/**
 * `GET /tickets?q=` is indexed (issue 9 §4): the helpdesk's search_tickets (migration 0002), run
 * as the search role, finds a tenant's matches through the trigram indexes that lead with
 * tenant_id, in every placement, with exactly the results the ILIKE scan it replaced returned.
 *
 * The outside finding, kept: a tenant with 3,000 tickets of ~20,000-character descriptions
 * searching for a term that matches nothing took 0.5–0.7 s, a scan of all its rows — under RLS,
 * ILIKE (not leakproof) is never an index condition. Asserted on buffers (EXPLAIN ANALYZE), not
 * on time, which is noisy; the times are printed.
 *
 * The plan inside the function is read with auto_explain on a superuser session that sets the
 * tenant context and the runtime role as the data plane does (the function's statement is not
 * visible to an EXPLAIN of the call): that is the one place this suite speaks to node-postgres
 * directly, for the LOG messages auto_explain sends to the client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { runWithTenant, type Tenant } from '../src/index.js';
import { withDatabase } from '../src/data/driver/index.js';
import { tenantDatabase, tenantRole, tenantSchema } from '../src/core/tenant-ids.js';
import { callAs, serverUrl, startTestStack, type TestStack } from './helpers.js';

/** The route's escaping, restated: ground truth must not borrow the code under test. */
const likePattern = (q: string) => '%' + q.replace(/[\\%_]/g, (c) => '\\' + c) + '%';

interface Place { slug: string; tenant: Tenant; url: string; schema: string; role: string }

describe('ticket search is indexed', () => {
  let stack: TestStack;
  const places: Place[] = [];
  /** A word only this tenant's tickets hold, by slug. */
  const own = (slug: string) => `${slug}onlyword`;

  before(async () => {
    stack = await startTestStack();
    for (const f of stack.tenants) {
      const tenant = (await stack.tenantry.catalog.findBySlug(f.slug))!;
      places.push({
        slug: f.slug, tenant,
        url: f.isolation === 'database' ? withDatabase(serverUrl(), tenantDatabase(f.id)) : stack.databaseUrl,
        schema: f.isolation === 'schema' ? tenantSchema(f.id) : 'app',
        role: f.isolation === 'schema' ? tenantRole(f.id) : 'tenantry_app',
      });
      // A deterministic data set, written through the data plane: words that repeat across
      // tickets, mixed case, LIKE's special characters, and a word of this tenant only.
      const words = ['Printer', 'invoice', 'VPN', 'login', 'refund', '100%', 'snake_case', 'back\\slash', 'abc', own(f.slug)];
      await runWithTenant(tenant, () => stack.tenantry.db.transaction(async (tx) => {
        for (let i = 0; i < 40; i++) {
          const title = `${words[i % words.length]} ${i}`;
          const description = i % 3 ? `${words[(i * 7) % words.length]} and ${words[(i * 3) % words.length]!.toLowerCase()}` : '';
          const status = ['open', 'pending', 'resolved', 'closed'][i % 4];
          await tx.query('insert into tickets (id, title, description, status) values ($1, $2, $3, $4)', [uuidv7(), title, description, status]);
        }
      }));
      // Enough rows that no planner reads a tenant's tickets whole because that is cheaper
      // anyway (none of them matches a query of these tests).
      const store = await stack.storeOf(f.id);
      await store.sql.query(`insert into ${store.table('tickets')} (tenant_id, id, title, description)
        select $1, gen_random_uuid(), 'filler ' || g, repeat('zz yy ww ', 110) || g from generate_series(1, 1500) g`, [f.id]);
      await store.sql.query(`analyze ${store.table('tickets')}`);
    }
  });
  after(async () => { await stack?.close(); });

  /** Every page of `GET /tickets?q=…` (limit 7), as the tenant's agent. */
  async function searchAll(slug: string, q: string, status?: string): Promise<{ ids: string[]; pages: number; first: Record<string, unknown> | undefined }> {
    const token = await stack.token(slug, 'agent');
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    let first: Record<string, unknown> | undefined;
    do {
      const qs = new URLSearchParams({ q, limit: '7', ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) });
      const res = await callAs(stack, slug, token, 'GET', `/api/v1/tickets?${qs}`);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as { data: { id: string }[]; next_cursor: string | null };
      first ??= body.data[0];
      ids.push(...body.data.map((t) => t.id));
      cursor = body.next_cursor;
      pages++;
    } while (cursor);
    return { ids, pages, first };
  }

  /** The plans auto_explain logs for `call` run as the place's runtime role in the tenant's context (or none). */
  async function nestedPlans(place: Place, call: string, params: unknown[], tenant: string | null = place.tenant.id): Promise<{ plans: string[]; rows: unknown[] }> {
    const client = new pg.Client({ connectionString: place.url });
    const plans: string[] = [];
    client.on('notice', (n) => { if (/plan:/i.test(n.message ?? '')) plans.push(n.message!); });
    await client.connect();
    try {
      await client.query(`load 'auto_explain'`);
      await client.query(`set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on;
        set auto_explain.log_analyze = on; set auto_explain.log_buffers = on; set client_min_messages = log`);
      await client.query('begin');
      await client.query(`select set_config('app.tenant_id', $1, true), set_config('search_path', $2, true)`, [tenant ?? '', `"${place.schema}"`]);
      await client.query(`set local role "${place.role}"`);
      const { rows } = await client.query(call, params);
      await client.query('commit');
      return { plans, rows };
    } finally {
      await client.end();
    }
  }

  it('in every placement, the search runs a bitmap index scan on the trigram indexes with the pattern in the Index Cond', async () => {
    for (const place of places) {
      const pattern = likePattern(own(place.slug));
      const { plans, rows } = await nestedPlans(place, 'select s.id from search_tickets($1, null, null, 26) as s(id)', [pattern]);
      assert.ok(rows.length > 0, `${place.slug}: its own word is found`);
      const inner = plans.find((p) => /from tickets t/.test(p));
      assert.ok(inner, `${place.slug}: the function's statement was explained: ${plans.join('\n---\n')}`);
      for (const index of ['tickets_tenant_title_trgm_idx', 'tickets_tenant_description_trgm_idx']) {
        assert.match(inner, new RegExp(`Bitmap Index Scan on ${index}`), `${place.slug}: ${inner}`);
      }
      assert.match(inner, /Index Cond: \(\(tenant_id = .*\) AND \(title ~~\* /, `${place.slug}: the pattern is an index condition: ${inner}`);
      assert.doesNotMatch(inner, /Seq Scan|Index Scan Backward|Rows Removed by Filter/, `${place.slug}: ${inner}`);
    }
  });

  it('a term of another tenant finds nothing, through the route and the function; without a context, nothing at all', async () => {
    for (const place of places) {
      for (const other of places.filter((p) => p !== place)) {
        const { ids } = await searchAll(place.slug, own(other.slug));
        assert.deepEqual(ids, [], `${place.slug} searching ${other.slug}'s word`);
        const rows = await runWithTenant(place.tenant, () =>
          stack.tenantry.db.query('select * from search_tickets($1, null, null, 100)', [likePattern(own(other.slug))]));
        assert.deepEqual(rows, []);
      }
      const { rows } = await nestedPlans(place, 'select s.id from search_tickets($1, null, null, 100) as s(id)', ['%'], null);
      assert.deepEqual(rows, [], `${place.slug}: no context, no ids`);
    }
  });

  it('results equal the ILIKE ground truth, page by page, with and without status, in every placement', async () => {
    const queries = ['printer', 'PRINTER', 'vpn and', '100%', '%', '_', 'snake_case', 'back\\slash', '\\', 'ab', 'c', 'nothing-matches-this'];
    for (const place of places) {
      const store = await stack.storeOf(place.tenant.id);
      for (const q of queries) {
        for (const status of [undefined, 'open', 'closed']) {
          const truth = (await store.sql.query<{ id: string }>(
            `select id from ${store.table('tickets')} where tenant_id = $1 and (title ilike $2 or description ilike $2)
             and ($3::text is null or status = $3) order by id desc`, [place.tenant.id, likePattern(q), status ?? null])).map((r) => r.id);
          const got = await searchAll(place.slug, q, status);
          assert.deepEqual(got.ids, truth, `${place.slug} q=${q} status=${status}`);
          assert.equal(got.pages, Math.max(1, Math.ceil(truth.length / 7)), `${place.slug} q=${q}: pages`);
        }
      }
      // A row of the search is the ticket as the API shows it anywhere: same columns, same values.
      const token = await stack.token(place.slug, 'agent');
      const { first } = await searchAll(place.slug, 'printer');
      assert.ok(first);
      assert.deepEqual(first, (await callAs(stack, place.slug, token, 'GET', `/api/v1/tickets/${first.id}`)).json());
    }
  });

  it('the outside finding: 3,000 tickets with descriptions up to 20,000 characters, a term that matches nothing — an index lookup, not a scan', async () => {
    const acme = places.find((p) => p.slug === 'acme')!;
    // Written as the superuser (one statement): prose-like descriptions from a small vocabulary,
    // each starting at another word; every tenth is 20,000 characters long, the others 2,000 (all
    // of 20,000 would spend ~15 s on the trigrams of the index alone, ~5 ms per such ticket).
    const loadStarted = performance.now();
    await stack.admin.query(`
      with vocab as (select array['customer', 'reports', 'that', 'the', 'printer', 'on', 'floor', 'three', 'jams', 'when',
        'printing', 'invoices', 'after', 'update', 'please', 'check', 'driver', 'version', 'and', 'network', 'settings',
        'restart', 'spooler', 'service', 'ticket', 'escalated', 'to', 'second', 'level', 'support'] as w),
      base as (select string_agg(w[1 + (k * 7 + k / 5) % 30], ' ') as text from vocab, generate_series(1, 4000) k)
      insert into app.tickets (tenant_id, id, title, description)
      select $1, gen_random_uuid(), 'Printer problem ' || g,
        left(substr(base.text, 1 + (g * 37) % 5000) || ' ' || base.text, case when g % 10 = 0 then 20000 else 2000 end)
      from base, generate_series(1, 3000) g`, [acme.tenant.id]);
    await stack.admin.query('analyze app.tickets');
    console.log(`# loaded 3,000 tickets in ${Math.round(performance.now() - loadStarted)} ms`);

    const term = likePattern('xylophone');
    interface Node { 'Node Type': string; 'Rows Removed by Filter'?: number; Plans?: Node[] }
    type Plan = [{ Plan: Node & { 'Shared Hit Blocks': number; 'Shared Read Blocks': number }; 'Execution Time': number }];
    const removed = (n: Node): number => (n['Rows Removed by Filter'] ?? 0) + (n.Plans ?? []).reduce((a, c) => a + removed(c), 0);
    const explain = async (sql: string, params: unknown[]) => {
      const [row] = await runWithTenant(acme.tenant, () => stack.tenantry.db.query<{ 'QUERY PLAN': Plan }>(`explain (analyze, buffers, format json) ${sql}`, params));
      const plan = row!['QUERY PLAN'][0];
      return { buffers: plan.Plan['Shared Hit Blocks'] + plan.Plan['Shared Read Blocks'], ms: plan['Execution Time'], filtered: removed(plan.Plan) };
    };
    // Before: the statement the route ran until now, as the runtime role under RLS.
    const scan = await explain(`select id from tickets where (title ilike $1 or description ilike $1) order by id desc limit 26`, [term]);
    // After: the statement the route runs now.
    const indexed = await explain(`select id, title from tickets where id = any(array(select search_tickets($1::text, null::text, null::uuid, 26)))
      order by id desc`, [term]);
    const token = await stack.token('acme', 'agent');
    const started = performance.now();
    const res = await callAs(stack, 'acme', token, 'GET', '/api/v1/tickets?q=xylophone');
    const requestMs = performance.now() - started;
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { data: [], next_cursor: null });
    console.log(`# q=xylophone over 4,540 tickets: ILIKE under RLS ${scan.buffers} buffers, ${scan.filtered} rows filtered, ${scan.ms.toFixed(1)} ms; ` +
      `search_tickets ${indexed.buffers} buffers, ${indexed.ms.toFixed(1)} ms; the HTTP request ${requestMs.toFixed(1)} ms`);
    // The finding reproduced: the old statement reads and filters every ticket of the tenant.
    assert.ok(scan.filtered >= 4500, `the old statement filters every ticket of the tenant (${scan.filtered})`);
    // The fix: index pages only (the tenant's posting list and the term's trigrams in two indexes).
    assert.ok(indexed.buffers <= 150, `the search reads a few index pages, not the tenant's rows (${indexed.buffers} buffers)`);

    // A term that does match still pages correctly over the big tenant.
    const { ids } = await searchAll('acme', 'problem 12');
    const truth = (await stack.admin.query<{ id: string }>(
      `select id from app.tickets where tenant_id = $1 and (title ilike $2 or description ilike $2) order by id desc`,
      [acme.tenant.id, likePattern('problem 12')])).map((r) => r.id);
    assert.equal(ids.length, 111);
    assert.deepEqual(ids, truth);
  });
});
