-- The newest (seq, hash) of each tenant's audit chain, as its appends returned them: written by
-- the instances every few seconds (src/audit-log/anchors.ts). `tenantry audit verify` checks the
-- chain still holds this entry: removing the newest entries, or re-hashing the chain after an
-- edit, is then detected too — from another database than the log's for a database tenant.
create table audit_anchors (
  tenant_id uuid primary key,
  seq bigint not null,
  hash text not null,
  anchored_at timestamptz not null default now()
);
