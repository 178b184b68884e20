-- The platform audit log becomes a hash chain per tenant (and one for the platform's own entries,
-- tenant_id null), like the tenant logs in the placements (src/audit-log/chain.ts): who (type and
-- id), what, on what, the request and the client of each entry. Entries written before this
-- migration have no seq: they stay, outside the chain. The runtime role loses UPDATE and DELETE on
-- the table (see migrateCatalog).
alter table audit_log
  add column actor_type text not null default 'platform',
  add column target_type text,
  add column target_id text,
  add column request_id text,
  add column client_address text,
  add column seq bigint,
  add column hash text;

create unique index audit_log_chain_idx on audit_log
  (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), seq) where seq is not null;
