import { Type, type Static, type TInteger, type TNumber } from '@sinclair/typebox';
import { SLUG_PATTERN } from '../src/index.js';

const strict = { additionalProperties: false } as const;

export const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) }, strict);
export type IdParams = Static<typeof IdParams>;

export const PageQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 25 }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
}, strict);
export type PageQuery = Static<typeof PageQuery>;

export const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254 });
export const Password = Type.String({ minLength: 8, maxLength: 200 });
export const PersonName = Type.String({ minLength: 1, maxLength: 200 });
export const Role = Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('agent')]);

export const TokenBody = Type.Object({ email: Email, password: Type.String({ minLength: 1, maxLength: 200 }) }, strict);
export type TokenBody = Static<typeof TokenBody>;

export const CreateUserBody = Type.Object({ email: Email, name: PersonName, password: Password, role: Role }, strict);
export type CreateUserBody = Static<typeof CreateUserBody>;

export const UpdateUserBody = Type.Object({
  name: Type.Optional(PersonName),
  role: Type.Optional(Role),
  password: Type.Optional(Password),
}, { ...strict, minProperties: 1 });
export type UpdateUserBody = Static<typeof UpdateUserBody>;

export const TicketStatus = Type.Union(['open', 'pending', 'resolved', 'closed'].map((s) => Type.Literal(s)));
export const TicketPriority = Type.Union(['low', 'normal', 'high', 'urgent'].map((s) => Type.Literal(s)));

export const TicketListQuery = Type.Object({
  status: Type.Optional(TicketStatus),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 25 }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
}, strict);
export type TicketListQuery = Static<typeof TicketListQuery>;

export const CreateTicketBody = Type.Object({
  title: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Type.String({ maxLength: 20_000 })),
  priority: Type.Optional(TicketPriority),
  assignee_id: Type.Optional(Type.Union([Type.String({ format: 'uuid' }), Type.Null()])),
}, strict);
export type CreateTicketBody = Static<typeof CreateTicketBody>;

export const UpdateTicketBody = Type.Object({
  title: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  description: Type.Optional(Type.String({ maxLength: 20_000 })),
  status: Type.Optional(TicketStatus),
  priority: Type.Optional(TicketPriority),
  assignee_id: Type.Optional(Type.Union([Type.String({ format: 'uuid' }), Type.Null()])),
}, { ...strict, minProperties: 1 });
export type UpdateTicketBody = Static<typeof UpdateTicketBody>;

export const CreateCommentBody = Type.Object({ body: Type.String({ minLength: 1, maxLength: 20_000 }) }, strict);
export type CreateCommentBody = Static<typeof CreateCommentBody>;

export const ApiKeyScope = Type.Union([Type.Literal('read'), Type.Literal('write')]);

export const CreateApiKeyBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100 }),
  role: Type.Optional(Type.Union([Type.Literal('admin'), Type.Literal('agent')])),
  /** What the key may do; default both (what every key could do before scopes existed). */
  scopes: Type.Optional(Type.Array(ApiKeyScope, { minItems: 1, maxItems: 2, uniqueItems: true })),
}, strict);
export type CreateApiKeyBody = Static<typeof CreateApiKeyBody>;

export const Isolation = Type.Union([Type.Literal('pooled'), Type.Literal('schema'), Type.Literal('database')]);

export const CreateTenantBody = Type.Object({
  slug: Type.String({ pattern: SLUG_PATTERN, minLength: 3, maxLength: 63 }),
  name: Type.String({ minLength: 1, maxLength: 200 }),
  plan: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_-]{0,49}$' })),
  isolation: Type.Optional(Isolation),
  owner: Type.Object({ email: Email, password: Password, name: PersonName }, strict),
}, strict);
export type CreateTenantBody = Static<typeof CreateTenantBody>;

export const TenantListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
}, strict);
export type TenantListQuery = Static<typeof TenantListQuery>;

const nullable = <T extends TNumber | TInteger>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

/** PATCH /admin/api/tenants/:id/limits: any limit or quota; `null` resets it to the plan. */
export const LimitsPatchBody = Type.Object({
  requests_per_second: nullable(Type.Number({ minimum: 0.01, maximum: 1_000_000 })),
  burst: nullable(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
  concurrent_requests: nullable(Type.Integer({ minimum: 1, maximum: 100_000 })),
  db_connections: nullable(Type.Integer({ minimum: 1, maximum: 1_000 })),
  statement_timeout_ms: nullable(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  quotas: Type.Optional(Type.Object({
    users: nullable(Type.Integer({ minimum: 0 })),
    tickets: nullable(Type.Integer({ minimum: 0 })),
    storage_bytes: nullable(Type.Integer({ minimum: 0 })),
  }, strict)),
}, { ...strict, minProperties: 1 });
export type LimitsPatchBody = Static<typeof LimitsPatchBody>;

/** Usage reads: ISO 8601 `from`/`to` and `granularity`, checked by parseUsageRange (400 validation_failed). */
export const UsageQuery = Type.Object({
  from: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  to: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  granularity: Type.Optional(Type.String({ minLength: 1, maxLength: 16 })),
}, strict);
export type UsageQuery = Static<typeof UsageQuery>;

export const AuditLogQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
}, strict);
export type AuditLogQuery = Static<typeof AuditLogQuery>;

export const AdminAuditLogQuery = Type.Object({
  /** A tenant's id or slug: its merged trail; absent: the whole platform log. */
  tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
}, strict);
export type AdminAuditLogQuery = Static<typeof AdminAuditLogQuery>;

export const AnalyticsQuery = Type.Object({
  days: Type.Integer({ minimum: 1, maximum: 90, default: 30 }),
}, strict);
export type AnalyticsQuery = Static<typeof AnalyticsQuery>;
