/**
 * A counted budget of server connections, shared by all tenant pools of one shard. `take` waits
 * (up to a deadline) for enough to be free; `give` returns it and wakes waiters in FIFO order.
 */
export class ConnectionBudget {
  #used = 0;
  readonly #waiters: { need: number; resolve: () => void }[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  }

  get used(): number {
    return this.#used;
  }

  /** Takes `n` now if free; never waits. */
  tryTake(n: number): boolean {
    if (this.#used + n > this.capacity) return false;
    this.#used += n;
    return true;
  }

  give(n: number): void {
    this.#used -= n;
    if (this.#used < 0) throw new Error('connection budget went negative');
    this.#wake();
  }

  /** Resolves when something was given back (or after `ms`); the caller then tries again. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const waiter = { need: 0, resolve: () => { clearTimeout(timer); resolve(); } };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve();
      }, ms);
      timer.unref?.();
      this.#waiters.push(waiter);
    });
  }

  #wake(): void {
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w.resolve();
  }
}
