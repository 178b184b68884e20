-- Control plane catalog. Applied with search_path = tenantry, as the owner role.

create table tenants (
  id uuid primary key,
  slug text not null unique
    check (slug ~ '^[a-z0-9]([a-z0-9-]{1,61})[a-z0-9]$'),
  name text not null check (length(name) between 1 and 200),
  status text not null default 'active'
    check (status in ('provisioning', 'active', 'suspended', 'offboarded')),
  plan text not null default 'free' check (length(plan) between 1 and 50),
  isolation text not null default 'pooled' check (isolation in ('pooled', 'schema', 'database')),
  shard text not null default 'default',
  settings jsonb not null default '{}'::jsonb check (jsonb_typeof(settings) = 'object'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table domains (
  domain text primary key check (domain = lower(domain) and length(domain) between 3 and 253),
  tenant_id uuid not null references tenants (id) on delete cascade,
  created_at timestamptz not null default now()
);
create index domains_tenant_idx on domains (tenant_id);

-- API keys: only a SHA-256 of the secret is kept (the secret is high-entropy, so a slow hash
-- buys nothing); the prefix finds the row without scanning, the hash is compared in constant time.
create table api_keys (
  id uuid primary key,
  tenant_id uuid not null references tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 100),
  prefix text not null unique,
  secret_hash bytea not null,
  role text not null default 'agent' check (role in ('admin', 'agent')),
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index api_keys_tenant_idx on api_keys (tenant_id);

create table audit_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor text not null,
  action text not null,
  tenant_id uuid,
  detail jsonb not null default '{}'::jsonb
);
create index audit_log_tenant_idx on audit_log (tenant_id, at);
