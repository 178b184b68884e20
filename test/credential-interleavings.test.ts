/**
 * The login/change race, step by step: each interleaving of a login (clock reading, row read,
 * signing) with a change of the user (row lock, revocation, write, commit) is forced, in every
 * placement, and no token minted from the replaced row may be accepted. The statistical version
 * (eight login loops against real changes) is test/credential-race.test.ts; the argument is in
 * src/auth/revocations.ts.
 *
 * Each interleaving goes red without the part of the design it needs:
 *   - the login reads the row while the change holds it: the helpdesk's `FOR SHARE` (app/routes/auth.ts);
 *   - the row is read before the change, the token signed after: the clock read first (Credentials.issueToken);
 *   - the change fails after revoking: nobody is locked out.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { runWithTenant, type Tenant } from '../src/index.js';
import type { Role } from '../app/roles.js';
import { callAs, startTestStack, type Method, type TestStack } from './helpers.js';

let stack: TestStack;
before(async () => { stack = await startTestStack(); });
after(async () => { await stack?.close(); });

function call(slug: string, token: string | undefined, method: Method, url: string, payload?: object) {
  return callAs(stack, slug, token, method, url, payload);
}

async function tenantOf(slug: string): Promise<Tenant> {
  return (await stack.tenantry.catalog.findBySlug(slug))!;
}

let n = 0;
async function newAdmin(slug: string): Promise<{ id: string; email: string; password: string }> {
  const email = `step-${n++}@${slug}.test`;
  const password = 'step-password-123';
  const res = await call(slug, await stack.token(slug, 'owner'), 'POST', '/api/v1/users', { email, name: 'Step', role: 'admin', password });
  assert.equal(res.statusCode, 201, res.body);
  return { id: res.json().id as string, email, password };
}

/**
 * A demotion to agent made the helpdesk's way (lock, revoke, write), held open between the
 * revocation and the write until `commit()` is called.
 */
function heldDemotion(tenant: Tenant, id: string) {
  let commit!: () => void;
  const gate = new Promise<void>((r) => { commit = r; });
  let revoked!: () => void;
  const revokedP = new Promise<void>((r) => { revoked = r; });
  const done = runWithTenant(tenant, () => stack.tenantry.db.transaction(async (tx) => {
    await tx.query('select id from users where id = $1 for update', [id]);
    await stack.tenantry.revokeTokens(id);
    revoked();
    await gate;
    await tx.query("update users set role = 'agent' where id = $1", [id]);
  }));
  return { revoked: revokedP, commit, done };
}

/** The token may be refused; if it is accepted, it must carry the new role. */
async function assertNotStale(slug: string, token: string, label: string): Promise<'refused' | 'fresh'> {
  const role = decodeJwt(token).role;
  const res = await call(slug, token, 'GET', '/api/v1/tickets?limit=1');
  if (res.statusCode === 401) return 'refused';
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(role, 'agent', `${label}: a token with the old role (${String(role)}) is accepted after the demotion`);
  return 'fresh';
}

describe('login and change, interleaved step by step', () => {
  for (const slug of ['acme', 'globex', 'initech']) {
    it(`${slug}: a login that reads the row while the change holds it waits, and gets the new role`, async () => {
      const tenant = await tenantOf(slug);
      const u = await newAdmin(slug);
      const change = heldDemotion(tenant, u.id);
      await change.revoked;
      // The change has revoked (the clock moved on) but not written: the login reads the clock
      // after the revocation, so only the row lock stands between it and the old row.
      const login = call(slug, undefined, 'POST', '/api/v1/auth/token', { email: u.email, password: u.password });
      await sleep(300);
      change.commit();
      await change.done;
      const res = await login;
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(await assertNotStale(slug, res.json().access_token, 'row read under the lock'), 'fresh');
    });

    it(`${slug}: a login that read the row before the change and signs after it gets a token that is refused`, async () => {
      const tenant = await tenantOf(slug);
      const u = await newAdmin(slug);
      let rowRead!: () => void;
      const rowReadP = new Promise<void>((r) => { rowRead = r; });
      let proceed!: () => void;
      const proceedP = new Promise<void>((r) => { proceed = r; });
      const login = runWithTenant(tenant, () => stack.tenantry.credentials.issueToken(async () => {
        const [row] = await stack.tenantry.db.query<{ id: string; role: Role }>('select id, role from users where id = $1 for share', [u.id]);
        rowRead();
        await proceedP; // as if scrypt took long
        return { sub: row!.id, role: row!.role };
      }));
      await rowReadP;
      const change = heldDemotion(tenant, u.id);
      change.commit();
      await change.done;
      proceed();
      const issued = await login;
      assert.equal(decodeJwt(issued!.accessToken).role, 'admin', 'the token was minted from the old row');
      assert.equal(await assertNotStale(slug, issued!.accessToken, 'row read before the change'), 'refused');
    });

    it(`${slug}: a change that fails after revoking locks nobody out`, async () => {
      const tenant = await tenantOf(slug);
      const u = await newAdmin(slug);
      const before = (await call(slug, undefined, 'POST', '/api/v1/auth/token', { email: u.email, password: u.password })).json().access_token as string;
      await assert.rejects(runWithTenant(tenant, () => stack.tenantry.db.transaction(async (tx) => {
        await tx.query('select id from users where id = $1 for update', [u.id]);
        await stack.tenantry.revokeTokens(u.id);
        throw new Error('the change fails after the revocation');
      })), /fails after the revocation/);
      // The sessions of that moment are gone (fail closed) ...
      assert.equal((await call(slug, before, 'GET', '/api/v1/tickets?limit=1')).statusCode, 401);
      // ... but the user, unchanged, logs in again at once, with the role they still have.
      const again = await call(slug, undefined, 'POST', '/api/v1/auth/token', { email: u.email, password: u.password });
      assert.equal(again.statusCode, 200, again.body);
      const me = await call(slug, again.json().access_token, 'GET', '/api/v1/me');
      assert.equal(me.statusCode, 200, me.body);
      assert.equal(me.json().user.role, 'admin');
    });
  }
});
