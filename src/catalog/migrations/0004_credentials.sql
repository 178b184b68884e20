-- Credentials that cannot be raced (see src/auth/revocations.ts for the argument).
--
-- credential_clock: one counter, raised by every revocation. A login reads it BEFORE it reads the
-- user row and its token carries the reading (claim `cv`); a revocation raises it AFTER the user
-- row is locked by the change, and records the new value. A token whose reading is below the
-- subject's recorded value may have been minted from the row the change replaced: refused.
create table credential_clock (
  singleton boolean primary key default true check (singleton),
  value bigint not null check (value >= 0)
);
insert into credential_clock (singleton, value) values (true, 0);

create table credential_revocations (
  tenant_id uuid not null references tenants (id) on delete cascade,
  subject text not null check (length(subject) between 1 and 200),
  -- Tokens of this subject whose clock reading (cv) is below this are refused.
  revoked_before bigint not null check (revoked_before > 0),
  revoked_at timestamptz not null default now(),
  primary key (tenant_id, subject)
);
-- Rows older than a token lifetime revoke nothing any more and are pruned.
create index credential_revocations_at_idx on credential_revocations (revoked_at);

-- What 0003 revoked by time carries over: tokens issued before this migration have no reading
-- (taken as 0), so a subject revoked then stays revoked, and new logins read 1 or more.
update credential_clock set value = 1 where exists (select 1 from token_revocations);
insert into credential_revocations (tenant_id, subject, revoked_before, revoked_at)
  select tenant_id, subject, 1, revoked_at from token_revocations;
drop table token_revocations;

-- Every process keeps the recent revocations in memory and reloads them on this notification
-- (the function of 0003 sends `revocations` on channel tenantry_catalog).
create trigger credential_revocations_notify after insert or update on credential_revocations
  for each statement execute function notify_token_revocation();

-- API keys record who created them (a user of the tenant: the key dies with that user, or when
-- they lose the right to create keys) and what they may do (scopes). Roles are the application's
-- (registered at run time): the column no longer lists particular ones.
alter table api_keys
  add column created_by text check (length(created_by) between 1 and 200),
  add column scopes text[] not null default '{read,write}'
    check (cardinality(scopes) between 1 and 16 and array_position(scopes, null) is null);
alter table api_keys drop constraint api_keys_role_check;
alter table api_keys add constraint api_keys_role_check check (role ~ '^[a-z][a-z0-9_-]{0,63}$');
create index api_keys_created_by_idx on api_keys (tenant_id, created_by) where revoked_at is null;
