import { randomBytes } from 'node:crypto';
import type { Sql } from './driver/index.js';
import { ident, quoteIdent } from './driver/index.js';
import { tenantIdSql } from '../core/tenant-ids.js';

/**
 * Role names. The runtime roles are never owners, superusers or BYPASSRLS; the one BYPASSRLS role,
 * `search`, cannot log in and is reached only through the functions it owns.
 */
export const roles = {
  /** Owns every table; migrations run as this role. NOLOGIN. */
  owner: 'tenantry_owner',
  /** Runtime role for tenant data: subject to RLS, cannot create anything. */
  app: 'tenantry_app',
  /** Runtime role for the control-plane catalog only; has no access to tenant data. */
  platform: 'tenantry_platform',
  /**
   * Owns search functions (SECURITY DEFINER) so that their LIKE/ILIKE conditions can use an index:
   * under RLS the planner refuses to use an operator that is not leakproof (texticlike is not) as
   * an index condition, so such a search reads every row of the tenant. NOLOGIN and BYPASSRLS; it
   * gets SELECT on the columns a search reads and nothing else, and each function it owns must
   * restrict itself to `tenantry_rls.current_tenant_id()` (the audit checks all of this). The owner
   * role is a member, to hand functions to it in migrations. May be missing (see ensureSearchRole).
   */
  search: 'tenantry_search',
} as const;

export const schemas = { catalog: 'tenantry', rls: 'tenantry_rls', pooled: 'app' } as const;

function literal(value: string): string {
  if (!/^[A-Za-z0-9_\-.~]{12,200}$/.test(value)) throw new TypeError('role passwords must be 12+ URL-safe characters');
  return `'${value}'`;
}

/**
 * Creates roles, schemas and privileges; safe to run on every start. Runs as the admin
 * connection (DATABASE_URL). The ALTER ROLE lines re-assert the attributes each time, so a role
 * someone loosened by hand (BYPASSRLS, say) is put back.
 */
export async function bootstrapDatabase(admin: Sql, passwords?: RolePasswords, log?: BootstrapLog): Promise<RolePasswords> {
  const used = await ensureRoles(admin, passwords);
  const search = await ensureSearchRole(admin);
  if (!search.ok) {
    log?.warn({ role: roles.search, err: search.reason },
      `${roles.search} could not be created or re-asserted by this admin user: search functions migrated from now on run as the caller (correct, but not indexed under RLS)`);
  }
  await prepareDatabase(admin, { catalog: true });
  return used;
}

/** Where bootstrap reports what it could not do and went on without. */
export interface BootstrapLog { warn(obj: object, msg: string): void }

export interface RolePasswords { readonly app: string; readonly platform: string }

/** A start without bootstrap on a database tenantry has not prepared (see preparedDatabase). */
export class DatabaseNotPreparedError extends Error {
  constructor(detail: string) {
    super(`this database has not been prepared by tenantry (${detail}): run \`tenantry migrate\` or start the server once`);
    this.name = 'DatabaseNotPreparedError';
  }
}

/**
 * What a start without bootstrap needs, read and never written (no DDL): the runtime roles'
 * passwords — the given ones, or those the first bootstrap kept (which needs the admin user that
 * ran it, or one allowed to read tenantry_admin) — and, with `catalog`, a catalog to read.
 */
export async function preparedDatabase(admin: Sql, passwords: RolePasswords | undefined, opts: { catalog: boolean }): Promise<RolePasswords> {
  const [state] = await admin.query<{ catalog: boolean; kept: boolean }>(`select
      exists (select 1 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
              where n.nspname = $1 and c.relname = 'tenants') as catalog,
      exists (select 1 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
              where n.nspname = 'tenantry_admin' and c.relname = 'role_passwords') as kept`, [schemas.catalog]);
  if (opts.catalog && !state?.catalog) throw new DatabaseNotPreparedError('no catalog');
  if (passwords) return passwords;
  if (!state?.kept) throw new DatabaseNotPreparedError('no role passwords kept');
  const rows = await admin.query<{ role: string; password: string }>('select role, password from tenantry_admin.role_passwords');
  const of = (role: string) => rows.find((r) => r.role === role)?.password;
  const app = of(roles.app);
  const platform = of(roles.platform);
  if (!app || !platform) throw new DatabaseNotPreparedError('no role passwords kept');
  return { app, platform };
}

/**
 * Creates the roles and sets their passwords. Without explicit passwords, the ones generated the
 * first time are kept in `tenantry_admin.role_passwords` — a schema only the admin user can read —
 * so every process started with the same admin URL (server, CLI, a second instance) agrees on
 * them and none locks the others out.
 */
export async function ensureRoles(admin: Sql, passwords?: RolePasswords): Promise<RolePasswords> {
  return retryRoleRace(() => ensureRolesOnce(admin, passwords));
}

/**
 * Roles are cluster-wide but advisory locks are per database: bootstraps of two databases of one
 * server can still ALTER the same role at the same moment, and PostgreSQL refuses the second with
 * "tuple concurrently updated" (XX000). The transaction changed nothing then, so it is run again
 * after a short random pause.
 */
async function retryRoleRace<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 8 || !isRoleRace(err)) throw err;
      await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 50 * attempt));
    }
  }
}

/**
 * Creates the search role (see roles.search) or re-asserts it: NOLOGIN, BYPASSRLS, nothing else,
 * a member of no role, and the owner role a member of it (so that migrations, running as the
 * owner, can hand it their search functions). Creating or altering a BYPASSRLS role takes a
 * superuser on PostgreSQL 15 (CREATEROLE and BYPASSRLS from 16): an admin user that cannot is not
 * an error. The role is then left as it is (or missing), `{ ok: false }` says why, and the app's
 * migrations, which hand functions to the role only when it is there, BYPASSRLS and reachable by
 * the owner, create them as SECURITY INVOKER instead: same results, without the index.
 */
export async function ensureSearchRole(admin: Sql): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await retryRoleRace(() => admin.transaction(async (tx) => {
      await tx.query(`select pg_advisory_xact_lock(hashtext('tenantry.bootstrap'))`);
      const role = ident(roles.search);
      const exists = await tx.query('select 1 from pg_roles where rolname = $1', [roles.search]);
      if (!exists.length) await tx.query(`create role ${role} nologin bypassrls`);
      await tx.query(`alter role ${role} nologin bypassrls nosuperuser nocreatedb nocreaterole noreplication noinherit`);
      // It is a member of nothing: its rights are the column grants the migrations give it.
      const memberOf = await tx.query<{ role: string }>(`select r.rolname as role from pg_auth_members m
        join pg_roles r on r.oid = m.roleid join pg_roles s on s.oid = m.member where s.rolname = $1`, [roles.search]);
      for (const m of memberOf) await tx.query(`revoke ${ident(m.role)} from ${role}`);
      await tx.query(`grant ${role} to ${ident(roles.owner)}`);
    }));
    return { ok: true };
  } catch (err) {
    // 42501: not allowed (a BYPASSRLS role needs a superuser on PostgreSQL 15).
    if ((err as { code?: string }).code !== '42501') throw err;
    return { ok: false, reason: (err as Error).message };
  }
}

function isRoleRace(err: unknown): boolean {
  const e = err as { code?: string; message?: string; constraint_name?: string };
  return (e?.code === 'XX000' && /tuple concurrently (updated|deleted)/.test(e.message ?? ''))
    // Two first bootstraps both found the role missing and both created it.
    || (e?.code === '23505' && /pg_authid/.test(`${e.constraint_name ?? ''} ${e.message ?? ''}`));
}

async function ensureRolesOnce(admin: Sql, passwords?: RolePasswords): Promise<RolePasswords> {
  // CREATE ROLE races between concurrent bootstraps of one database: serialize them.
  return admin.transaction(async (tx) => {
    await tx.query(`select pg_advisory_xact_lock(hashtext('tenantry.bootstrap'))`);
    for (const [role, login] of [[roles.owner, false], [roles.app, true], [roles.platform, true]] as const) {
      const exists = await tx.query('select 1 from pg_roles where rolname = $1', [role]);
      if (!exists.length) await tx.query(`create role ${ident(role)} ${login ? 'login' : 'nologin'}`);
      await tx.query(`alter role ${ident(role)} nosuperuser nobypassrls nocreatedb nocreaterole noreplication`);
    }
    // NOINHERIT: the runtime role is a member of every schema tenant's role so that it can
    // SET ROLE to one, but it must not hold their privileges itself.
    await tx.query(`alter role ${ident(roles.app)} noinherit`);
    // No parallel query for tenant work: a tenant's share of connections (its plan's
    // db_connections) must bound the cores its statements take — a parallel scan would add
    // workers beyond it, out of everyone else's CPU. Set on the role, so it costs no statement;
    // the runtime pools (and PgBouncer's server connections) log in as this role.
    await tx.query(`alter role ${ident(roles.app)} set max_parallel_workers_per_gather = 0`);
    await tx.query('create schema if not exists tenantry_admin');
    await tx.query('revoke all on schema tenantry_admin from public');
    await tx.query('create table if not exists tenantry_admin.role_passwords (role text primary key, password text not null)');
    const used: Record<string, string> = {};
    for (const role of [roles.app, roles.platform]) {
      const given = passwords?.[role === roles.app ? 'app' : 'platform'];
      const [stored] = await tx.query<{ password: string }>('select password from tenantry_admin.role_passwords where role = $1', [role]);
      const password = given ?? stored?.password ?? randomBytes(18).toString('base64url');
      if (password !== stored?.password) {
        await tx.query(`insert into tenantry_admin.role_passwords (role, password) values ($1, $2)
          on conflict (role) do update set password = excluded.password`, [role, password]);
      }
      await tx.query(`alter role ${ident(role)} password ${literal(password)}`);
      used[role] = password;
    }
    const [me] = await tx.query<{ rolsuper: boolean }>('select rolsuper from pg_roles where rolname = current_user');
    if (!me?.rolsuper) await tx.query(`grant ${ident(roles.owner)} to current_user`);
    return { app: used[roles.app]!, platform: used[roles.platform]! };
  });
}

/**
 * Schemas, the RLS helper and privileges of one database: the control database (with the
 * catalog) or a shard or tenant database (without).
 */
export async function prepareDatabase(admin: Sql, opts: { catalog: boolean }): Promise<void> {
  const [{ db: dbName } = { db: '' }] = await admin.query<{ db: string }>('select current_database() as db');
  const db = quoteIdent(dbName);
  await admin.transaction(async (tx) => {
    await tx.query(`select pg_advisory_xact_lock(hashtext('tenantry.bootstrap'))`);
    const wanted = opts.catalog ? Object.values(schemas) : [schemas.rls, schemas.pooled];
    for (const schema of wanted) {
      await tx.query(`create schema if not exists ${ident(schema)} authorization ${ident(roles.owner)}`);
    }
    // Nobody but the owner creates objects: not in public, not new schemas, not temp tables.
    await tx.query('revoke create on schema public from public');
    await tx.query(`revoke create, temporary on database ${db} from public`);
    await tx.query(`grant connect on database ${db} to ${ident(roles.app)}${opts.catalog ? `, ${ident(roles.platform)}` : ''}`);
    await tx.query(`grant create, temporary on database ${db} to ${ident(roles.owner)}`);

    // The RLS helper. It returns NULL (so every policy is false and no row matches) when no
    // tenant is set or the setting is not a well-formed UUID: fail closed, and never a failed
    // cast that turns a missing context into a 500. LANGUAGE sql + STABLE keeps it inlinable,
    // so `tenant_id = tenantry_rls.current_tenant_id()` still uses the tenant_id index (no SET
    // clause for that reason: it would block inlining; the body names only pg_catalog objects,
    // which are always searched first).
    await tx.query(`create or replace function ${schemas.rls}.current_tenant_id() returns uuid
      language sql stable parallel safe
      as $fn$
        select case
          when ${tenantIdSql.isTenantId("current_setting('app.tenant_id', true)")}
          then current_setting('app.tenant_id', true)::uuid
        end
      $fn$`);
    await tx.query(`alter function ${schemas.rls}.current_tenant_id() owner to ${ident(roles.owner)}`);
    await tx.query(`grant usage on schema ${schemas.rls} to public`);
    await tx.query(`grant execute on function ${schemas.rls}.current_tenant_id() to public`);

    await tx.query(`grant usage on schema ${schemas.pooled} to ${ident(roles.app)}`);
    if (opts.catalog) await tx.query(`grant usage on schema ${schemas.catalog} to ${ident(roles.platform)}`);
  });
}
