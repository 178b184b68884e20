-- Ticket search (`GET /tickets?q=`) by index: trigram GIN indexes that lead with tenant_id, read
-- by a search function owned by the toolkit's search role.
--
-- Why a function: under RLS the planner uses a condition as an index condition only if its
-- operator is leakproof, and ILIKE (texticlike) is not. Searched as the runtime role, the
-- indexes below narrow nothing: ILIKE is a filter over every row of the tenant. The function runs
-- as tenantry_search (NOLOGIN, BYPASSRLS, SELECT on the searched columns only), restricts itself
-- to tenantry_rls.current_tenant_id(), and returns ticket ids only; the route reads the tickets
-- by those ids as the runtime role, under RLS again, so even a wrong function could not hand out
-- another tenant's rows.
--
-- Without a usable tenantry_search (the admin user could not create it: a BYPASSRLS role takes a
-- superuser on PostgreSQL 15) the function stays SECURITY INVOKER, owned by the owner role: the
-- same results under RLS, unindexed.

-- pg_trgm and btree_gin (a uuid column in a GIN index) are trusted extensions: the owner role,
-- which has CREATE on every database tenantry prepares, installs them, once per database, in
-- schema public. Many targets of one database (the pooled schema, every tenant schema) migrate at
-- once and would race on CREATE EXTENSION: the first takes a lock and the others wait, then find
-- the extensions there.
do $$
begin
  if (select count(*) from pg_catalog.pg_extension where extname in ('pg_trgm', 'btree_gin')) < 2 then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('tenantry.app.extensions'));
    create extension if not exists pg_trgm with schema public;
    create extension if not exists btree_gin with schema public;
  end if;
end $$;

-- fastupdate off: no pending list, which every search would otherwise read through until the
-- next vacuum (up to gin_pending_list_limit, 4 MB); a write pays for its entries at once.
create index tickets_tenant_title_trgm_idx on tickets
  using gin (tenant_id, title public.gin_trgm_ops) with (fastupdate = off);
create index tickets_tenant_description_trgm_idx on tickets
  using gin (tenant_id, description public.gin_trgm_ops) with (fastupdate = off);

-- Ids of this tenant's tickets whose title or description matches `pattern` (an ILIKE pattern,
-- escaped by the caller), newest first, below `before` (keyset pagination), of `status` when
-- given, at most `max_rows`. PL/pgSQL with EXECUTE so that every call is planned with its own
-- pattern (a generic plan cannot tell a rare term, for the index, from a common one, for the
-- newest rows in id order).
create function search_tickets(pattern text, status text, before uuid, max_rows integer)
  returns setof uuid
  language plpgsql stable
as $fn$
begin
  return query execute
    'select t.id from tickets t
      where t.tenant_id = tenantry_rls.current_tenant_id()
        and (t.title ilike $1 or t.description ilike $1)
        and ($2::text is null or t.status = $2)
        and ($3::uuid is null or t.id < $3)
      order by t.id desc
      limit $4'
    using pattern, status, before, max_rows;
end
$fn$;
-- Only the target's runtime role calls it (tenantry grants EXECUTE on the schema's functions to it).
revoke all on function search_tickets(text, text, uuid, integer) from public;

do $$
declare
  target text := pg_catalog.current_schema();
begin
  -- Its names resolve in this target's schema only (pg_temp last: never a temporary table first).
  execute pg_catalog.format('alter function search_tickets(text, text, uuid, integer) set search_path = %I, pg_temp', target);
  if exists (select from pg_catalog.pg_roles where rolname = 'tenantry_search' and rolbypassrls and not rolcanlogin)
     and pg_catalog.pg_has_role(current_user, 'tenantry_search', 'MEMBER') then
    execute pg_catalog.format('grant usage on schema %I to tenantry_search', target);
    grant select (tenant_id, id, title, description, status) on tickets to tenantry_search;
    alter function search_tickets(text, text, uuid, integer) security definer;
    -- A new owner needs CREATE on the function's schema: for this statement only.
    execute pg_catalog.format('grant create on schema %I to tenantry_search', target);
    alter function search_tickets(text, text, uuid, integer) owner to tenantry_search;
    execute pg_catalog.format('revoke create on schema %I from tenantry_search', target);
  end if;
end $$;
