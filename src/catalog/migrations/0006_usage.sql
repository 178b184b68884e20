-- Usage metering (src/usage/, docs/usage.md): per tenant and hour, added to by every instance's
-- flushes. No foreign key to tenants: usage outlives a tenant for billing, and a flush must never
-- fail because one tenant of its batch is gone.
create table usage (
  tenant_id uuid not null,
  -- The start of an hour (UTC epoch seconds divisible by 3600).
  period_start timestamptz not null check (extract(epoch from period_start)::bigint % 3600 = 0),
  api_calls bigint not null default 0 check (api_calls >= 0),
  db_time_ms bigint not null default 0 check (db_time_ms >= 0),
  egress_bytes bigint not null default 0 check (egress_bytes >= 0),
  -- The largest storage sample of the hour; null: none taken.
  storage_bytes bigint check (storage_bytes >= 0),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, period_start)
);
-- Every tenant's usage of a range (billing exports).
create index usage_period_idx on usage (period_start, tenant_id);

-- The ids of the batches applied (`<instance id>:<sequence>`): a batch written again adds nothing.
-- Ids older than a day are pruned (a flush is retried every interval, never a day later).
create table usage_flushes (
  id text primary key check (length(id) between 1 and 200),
  at timestamptz not null default now()
);
create index usage_flushes_at_idx on usage_flushes (at);
