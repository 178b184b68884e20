/**
 * A tenant never loses its last owner: deleting or demoting its only owner is 409 last_owner, and
 * two owners demoting or deleting each other (or themselves) at the same moment cannot both win.
 * The races run RACE_ITERATIONS rounds per kind (default 40), in a fresh tenant of each placement.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, callAs, startTestStack, type Method, type TestStack } from './helpers.js';

const ITERATIONS = Number(process.env.RACE_ITERATIONS ?? 40);

let stack: TestStack;
before(async () => { stack = await startTestStack(); });
after(async () => { await stack?.close(); });

function call(slug: string, token: string | undefined, method: Method, url: string, payload?: object) {
  return callAs(stack, slug, token, method, `/api/v1${url}`, payload);
}

async function login(slug: string, email: string, password: string): Promise<string> {
  const res = await call(slug, undefined, 'POST', '/auth/token', { email, password });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().access_token as string;
}

interface Owner { id: string; email: string; token: string }
const PASSWORD = 'owner-password-123';

/** A fresh tenant whose only owner is returned. */
async function freshTenant(slug: string, isolation: 'pooled' | 'schema' | 'database'): Promise<Owner> {
  const email = `first@${slug}.test`;
  const res = await stack.app.inject({
    method: 'POST', url: '/admin/api/tenants', headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    payload: { slug, name: slug, isolation, owner: { email, password: PASSWORD, name: 'First' } },
  });
  assert.equal(res.statusCode, 201, res.body);
  return { id: res.json().owner.id as string, email, token: await login(slug, email, PASSWORD) };
}

let n = 0;
async function addOwner(slug: string, by: Owner): Promise<Owner> {
  const email = `owner-${n++}@${slug}.test`;
  const res = await call(slug, by.token, 'POST', '/users', { email, name: 'Owner', role: 'owner', password: PASSWORD });
  assert.equal(res.statusCode, 201, res.body);
  return { id: res.json().id as string, email, token: await login(slug, email, PASSWORD) };
}

async function owners(slug: string, token: string): Promise<string[]> {
  const res = await call(slug, token, 'GET', '/users?limit=100');
  assert.equal(res.statusCode, 200, res.body);
  return (res.json().data as { id: string; role: string }[]).filter((u) => u.role === 'owner').map((u) => u.id);
}

describe('the last owner', () => {
  it('cannot be demoted (409 last_owner); once there is a second owner, it can', async () => {
    const first = await freshTenant('solo-owner', 'pooled');
    for (const role of ['admin', 'agent']) {
      const res = await call('solo-owner', first.token, 'PATCH', `/users/${first.id}`, { role });
      assert.equal(res.statusCode, 409, res.body);
      assert.equal(res.json().code, 'last_owner');
    }
    // Renaming the only owner, or changing their password, is fine.
    assert.equal((await call('solo-owner', first.token, 'PATCH', `/users/${first.id}`, { name: 'Still the owner', role: 'owner' })).statusCode, 200);
    const second = await addOwner('solo-owner', first);
    assert.equal((await call('solo-owner', second.token, 'PATCH', `/users/${first.id}`, { role: 'admin' })).statusCode, 200);
    assert.deepEqual(await owners('solo-owner', second.token), [second.id]);
    // Now the second is the last one: neither they nor anyone else can take it away.
    const self = await call('solo-owner', second.token, 'PATCH', `/users/${second.id}`, { role: 'agent' });
    assert.equal(self.json().code, 'last_owner', self.body);
    // Deleting oneself stays 409 conflict, as before.
    const del = await call('solo-owner', second.token, 'DELETE', `/users/${second.id}`);
    assert.equal(del.statusCode, 409, del.body);
    assert.equal(del.json().code, 'conflict');
  });

  for (const isolation of ['pooled', 'schema', 'database'] as const) {
    const slug = `owners-${isolation}`;
    it(`${isolation}: two owners taking each other's (or their own) ownership at once never leave zero owners (${ITERATIONS} rounds per kind)`, { timeout: 600_000 }, async (t) => {
      let survivor = await freshTenant(slug, isolation);
      const outcomes = new Map<string, number>();
      const kinds = ['demote each other', 'delete each other', 'demote themselves'] as const;
      for (let i = 0; i < ITERATIONS * kinds.length; i++) {
        const kind = kinds[i % kinds.length]!;
        const a = survivor;
        const b = await addOwner(slug, a);
        const [ra, rb] = await Promise.all(
          kind === 'demote each other' ? [call(slug, a.token, 'PATCH', `/users/${b.id}`, { role: 'admin' }), call(slug, b.token, 'PATCH', `/users/${a.id}`, { role: 'admin' })]
          : kind === 'delete each other' ? [call(slug, a.token, 'DELETE', `/users/${b.id}`), call(slug, b.token, 'DELETE', `/users/${a.id}`)]
          : [call(slug, a.token, 'PATCH', `/users/${a.id}`, { role: 'agent' }), call(slug, b.token, 'PATCH', `/users/${b.id}`, { role: 'agent' })]);
        const codes = [ra, rb].map((r) => (r.statusCode < 300 ? String(r.statusCode) : `${r.statusCode} ${r.json().code}`)).sort();
        const key = `${kind}: ${codes.join(' + ')}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        // Exactly one change went through; the other was refused as last_owner, or (its author's
        // token having just been revoked by the first) as invalid_token.
        const won = [ra, rb].filter((r) => r.statusCode < 300).length;
        assert.equal(won, 1, `round ${i}, ${key}: ${ra.body} / ${rb.body}`);
        for (const r of [ra, rb]) if (r.statusCode >= 300) assert.ok(['409 last_owner', '401 invalid_token'].includes(`${r.statusCode} ${r.json().code}`), `round ${i}: ${r.body}`);
        // Who is still owner carries on (their token is untouched).
        const left = await owners(slug, (await call(slug, a.token, 'GET', '/users?limit=1')).statusCode === 200 ? a.token : b.token);
        assert.equal(left.length, 1, `round ${i} (${kind}): owners left ${JSON.stringify(left)}`);
        survivor = left[0] === a.id ? a : b;
      }
      t.diagnostic([...outcomes].map(([k, v]) => `${k}: ${v}`).join('; '));
    });
  }
});
