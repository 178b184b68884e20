/**
 * Sign-in throttling of `POST /api/v1/auth/token` (src/auth/login-throttle.ts): per account and
 * per client address, 429 `too_many_attempts` with a growing `Retry-After`, the password not
 * checked while blocked; X-Forwarded-For believed only from the proxies TENANTRY_TRUST_PROXY
 * names; counts shared by two instances through Redis, and kept in-process while Redis is down.
 *
 * Red without the fix (app/routes/auth.ts as it was): 200 wrong passwords in a row were all
 * answered 401, so every test below fails on its first 429.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { buildServer } from '../app/server.js';
import { LoginThrottle } from '../src/auth/login-throttle.js';
import type { Tenantry, TenantryOptions } from '../src/index.js';
import { ADMIN_TOKEN, startTestStack, startTestTenantry, type TestStack } from './helpers.js';
import { startTestRedis, type TestRedis } from './redis-server.js';

const ACME = 'acme';
const OWNER = 'owner@acme.test';
const PASSWORD = 'acme-owner-password';

function login(app: FastifyInstance, address: string, email: string, password: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST', url: '/api/v1/auth/token', remoteAddress: address,
    headers: { 'x-tenant': ACME, ...headers }, payload: { email, password },
  });
}

function assertThrottled(r: LightMyRequestResponse): number {
  assert.equal(r.statusCode, 429, r.body);
  assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
  assert.equal(r.json().code, 'too_many_attempts');
  const retryAfter = Number(r.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${r.headers['retry-after']}`);
  assert.equal(r.json().retry_after, retryAfter);
  return retryAfter;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sign-in throttling, in-process', { timeout: 60_000 }, () => {
  let stack: TestStack;
  const limits = { accountFailures: 5, addressFailures: 10, windowSeconds: 60, maxBlockSeconds: 2 };

  before(async () => {
    // 10.9.0.1 is the one trusted proxy.
    stack = await startTestStack({ login: limits, trustProxy: '10.9.0.1' });
  });
  after(async () => { await stack?.close(); });

  it('200 wrong passwords in a row: 401 five times, then 429 with Retry-After growing; the password works after the wait', async () => {
    const statuses: number[] = [];
    let first429: LightMyRequestResponse | undefined;
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      const r = await login(stack.app, '10.0.0.1', OWNER, `wrong-${i}`);
      statuses.push(r.statusCode);
      if (r.statusCode === 429) first429 ??= r;
    }
    assert.deepEqual(statuses.slice(0, 6), [401, 401, 401, 401, 401, 429]);
    // While blocked the password is not checked (no scrypt): the 195 refusals are quick.
    assert.ok(statuses.slice(5).every((s) => s === 429) || Date.now() - started > 1_000, statuses.join(','));
    let wait = assertThrottled(first429!);
    assert.equal(wait, 1);
    // Each failure after a block doubles the next one: 1 s, 2 s, then 2 s (the maximum here).
    const waits = [wait];
    for (const expected of [2, 2]) {
      await sleep(wait * 1000 + 50);
      assert.equal((await login(stack.app, '10.0.0.1', OWNER, 'still-wrong')).statusCode, 401);
      wait = assertThrottled(await login(stack.app, '10.0.0.1', OWNER, PASSWORD));
      assert.equal(wait, expected, `waits ${[...waits, wait].join(', ')}`);
      waits.push(wait);
    }
    // After Retry-After, the right password works from the same address, and clears the count.
    await sleep(wait * 1000 + 50);
    const ok = await login(stack.app, '10.0.0.1', OWNER, PASSWORD);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal((await login(stack.app, '10.0.0.1', OWNER, 'wrong-again')).statusCode, 401);
    assert.equal((await login(stack.app, '10.0.0.1', OWNER, PASSWORD)).statusCode, 200);
  });

  it('per client address across accounts: after 10 failures the address is refused, another address is not', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await login(stack.app, '10.0.0.2', `nobody-${i}@acme.test`, 'wrong');
      assert.equal(r.statusCode, 401, `failure ${i + 1}: ${r.body}`);
    }
    assertThrottled(await login(stack.app, '10.0.0.2', 'someone-else@acme.test', 'wrong'));
    // Even the right password of a real account: the address is blocked, not the account.
    assertThrottled(await login(stack.app, '10.0.0.2', 'admin@acme.test', 'acme-admin-password'));
    assert.equal((await login(stack.app, '10.0.0.3', 'admin@acme.test', 'acme-admin-password')).statusCode, 200);
  });

  it('X-Forwarded-For is believed only from a trusted proxy: spoofing it does not escape the address limit', async () => {
    // From 10.0.0.4 (not a trusted proxy) a new X-Forwarded-For each time changes nothing.
    for (let i = 0; i < 10; i++) {
      const r = await login(stack.app, '10.0.0.4', `spoof-${i}@acme.test`, 'wrong', { 'x-forwarded-for': `198.51.100.${i}` });
      assert.equal(r.statusCode, 401, r.body);
    }
    assertThrottled(await login(stack.app, '10.0.0.4', 'spoof-x@acme.test', 'wrong', { 'x-forwarded-for': '198.51.100.200' }));
    // Through the trusted proxy, the forwarded address is the client: one is blocked, the next is not.
    for (let i = 0; i < 10; i++) {
      const r = await login(stack.app, '10.9.0.1', `fwd-${i}@acme.test`, 'wrong', { 'x-forwarded-for': '203.0.113.7' });
      assert.equal(r.statusCode, 401, r.body);
    }
    assertThrottled(await login(stack.app, '10.9.0.1', 'fwd-x@acme.test', 'wrong', { 'x-forwarded-for': '203.0.113.7' }));
    assert.equal((await login(stack.app, '10.9.0.1', 'fwd-x@acme.test', 'wrong', { 'x-forwarded-for': '203.0.113.8' })).statusCode, 401);
    assert.equal((await login(stack.app, '10.9.0.1', 'agent@acme.test', 'acme-agent-password', { 'x-forwarded-for': '203.0.113.9' })).statusCode, 200);
  });
});

describe('sign-in throttling, two instances sharing one Redis', { timeout: 60_000 }, () => {
  let redis: TestRedis;
  let stack: TestStack;
  let second: Tenantry;
  let secondApp: FastifyInstance;
  let probe: Redis;

  before(async () => {
    redis = await startTestRedis();
    const options = {
      redisUrl: redis.url, redisPrefix: 'lt:',
      login: { accountFailures: 4, addressFailures: 1_000, windowSeconds: 60, maxBlockSeconds: 30 },
    } as Partial<TenantryOptions>;
    stack = await startTestStack(options);
    // A second instance on the same database and the same Redis.
    second = await startTestTenantry(stack.databaseUrl, options);
    secondApp = await buildServer({ tenantry: second, adminToken: ADMIN_TOKEN });
    probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 200 });
    probe.on('error', () => {});
    await probe.connect();
  });
  after(async () => {
    probe?.disconnect();
    await secondApp?.close();
    await second?.close();
    await stack?.close();
    await redis?.stop();
  });

  it('failures on both instances add up: the fifth attempt is refused on either', async () => {
    const tenantId = stack.tenants.find((t) => t.slug === ACME)!.id;
    assert.equal((await login(stack.app, '10.1.0.1', OWNER, 'w1')).statusCode, 401);
    assert.equal((await login(secondApp, '10.1.0.2', OWNER, 'w2')).statusCode, 401);
    assert.equal((await login(stack.app, '10.1.0.3', OWNER, 'w3')).statusCode, 401);
    assert.equal((await login(secondApp, '10.1.0.4', OWNER, 'w4')).statusCode, 401);
    // Each instance saw two failures: only the shared count reaches four.
    assertThrottled(await login(stack.app, '10.1.0.5', OWNER, PASSWORD));
    assertThrottled(await login(secondApp, '10.1.0.6', OWNER, PASSWORD));
    // The counts are Redis's: the account key (email hashed) with four failures, and its block.
    const key = `lt:${LoginThrottle.accountKey(tenantId, OWNER)}`;
    assert.match(key, /^lt:\{t:[0-9a-f-]{36}\}:login:[0-9a-f]{64}$/);
    assert.equal(await probe.zcard(key), 4);
    assert.ok(await probe.pttl(`${key}:block`) > 0);
  });

  it('Redis stopped mid-way: no 5xx, each instance throttles on its own counts; back up, Redis is used again', async () => {
    const email = 'admin@acme.test';
    assert.equal((await login(stack.app, '10.2.0.1', email, 'w1')).statusCode, 401);
    assert.equal((await login(stack.app, '10.2.0.1', email, 'w2')).statusCode, 401);
    await redis.stop();
    // The link notices at once (the connection closes); whatever it thinks, nothing is a 5xx.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await login(stack.app, '10.2.0.1', email, `down-${i}`)).statusCode);
    assert.ok(statuses.every((s) => s < 500), statuses.join(','));
    // This instance counted its own four failures (two before, two while down): blocked.
    assert.deepEqual(statuses, [401, 401, 429, 429]);
    assert.equal(stack.tenantry.redisState(), 'down');
    // The other instance never saw a failure of this account while Redis was down: its own count.
    assert.equal((await login(secondApp, '10.2.0.2', email, 'acme-admin-password')).statusCode, 200);
    await redis.start();
    for (const until = Date.now() + 10_000; stack.tenantry.redisState() !== 'up' || second.redisState() !== 'up';) {
      assert.ok(Date.now() < until, 'the link came back');
      await sleep(50);
    }
    await probe.connect().catch(() => {});
    for (const until = Date.now() + 5_000; probe.status !== 'ready';) {
      assert.ok(Date.now() < until, 'probe reconnected');
      await sleep(50);
    }
    // Back up: failures go to Redis again (the restarted Redis is empty) and are shared again.
    const other = 'agent@acme.test';
    for (let i = 0; i < 2; i++) assert.equal((await login(stack.app, '10.2.0.3', other, `w${i}`)).statusCode, 401);
    for (let i = 0; i < 2; i++) assert.equal((await login(secondApp, '10.2.0.4', other, `v${i}`)).statusCode, 401);
    const tenantId = stack.tenants.find((t) => t.slug === ACME)!.id;
    assert.equal(await probe.zcard(`lt:${LoginThrottle.accountKey(tenantId, other)}`), 4);
    assertThrottled(await login(secondApp, '10.2.0.5', other, 'acme-agent-password'));
  });
});
