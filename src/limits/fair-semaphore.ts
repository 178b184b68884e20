/** Gives back what acquire() granted; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  readonly share: number;
  readonly grant: (release: Release) => void;
  readonly fail: (err: unknown) => void;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
}

interface Holder {
  held: number;
  readonly queue: Waiter[];
}

export interface AcquireOptions {
  /** Give up after this long (0: do not wait at all); the promise rejects with `timeoutError()`. */
  readonly timeoutMs: number;
  readonly timeoutError: () => unknown;
}

/**
 * A semaphore shared by many keys (tenants), each allowed at most its own share of it:
 *
 * - a key never holds more than its share, whatever the capacity left;
 * - when permits are short, waiting keys are served in turn, round robin — one permit per key per
 *   turn, so one key's long queue does not delay another key's turn (a tenant with 500 queued
 *   requests and a tenant with one each get the next free permit alternately);
 * - within a key, first come first served.
 *
 * It guards shared pools of one process: database connections of the shared pool, password
 * hashing. `tryAcquire` is the path without a promise, for when a permit is free.
 */
export class FairSemaphore {
  readonly #capacity: number;
  #inUse = 0;
  readonly #holders = new Map<string, Holder>();
  /** Keys with waiters, in turn order. */
  readonly #ring: string[] = [];

  constructor(capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('capacity must be at least 1');
    this.#capacity = capacity;
  }

  /** Permits in use now, in all and for one key. */
  inUse(key?: string): number {
    return key === undefined ? this.#inUse : this.#holders.get(key)?.held ?? 0;
  }

  /** Requests waiting, in all and for one key. */
  waiting(key?: string): number {
    if (key !== undefined) return this.#holders.get(key)?.queue.length ?? 0;
    let n = 0;
    for (const h of this.#holders.values()) n += h.queue.length;
    return n;
  }

  /** A permit now, or undefined when the key is at its share, the capacity is used, or others wait first. */
  tryAcquire(key: string, share: number): Release | undefined {
    const holder = this.#holders.get(key);
    if (this.#inUse >= this.#capacity) return undefined;
    if (holder && (holder.held >= share || holder.queue.length > 0)) return undefined;
    // Others waiting for the capacity go first (their turn comes before a newcomer's).
    if (this.#ring.length > 0) return undefined;
    return this.#take(key, holder);
  }

  /** A permit, now or when it is this key's turn; rejects after `timeoutMs`. */
  acquire(key: string, share: number, opts: AcquireOptions): Promise<Release> {
    const now = this.tryAcquire(key, share);
    if (now) return Promise.resolve(now);
    if (opts.timeoutMs <= 0) return Promise.reject(opts.timeoutError());
    return new Promise<Release>((resolve, reject) => {
      let holder = this.#holders.get(key);
      if (!holder) {
        holder = { held: 0, queue: [] };
        this.#holders.set(key, holder);
      }
      const waiter: Waiter = { share, grant: resolve, fail: reject, timer: undefined, done: false };
      waiter.timer = setTimeout(() => {
        if (waiter.done) return;
        waiter.done = true;
        const h = this.#holders.get(key);
        if (h) {
          h.queue.splice(h.queue.indexOf(waiter), 1);
          if (h.queue.length === 0) this.#leaveRing(key);
          this.#forget(key, h);
        }
        reject(opts.timeoutError());
      }, opts.timeoutMs);
      if (holder.queue.length === 0) this.#ring.push(key);
      holder.queue.push(waiter);
      // A permit may be free for this key right now (it was only behind others at its share).
      this.#dispatch();
    });
  }

  #take(key: string, holder: Holder | undefined): Release {
    if (!holder) {
      holder = { held: 0, queue: [] };
      this.#holders.set(key, holder);
    }
    holder.held++;
    this.#inUse++;
    let released = false;
    const h = holder;
    return () => {
      if (released) return;
      released = true;
      h.held--;
      this.#inUse--;
      this.#forget(key, h);
      this.#dispatch();
    };
  }

  /** Grants permits to waiting keys in turn while capacity lasts. */
  #dispatch(): void {
    let skipped = 0;
    while (this.#inUse < this.#capacity && this.#ring.length > 0 && skipped < this.#ring.length) {
      const key = this.#ring.shift()!;
      const holder = this.#holders.get(key)!;
      const head = holder.queue[0]!;
      if (holder.held >= head.share) {
        // At its share: it waits for one of its own to finish; the next key gets the turn.
        this.#ring.push(key);
        skipped++;
        continue;
      }
      skipped = 0;
      holder.queue.shift();
      if (holder.queue.length > 0) this.#ring.push(key);
      head.done = true;
      clearTimeout(head.timer);
      head.grant(this.#take(key, holder));
    }
  }

  #leaveRing(key: string): void {
    const i = this.#ring.indexOf(key);
    if (i >= 0) this.#ring.splice(i, 1);
  }

  #forget(key: string, holder: Holder): void {
    if (holder.held === 0 && holder.queue.length === 0 && this.#holders.get(key) === holder) this.#holders.delete(key);
  }
}
