import { hashPassword, withPlatformScope, type Isolation, type Tenantry } from '../src/index.js';

/**
 * Deterministic demo data: the same ids, logins and tickets on every machine. `npm start` seeds
 * them and the tests use them, so what a new user sees is what the suite checks.
 */
export interface FixtureUser { id: string; email: string; name: string; role: 'owner' | 'admin' | 'agent'; password: string }
export interface FixtureTicket { id: string; title: string; description: string; status: 'open' | 'pending' | 'resolved' | 'closed'; priority: 'low' | 'normal' | 'high' | 'urgent'; requester: number; assignee: number | null }
export interface FixtureTenant { id: string; slug: string; name: string; plan: string; isolation: Isolation; users: FixtureUser[]; tickets: FixtureTicket[] }

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
/** A fixed UUIDv7-shaped id: tenant number, kind and sequence are readable in it. */
export const fixtureId = (tenant: number, kind: number, seq: number) =>
  `0190${hex(tenant, 4)}-${hex(kind, 4)}-7000-8000-${hex(seq, 12)}`;

const subjects = [
  ['Cannot log in after password reset', 'The reset link works but the new password is refused.'],
  ['Invoice shows the wrong VAT rate', 'Our October invoice applies 19% instead of 7%.'],
  ['Export to CSV times out', 'Exporting more than 10k rows never finishes.'],
  ['Feature request: dark mode', 'Several agents asked for a dark theme.'],
  ['Webhook deliveries are delayed', 'Events arrive 5 to 10 minutes late since Monday.'],
  ['Typo on the pricing page', 'It says "anually".'],
] as const;
const statuses = ['open', 'open', 'pending', 'resolved', 'open', 'closed'] as const;
const priorities = ['high', 'normal', 'urgent', 'low', 'normal', 'low'] as const;

/**
 * One fixture tenant: number `n` (its ids read 0190<n>-…), three users (owner, admin, agent) and
 * six tickets whose titles start with `[name]`.
 */
export function fixtureTenant(n: number, slug: string, name: string, plan: string, isolation: Isolation): FixtureTenant {
  const users: FixtureUser[] = (['owner', 'admin', 'agent'] as const).map((role, i) => ({
    id: fixtureId(n, 1, i + 1),
    email: `${role}@${slug}.test`,
    name: `${name} ${role[0]!.toUpperCase()}${role.slice(1)}`,
    role,
    password: `${slug}-${role}-password`,
  }));
  const tickets: FixtureTicket[] = subjects.map(([title, description], i) => ({
    id: fixtureId(n, 2, i + 1),
    title: `[${name}] ${title}`,
    description,
    status: statuses[i]!,
    priority: priorities[i]!,
    requester: i % 3,
    assignee: i % 2 === 0 ? 2 : null,
  }));
  return { id: fixtureId(n, 0, 0), slug, name, plan, isolation, users, tickets };
}

/** One demo tenant in each placement, each from the plan whose default placement it is. */
export const demoTenants: readonly FixtureTenant[] = [
  fixtureTenant(1, 'acme', 'Acme', 'pro', 'pooled'),
  fixtureTenant(2, 'globex', 'Globex', 'business', 'schema'),
  fixtureTenant(3, 'initech', 'Initech', 'enterprise', 'database'),
];

/** Creates the demo tenants that do not exist yet; running it twice changes nothing. */
export async function seedDemoTenants(tenantry: Tenantry, fixtures: readonly FixtureTenant[] = demoTenants): Promise<void> {
  for (const f of fixtures) {
    // A tenant still `provisioning` was cut off by a crash (an interrupted `npm start`): creating
    // it again resumes it, and every insert below is `on conflict do nothing` for that.
    const existing = await tenantry.catalog.findById(f.id);
    if (existing && existing.status !== 'provisioning') continue;
    const hashes = await Promise.all(f.users.map((u) => hashPassword(u.password)));
    await withPlatformScope({ actor: 'seed', reason: `seed demo tenant ${f.slug}` }, () =>
      tenantry.createTenant({ id: f.id, slug: f.slug, name: f.name, plan: f.plan, isolation: f.isolation }, async () => {
        await tenantry.db.transaction(async (tx) => {
          for (const [i, u] of f.users.entries()) {
            await tx.query('insert into users (id, email, name, role, password_hash) values ($1, $2, $3, $4, $5) on conflict do nothing',
              [u.id, u.email, u.name, u.role, hashes[i]]);
          }
          for (const t of f.tickets) {
            await tx.query(
              `insert into tickets (id, title, description, status, priority, requester_id, assignee_id)
               values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing`,
              [t.id, t.title, t.description, t.status, t.priority, f.users[t.requester]!.id,
                t.assignee === null ? null : f.users[t.assignee]!.id]);
          }
          await tx.query('insert into comments (id, ticket_id, author_id, body) values ($1, $2, $3, $4) on conflict do nothing',
            [fixtureId(Number.parseInt(f.id.slice(4, 8), 16), 3, 1), f.tickets[0]!.id, f.users[2]!.id, 'Looking into it.']);
        });
      }));
  }
}
