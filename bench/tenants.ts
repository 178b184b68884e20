/**
 * Catalog tenants of the noisy-neighbour and cohort scenarios: real tenants (plan, placement,
 * users) created through tenantry like the demo tenants, then bulk tickets inserted as the
 * superuser straight into their table (`app.tickets` for pooled tenants, `t_<hex>.tickets` for
 * schema tenants) with their tenant_id, in one `insert … select generate_series` each.
 */
import { fixtureTenant, seedDemoTenants, type FixtureTenant } from '../app/fixtures.js';
import type { Isolation, Tenantry } from '../src/index.js';
import { createPool, quoteIdent } from '../src/data/driver/index.js';
import { tenantSchema } from '../src/core/tenant-ids.js';

export interface TenantSpec {
  readonly slug: string;
  readonly plan: string;
  readonly isolation: Exclude<Isolation, 'database'>;
  /** Bulk tickets (beside the fixture's six). */
  readonly tickets: number;
  /** Words of lorem ipsum per description, ±50 % (about 8 bytes each). */
  readonly descriptionWords: number;
}

export interface BenchTenant extends TenantSpec {
  readonly fixture: FixtureTenant;
  readonly id: string;
  /** Where its tickets are (schema.table). */
  readonly table: string;
  /** Ticket ids the reads rotate over. */
  ids: string[];
}

/** Words the seeded titles and descriptions use; a search for one of them matches about 1 ticket in 8. */
export const TOPICS = ['printer', 'invoice', 'login', 'export', 'webhook', 'billing', 'network', 'mailbox'] as const;
/** A search that matches no seeded ticket: the whole tenant is scanned. */
export const NO_MATCH_QUERY = 'zq';

/**
 * Creates the tenants (numbers from `firstNumber` on, so their fixture ids do not collide with the
 * demo tenants') and their tickets. Returns them with `idsPerTenant` ticket ids each.
 */
export async function createBenchTenants(tenantry: Tenantry, url: string, specs: readonly TenantSpec[], firstNumber: number,
  idsPerTenant: number): Promise<BenchTenant[]> {
  const tenants: BenchTenant[] = specs.map((s, i) => {
    const fixture = fixtureTenant(firstNumber + i, s.slug, s.slug, s.plan, s.isolation);
    return { ...s, fixture, id: fixture.id,
      table: `${s.isolation === 'pooled' ? 'app' : quoteIdent(tenantSchema(fixture.id))}.tickets`, ids: [] };
  });
  await seedDemoTenants(tenantry, tenants.map((t) => t.fixture));
  const su = createPool(url, { max: 1 });
  try {
    for (const t of tenants) {
      if (t.tickets > 0) {
        await su.query(
          `insert into ${t.table} (tenant_id, id, title, description, status, priority, requester_id, created_at, updated_at)
           select $1::uuid, md5($1 || ':' || g)::uuid,
                  'Ticket ' || g || ' about the ' || ($5::text[])[1 + g % 8],
                  ($5::text[])[1 + (g / 8) % 8] || ' ' || repeat('lorem ipsum dolor sit amet consectetur ', greatest(1, ($3::int * (50 + g % 100)) / 500)),
                  (array['open', 'pending', 'resolved', 'closed'])[1 + g % 4],
                  (array['low', 'normal', 'high', 'urgent'])[1 + (g / 4) % 4],
                  $4::uuid, now() - make_interval(mins => g), now() - make_interval(mins => g)
             from generate_series(1, $2::int) g`,
          [t.id, t.tickets, t.descriptionWords, t.fixture.users[0]!.id, TOPICS]);
      }
      const rows = await su.query<{ id: string }>(
        `select id::text as id from ${t.table} where tenant_id = $1 order by md5(id::text) limit $2`, [t.id, idsPerTenant]);
      t.ids = rows.map((r) => r.id);
    }
    await su.query('vacuum analyze app.tickets');
    for (const t of tenants) if (t.isolation === 'schema') await su.query(`vacuum analyze ${t.table}`);
  } finally {
    await su.end();
  }
  return tenants;
}

/** A JWT for the tenant's owner, from the server's token endpoint. */
export async function loginOwner(port: number, t: BenchTenant): Promise<string> {
  const owner = t.fixture.users.find((u) => u.role === 'owner')!;
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-tenant': t.slug },
    body: JSON.stringify({ email: owner.email, password: owner.password }),
  });
  if (res.status !== 200) throw new Error(`login to ${t.slug} failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}
