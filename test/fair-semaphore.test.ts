/**
 * The fair semaphore behind the shared pool's shares and password hashing: a key never holds more
 * than its share; when permits are short, waiting keys are served in turn (one key's long queue
 * does not delay another key's turn); within a key, first come first served; a waiter that times
 * out leaves no trace. Each property is run against many random schedules.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FairSemaphore, type Release } from '../src/limits/fair-semaphore.js';

const timeout = { timeoutMs: 60_000, timeoutError: () => new Error('timed out') };
const tick = () => new Promise((r) => setImmediate(r));

describe('FairSemaphore', () => {
  it('a key never holds more than its share, the semaphore never more than its capacity', async () => {
    for (let run = 0; run < 50; run++) {
      const capacity = 1 + (run % 5);
      const sem = new FairSemaphore(capacity);
      const held = new Map<string, number>();
      let total = 0;
      let maxTotal = 0;
      const shares: Record<string, number> = { a: 1, b: 2, c: 3 };
      await Promise.all(Array.from({ length: 60 }, async (_, i) => {
        const key = 'abc'[(i * 7 + run) % 3]!;
        const release = await sem.acquire(key, shares[key]!, timeout);
        held.set(key, (held.get(key) ?? 0) + 1);
        total++;
        maxTotal = Math.max(maxTotal, total);
        assert.ok(held.get(key)! <= shares[key]!, `${key} holds ${held.get(key)} > share ${shares[key]}`);
        assert.ok(total <= capacity);
        for (let t = 0; t < 1 + (i % 3); t++) await tick();
        held.set(key, held.get(key)! - 1);
        total--;
        release();
      }));
      assert.equal(sem.inUse(), 0);
      assert.equal(sem.waiting(), 0);
      assert.ok(maxTotal >= 1);
    }
  });

  it('waiting keys take turns: one key\'s long queue does not delay another key\'s turn', async () => {
    const sem = new FairSemaphore(2);
    const order: string[] = [];
    const first = [sem.tryAcquire('noisy', 10)!, sem.tryAcquire('noisy', 10)!];
    // 100 of the noisy tenant wait, then one of the quiet tenant.
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) waits.push(sem.acquire('noisy', 10, timeout).then((r) => { order.push('noisy'); r(); }));
    waits.push(sem.acquire('quiet', 10, timeout).then((r) => { order.push('quiet'); r(); }));
    assert.equal(sem.waiting(), 101);
    first[0]!();
    first[1]!();
    await Promise.all(waits);
    const quietAt = order.indexOf('quiet');
    assert.ok(quietAt <= 2, `the quiet tenant was served after ${quietAt} of the noisy tenant's queued requests (red without turns: 100)`);
  });

  it('within a key, first come first served; a timed-out waiter leaves no trace', async () => {
    const sem = new FairSemaphore(1);
    const hold = sem.tryAcquire('t', 1)!;
    const got: number[] = [];
    const waits = [0, 1, 2, 3].map((i) => sem.acquire('t', 1, timeout).then((r: Release) => { got.push(i); r(); }));
    const gone = sem.acquire('t', 1, { timeoutMs: 20, timeoutError: () => new Error('busy') });
    await assert.rejects(gone, /busy/);
    assert.equal(sem.waiting('t'), 4);
    hold();
    await Promise.all(waits);
    assert.deepEqual(got, [0, 1, 2, 3]);
    assert.equal(sem.inUse(), 0);
    assert.equal(sem.waiting(), 0);
    // No wait allowed, but a permit is free: granted at once.
    const free = await sem.acquire('x', 1, { timeoutMs: 0, timeoutError: () => new Error('no wait') });
    free();
    assert.equal(sem.inUse(), 0);
  });

  it('a key at its share waits while another key takes the free permits', async () => {
    const sem = new FairSemaphore(4);
    const a1 = sem.tryAcquire('a', 1)!;
    assert.equal(sem.tryAcquire('a', 1), undefined, 'a is at its share of 1');
    let aGot = false;
    const a2 = sem.acquire('a', 1, timeout).then((r) => { aGot = true; return r; });
    // b is served from the free permits although a waits (a cannot use them: it is at its share).
    const b = await Promise.all([sem.acquire('b', 3, timeout), sem.acquire('b', 3, timeout)]);
    assert.equal(sem.inUse('b'), 2);
    assert.equal(aGot, false);
    a1();
    (await a2)();
    for (const r of b) r();
    assert.equal(sem.inUse(), 0);
  });
});
