-- The helpdesk's tables. No schema names: search_path puts them in the target placement
-- (schema `app` for pooled tenants, `t_<hex>` for schema tenants, `app` in a tenant database).
--
-- Every table: tenant_id first in the primary key, in every foreign key and in every index, so
-- a tenant's rows are found by index range and no key can point into another tenant; RLS
-- enabled AND forced (FORCE makes the owner subject to it as well), with a policy whose USING
-- hides other tenants' rows and whose WITH CHECK refuses writing them.

create table users (
  tenant_id uuid not null default tenantry_rls.current_tenant_id(),
  id uuid not null,
  email text not null check (email = lower(email) and length(email) between 3 and 254),
  name text not null check (length(name) between 1 and 200),
  role text not null check (role in ('owner', 'admin', 'agent')),
  password_hash text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, email)
);

create table tickets (
  tenant_id uuid not null default tenantry_rls.current_tenant_id(),
  id uuid not null,
  title text not null check (length(title) between 1 and 200),
  description text not null default '' check (length(description) <= 20000),
  status text not null default 'open' check (status in ('open', 'pending', 'resolved', 'closed')),
  priority text not null default 'normal' check (priority in ('low', 'normal', 'high', 'urgent')),
  requester_id uuid,
  assignee_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, requester_id) references users (tenant_id, id) on delete set null (requester_id),
  foreign key (tenant_id, assignee_id) references users (tenant_id, id) on delete set null (assignee_id)
);
create index tickets_tenant_status_idx on tickets (tenant_id, status, id desc);
create index tickets_tenant_assignee_idx on tickets (tenant_id, assignee_id);
create index tickets_tenant_requester_idx on tickets (tenant_id, requester_id);

create table comments (
  tenant_id uuid not null default tenantry_rls.current_tenant_id(),
  id uuid not null,
  ticket_id uuid not null,
  author_id uuid,
  body text not null check (length(body) between 1 and 20000),
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, ticket_id) references tickets (tenant_id, id) on delete cascade,
  foreign key (tenant_id, author_id) references users (tenant_id, id) on delete set null (author_id)
);
create index comments_tenant_ticket_idx on comments (tenant_id, ticket_id, id);
create index comments_tenant_author_idx on comments (tenant_id, author_id);

alter table users enable row level security;
alter table users force row level security;
create policy tenant_isolation on users
  using (tenant_id = tenantry_rls.current_tenant_id())
  with check (tenant_id = tenantry_rls.current_tenant_id());

alter table tickets enable row level security;
alter table tickets force row level security;
create policy tenant_isolation on tickets
  using (tenant_id = tenantry_rls.current_tenant_id())
  with check (tenant_id = tenantry_rls.current_tenant_id());

alter table comments enable row level security;
alter table comments force row level security;
create policy tenant_isolation on comments
  using (tenant_id = tenantry_rls.current_tenant_id())
  with check (tenant_id = tenantry_rls.current_tenant_id());
