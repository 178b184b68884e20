-- A tenant's own limits, over its plan's (src/limits/plans.ts): any of requests_per_second, burst,
-- concurrent_requests, db_connections, statement_timeout_ms, and quotas one by one. Empty: the
-- plan's. A change is announced like any change of the tenant (tenants_notify), so every process
-- applies it at once.
alter table tenants add column limits jsonb not null default '{}'::jsonb
  check (jsonb_typeof(limits) = 'object');
