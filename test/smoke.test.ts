import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestStack, type TestStack } from './helpers.js';

describe('helpdesk smoke', () => {
  let stack: TestStack;
  before(async () => { stack = await startTestStack(); });
  after(async () => { await stack.close(); });

  it('logs in and lists its own tickets', async () => {
    const token = await stack.token('acme');
    const res = await stack.app.inject({ url: '/api/v1/tickets', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.data.length, 6);
    assert.ok(body.data.every((t: { title: string }) => t.title.startsWith('[Acme]')));
  });

  it('answers /healthz and /readyz', async () => {
    assert.equal((await stack.app.inject({ url: '/healthz' })).statusCode, 200);
    assert.equal((await stack.app.inject({ url: '/readyz' })).statusCode, 200);
  });
});
