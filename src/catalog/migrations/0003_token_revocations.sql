-- Revoking a user's tokens (the user was deleted, their role or password changed): every token of
-- that subject in that tenant issued at or before revoked_at is refused. Each process keeps the
-- recent rows in memory (at most one token lifetime old) and reloads them when channel
-- `tenantry_catalog` says `revocations`, so no request pays a lookup.
create table token_revocations (
  tenant_id uuid not null references tenants (id) on delete cascade,
  subject text not null check (length(subject) between 1 and 200),
  revoked_at timestamptz not null,
  primary key (tenant_id, subject)
);
create index token_revocations_at_idx on token_revocations (revoked_at);

create function notify_token_revocation() returns trigger
language plpgsql
set search_path = pg_catalog
as $$
begin
  perform pg_notify('tenantry_catalog', 'revocations');
  return null;
end
$$;

create trigger token_revocations_notify after insert or update on token_revocations
  for each statement execute function notify_token_revocation();
