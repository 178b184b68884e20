-- Every change to a tenant or its domains is announced on channel `tenantry_catalog` with the
-- tenant id as payload, at commit. Each process LISTENs and drops that tenant from its cache, so a
-- suspension made by one process (or by hand in psql) takes effect in all of them at once; the
-- cache TTL is only the safety net.
create function notify_tenant_change() returns trigger
language plpgsql
set search_path = pg_catalog
as $$
begin
  perform pg_notify('tenantry_catalog',
    coalesce(to_jsonb(new), to_jsonb(old)) ->> (case when tg_table_name = 'tenants' then 'id' else 'tenant_id' end));
  return null;
end
$$;

create trigger tenants_notify after insert or update or delete on tenants
  for each row execute function notify_tenant_change();
create trigger domains_notify after insert or update or delete on domains
  for each row execute function notify_tenant_change();
