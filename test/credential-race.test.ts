/**
 * Credentials that cannot be raced. Eight login loops run while an owner deletes, demotes or
 * re-passwords the user they log in as; afterwards, no token minted from the user row the change
 * replaced may be accepted — however late it was signed. The race runs many times, in every
 * placement (RACE_ITERATIONS per kind, default 40). Also: a token whose `iat` lies in the future
 * is refused.
 *
 * Which tokens come from the replaced row: after a deletion, every token of the user; after a
 * demotion, every token whose role claim is still the old role; after a password change, every
 * token obtained with the old password (the new row does not accept it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, SignJWT } from 'jose';
import { JWT_SECRET, callAs, startTestStack, type Method, type TestStack } from './helpers.js';

const ITERATIONS = Number(process.env.RACE_ITERATIONS ?? 40);
const LOOPS = 8;
const SLUGS = ['acme', 'globex', 'initech'] as const;

let stack: TestStack;
// The login loops fail on purpose (the user was deleted, or their password changed) hundreds of
// times a round: sign-in throttling, which would answer them 429, is raised out of the way.
before(async () => { stack = await startTestStack({ login: { accountFailures: 1_000_000, addressFailures: 1_000_000, windowSeconds: 60, maxBlockSeconds: 1 } }); });
after(async () => { await stack?.close(); });

function call(slug: string, token: string | undefined, method: Method, url: string, payload?: object) {
  return callAs(stack, slug, token, method, url, payload);
}

type Change = 'delete' | 'demote' | 'password';

interface Outcome { minted: number; mintedAfterChange: number; stale: { role: unknown; lateMs: number; status: number }[] }

/**
 * One round: a fresh admin, eight login loops on it, and the change made by the owner while the
 * loops run. Returns the tokens from the replaced row that are still accepted (must be none).
 */
async function round(slug: string, change: Change, n: number): Promise<Outcome> {
  const owner = await stack.token(slug, 'owner');
  const email = `race-${change}-${n}@${slug}.test`;
  const password = `race-password-${n}-old`;
  const created = await call(slug, owner, 'POST', '/api/v1/users', { email, name: 'Racer', role: 'admin', password });
  assert.equal(created.statusCode, 201, created.body);
  const id = created.json().id as string;

  let stop = false;
  let changedAt = Infinity;
  const tokens: { token: string; at: number }[] = [];
  const loop = async () => {
    while (!stop) {
      const res = await call(slug, undefined, 'POST', '/api/v1/auth/token', { email, password });
      if (res.statusCode === 200) tokens.push({ token: res.json().access_token as string, at: Date.now() });
      else assert.equal(res.json().code, 'invalid_credentials', res.body);
    }
  };
  const loops = Array.from({ length: LOOPS }, loop);
  // Let logins get under way (several are between reading the row and signing at any moment).
  await sleep(40 + Math.random() * 60);
  const res = change === 'delete' ? await call(slug, owner, 'DELETE', `/api/v1/users/${id}`)
    : change === 'demote' ? await call(slug, owner, 'PATCH', `/api/v1/users/${id}`, { role: 'agent' })
    : await call(slug, owner, 'PATCH', `/api/v1/users/${id}`, { password: `race-password-${n}-new` });
  assert.equal(res.statusCode, change === 'delete' ? 204 : 200, res.body);
  changedAt = Date.now();
  // The logins in flight at the change finish (scrypt takes tens of ms, more under this load).
  await sleep(150);
  stop = true;
  await Promise.all(loops);

  const stale: Outcome['stale'] = [];
  for (const { token, at } of tokens) {
    const role = decodeJwt(token).role;
    const fromOldRow = change !== 'demote' || role === 'admin';
    if (!fromOldRow) continue;
    // Any route that needs no more than a valid credential (GET /me would also look the user up).
    const res = await call(slug, token, 'GET', '/api/v1/tickets?limit=1');
    if (res.statusCode !== 401) stale.push({ role, lateMs: at - changedAt, status: res.statusCode });
  }
  if (change === 'delete') {
    // A deleted user's fresh login fails.
    const again = await call(slug, undefined, 'POST', '/api/v1/auth/token', { email, password });
    assert.equal(again.statusCode, 401, again.body);
  }
  return { minted: tokens.length, mintedAfterChange: tokens.filter((t) => t.at > changedAt).length, stale };
}

describe('login racing a change of the user', () => {
  for (const change of ['delete', 'demote', 'password'] as const) {
    it(`${change}: no token minted from the replaced user row is accepted (${ITERATIONS} rounds × ${LOOPS} login loops)`, { timeout: 600_000 }, async (t) => {
      let minted = 0;
      let late = 0;
      const failures: string[] = [];
      for (let i = 0; i < ITERATIONS; i++) {
        const slug = SLUGS[i % SLUGS.length]!;
        const o = await round(slug, change, i);
        minted += o.minted;
        late += o.mintedAfterChange;
        for (const s of o.stale) failures.push(`round ${i} (${slug}): a token with role ${String(s.role)} signed ${s.lateMs} ms after the change answers ${s.status}`);
      }
      t.diagnostic(`${minted} tokens minted, ${late} of them signed after the change was answered`);
      assert.ok(late > 0, 'the race never happened: no token was signed after the change');
      assert.deepEqual(failures, [], `${failures.length} stale tokens accepted:\n${failures.slice(0, 20).join('\n')}`);
    });
  }

  it('after the change, a fresh login works with the new role or password', async () => {
    const owner = await stack.token('acme', 'owner');
    const created = await call('acme', owner, 'POST', '/api/v1/users', { email: 'fresh@acme.test', name: 'Fresh', role: 'admin', password: 'fresh-password-1' });
    assert.equal(created.statusCode, 201, created.body);
    const id = created.json().id as string;
    assert.equal((await call('acme', owner, 'PATCH', `/api/v1/users/${id}`, { role: 'agent', password: 'fresh-password-2' })).statusCode, 200);
    const login = await call('acme', undefined, 'POST', '/api/v1/auth/token', { email: 'fresh@acme.test', password: 'fresh-password-2' });
    assert.equal(login.statusCode, 200, login.body);
    const me = await call('acme', login.json().access_token as string, 'GET', '/api/v1/me');
    assert.equal(me.statusCode, 200, me.body);
    assert.equal(me.json().user.role, 'agent');
  });
});

describe('iat in the future', () => {
  const key = new TextEncoder().encode(JWT_SECRET);
  const sign = async (iatOffsetSeconds: number) => {
    const acme = stack.tenants.find((f) => f.slug === 'acme')!;
    const owner = acme.users.find((u) => u.role === 'owner')!;
    const iat = Date.now() / 1000 + iatOffsetSeconds;
    return new SignJWT({ tid: acme.id, role: 'owner' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(owner.id).setIssuer('tenantry').setAudience('tenantry-api').setIssuedAt(iat).setExpirationTime(iat + 600).sign(key);
  };

  it('a token issued more than the allowed clock skew (5 s) in the future is refused; within it, accepted', async () => {
    for (const ahead of [60, 3600, 6]) {
      const res = await call('acme', await sign(ahead), 'GET', '/api/v1/me');
      assert.equal(res.statusCode, 401, `iat ${ahead} s ahead: ${res.body}`);
      assert.equal(res.json().code, 'invalid_token');
    }
    for (const ahead of [0, 3]) assert.equal((await call('acme', await sign(ahead), 'GET', '/api/v1/me')).statusCode, 200, `iat ${ahead} s ahead`);
  });
});
