import { AsyncLocalStorage } from 'node:async_hooks';
import { TenantContextMissingError } from '../errors.js';
import type { Tenant } from '../catalog/types.js';
import type { Role } from '../auth/roles.js';
import type { ApiKeyScope } from '../auth/api-keys.js';

/** Who is acting inside a tenant: a user (from a JWT) or an API key. */
export interface Principal {
  readonly kind: 'user' | 'api_key';
  readonly id: string;
  /** One of the application's roles (registerRoles). */
  readonly role: Role;
  readonly tenantId: string;
  /** An API key's scopes (what it may do); absent for a user, who may do what the role allows. */
  readonly scopes?: readonly ApiKeyScope[];
  /** A user's token's credential clock reading (claim `cv`; see CredentialRevocations). */
  readonly credentialVersion?: number;
}

export interface TenantScope extends TenantScopeExtras {
  readonly kind: 'tenant';
  readonly tenant: Tenant;
}

/** What a tenant scope carries besides its tenant. */
export interface TenantScopeExtras {
  readonly principal?: Principal;
  readonly requestId?: string;
  /** The client's address (the audit log records it). */
  readonly clientAddress?: string;
  /** Aborts when the client that asked has gone away: running statements are then cancelled. */
  readonly signal?: CancelSignal;
  /**
   * The platform's own work in the tenant's scope (the storage sampler's measurements): its
   * transactions are not the tenant's usage (db_time_ms).
   */
  readonly unmetered?: boolean;
}

/**
 * What the data plane needs of an AbortSignal: an AbortSignal fits, and so does a lighter object
 * (the HTTP plugin's, which costs no AbortController per request).
 */
export type CancelSignal = Pick<AbortSignal, 'aborted' | 'addEventListener' | 'removeEventListener'>;

export interface PlatformScope {
  readonly kind: 'platform';
  readonly actor: string;
  readonly reason: string;
  /** The request that entered the scope, when one did (the admin API): its id and client, for the audit log. */
  readonly requestId?: string;
  readonly clientAddress?: string;
}

/** Who enters the platform scope and why (and, from a request, which one). */
export interface PlatformScopeEntry {
  readonly actor: string;
  readonly reason: string;
  readonly requestId?: string;
  readonly clientAddress?: string;
}

type Scope = TenantScope | PlatformScope;

/**
 * The tenant travels with the async call chain, never in a process global: Node serves many
 * tenants at once, and a module-level "current tenant" would be overwritten between awaits.
 */
const storage = new AsyncLocalStorage<Scope>();

export interface PlatformScopeListener {
  /** May return a promise: the scope's work starts once every listener's promise has resolved. */
  (event: PlatformScopeEntry & { at: Date }): void | Promise<void>;
}
const platformListeners = new Set<PlatformScopeListener>();

/** Runs `fn` with `tenant` as the current tenant; everything it awaits sees the same tenant. */
export function runWithTenant<T>(
  tenant: Tenant,
  fn: () => T,
  extra: TenantScopeExtras = {},
): T {
  return storage.run({ kind: 'tenant', tenant, ...extra }, fn);
}

/** Enters a tenant scope for the rest of the current async execution (used by HTTP hooks). */
export function enterTenant(tenant: Tenant, extra: TenantScopeExtras = {}): void {
  storage.enterWith({ kind: 'tenant', tenant, ...extra });
}

/** The current tenant scope; throws TenantContextMissingError outside one. */
export function requireTenantScope(what?: string): TenantScope {
  const scope = storage.getStore();
  if (scope?.kind !== 'tenant') throw new TenantContextMissingError(what);
  return scope;
}

/** The current tenant; throws TenantContextMissingError outside a tenant scope. */
export function currentTenant(): Tenant {
  return requireTenantScope('currentTenant()').tenant;
}

/** The current tenant or undefined: for logging and metrics only, never to decide data access. */
export function peekTenant(): Tenant | undefined {
  const scope = storage.getStore();
  return scope?.kind === 'tenant' ? scope.tenant : undefined;
}

/**
 * Inside a tenant scope entered with `unmetered: true`. A flag of the one scope rather than an
 * AsyncLocalStorage of its own: on Node 20 an AsyncLocalStorage, once run, adds its propagation
 * to every promise and tick of the process for good.
 */
export function isUnmetered(): boolean {
  const scope = storage.getStore();
  return scope?.kind === 'tenant' && scope.unmetered === true;
}

export function currentPrincipal(): Principal | undefined {
  return requireTenantScope('currentPrincipal()').principal;
}

/**
 * Crossing tenants on purpose (platform admin, reports) is explicit and audited: every entry is
 * reported to the listeners (logger, audit log) with who and why, and `fn` runs only once they
 * have recorded it — when the audit log cannot take the entry, the work is refused (the listener's
 * error), never done unrecorded.
 */
export async function withPlatformScope<T>(opts: PlatformScopeEntry, fn: () => T | Promise<T>): Promise<T> {
  if (!opts.actor || !opts.reason) throw new TypeError('withPlatformScope needs an actor and a reason');
  const entry: PlatformScopeEntry = {
    actor: opts.actor, reason: opts.reason,
    ...(opts.requestId !== undefined ? { requestId: opts.requestId } : {}),
    ...(opts.clientAddress !== undefined ? { clientAddress: opts.clientAddress } : {}),
  };
  await Promise.all([...platformListeners].map((listener) => listener({ ...entry, at: new Date() })));
  return storage.run({ kind: 'platform', ...entry }, fn);
}

export function requirePlatformScope(what = 'platform access'): PlatformScope {
  const scope = storage.getStore();
  if (scope?.kind !== 'platform') {
    throw new TypeError(`${what} requires withPlatformScope(); none is active`);
  }
  return scope;
}

export function onPlatformScope(listener: PlatformScopeListener): () => void {
  platformListeners.add(listener);
  return () => platformListeners.delete(listener);
}
