import { Redis } from 'ioredis';

/** `up`: commands reach Redis. `down`: they do not (now): callers fall back. */
export type RedisState = 'up' | 'down';

export interface RedisLinkOptions {
  readonly url: string;
  /** Prefix of every key and channel (TENANTRY_REDIS_PREFIX). */
  readonly prefix: string;
  /** A command unanswered after this long fails (and the caller falls back), milliseconds. */
  readonly commandTimeoutMs?: number;
  /** Told once per change of state (the log line "Redis unavailable: …"). */
  readonly onStateChange?: (state: RedisState, error?: Error) => void;
}

/** A Lua script bound to the link: keys (without the prefix) and arguments → its reply. */
export type RedisScript = (keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

/**
 * The one connection of a process to the Redis that instances share (REDIS_URL), and a second one
 * for pub/sub, opened on the first subscription. Commands never wait for Redis: while it is down
 * they fail at once (no offline queue, no retries), so each caller decides what to do without it
 * (rate limits enforce in-process, the cache reads the database). The connection keeps trying to
 * come back; `state` says where it stands.
 *
 * Keys are hash-tagged per tenant (`tenantKey`): every key of one tenant hashes to one slot, so
 * multi-key scripts of a tenant work on Redis Cluster.
 */
export class RedisLink {
  readonly #client: Redis;
  readonly #opts: RedisLinkOptions;
  #subscriber: Redis | undefined;
  readonly #handlers = new Map<string, Set<(message: string) => void>>();
  readonly #stateListeners = new Set<(state: RedisState) => void>();
  readonly #subscriptionListeners = new Set<(subscribed: boolean) => void>();
  #subscribed = false;
  #state: RedisState = 'down';
  #lastError: Error | undefined;
  #closed = false;

  constructor(opts: RedisLinkOptions) {
    this.#opts = opts;
    this.#client = new Redis(opts.url, {
      keyPrefix: opts.prefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeoutMs ?? 500,
      connectTimeout: 2_000,
      // Commands of one tick go out as one write (many requests admit at once).
      enableAutoPipelining: true,
      retryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
      connectionName: 'tenantry',
    });
    this.#client.on('ready', () => this.#setState('up'));
    this.#client.on('close', () => this.#setState('down'));
    this.#client.on('error', (err: Error) => { this.#lastError = err; });
  }

  /** Where the connection stands now. */
  get state(): RedisState {
    return this.#state;
  }

  /** The last connection error seen (for readiness and logs). */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** The command connection (keys are prefixed by it). */
  get client(): Redis {
    return this.#client;
  }

  /** A key of one tenant, hash-tagged: `{t:<tenant id>}:<parts…>` (the prefix is added by the client). */
  static tenantKey(tenantId: string, ...parts: readonly (string | number)[]): string {
    return `{t:${tenantId}}:${parts.join(':')}`;
  }

  /** Waits for the first connection, up to `timeoutMs`; false if Redis is not up by then (start-up goes on). */
  waitUntilUp(timeoutMs: number): Promise<boolean> {
    if (this.#state === 'up') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => { clearTimeout(timer); this.#stateListeners.delete(listener); resolve(ok); };
      const listener = (s: RedisState) => { if (s === 'up') done(true); };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#stateListeners.add(listener);
    });
  }

  /** Calls `fn` on every change of state (e.g. the cache drops what it holds when Redis comes back). */
  onStateChange(fn: (state: RedisState) => void): () => void {
    this.#stateListeners.add(fn);
    return () => this.#stateListeners.delete(fn);
  }

  /**
   * Whether the pub/sub connection is subscribed to every followed channel now. It is a connection
   * of its own: it can be lost and come back while commands still work.
   */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /**
   * Calls `fn(false)` when the pub/sub connection is lost and `fn(true)` once it is subscribed to
   * every followed channel again: messages published in between were lost (e.g. the cache drops
   * what it holds, since invalidations may have been missed).
   */
  onSubscriptionChange(fn: (subscribed: boolean) => void): () => void {
    this.#subscriptionListeners.add(fn);
    return () => this.#subscriptionListeners.delete(fn);
  }

  /**
   * Defines a Lua script (sent once, then called by its SHA; reloaded when Redis lost it). Scripts
   * are atomic: what they read and write no other client sees half-done.
   */
  script(name: string, numberOfKeys: number, lua: string): RedisScript {
    const command = `tenantry_${name}`;
    this.#client.defineCommand(command, { numberOfKeys, lua });
    const call = (this.#client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[command]!.bind(this.#client);
    return (keys, args) => call(...keys, ...args);
  }

  /** Publishes on a channel of this platform (prefixed); false when Redis is down. */
  async publish(channel: string, message: string): Promise<boolean> {
    try {
      await this.#client.publish(this.#opts.prefix + channel, message);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Follows a channel of this platform. Messages published while this process was disconnected are
   * lost (pub/sub keeps nothing): followers must treat a return to `up` as "I may have missed some".
   */
  async subscribe(channel: string, fn: (message: string) => void): Promise<() => void> {
    const full = this.#opts.prefix + channel;
    let handlers = this.#handlers.get(full);
    if (!handlers) {
      handlers = new Set();
      this.#handlers.set(full, handlers);
      const sub = this.#subscriberConnection();
      // The subscriber re-subscribes by itself after reconnecting; a failure now is retried then.
      const ok = await sub.subscribe(full).then(() => true, () => false);
      if (ok && sub.status === 'ready') this.#setSubscribed(true);
    }
    handlers.add(fn);
    return () => { handlers.delete(fn); };
  }

  #subscriberConnection(): Redis {
    if (this.#subscriber) return this.#subscriber;
    const sub = new Redis(this.#opts.url, {
      // Channels are prefixed by hand: keyPrefix does not apply to them.
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResubscribe: true,
      connectTimeout: 2_000,
      retryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
      connectionName: 'tenantry-sub',
    });
    sub.on('error', () => {});
    sub.on('close', () => this.#setSubscribed(false));
    // Subscribed again only once every channel is (ioredis re-subscribes on 'ready'; asking again
    // is harmless and tells when it is done).
    sub.on('ready', () => {
      const channels = [...this.#handlers.keys()];
      if (!channels.length) return;
      sub.subscribe(...channels).then(() => { if (sub.status === 'ready') this.#setSubscribed(true); }, () => {});
    });
    sub.on('message', (channel: string, message: string) => {
      for (const fn of this.#handlers.get(channel) ?? []) {
        try {
          fn(message);
        } catch {
          // A follower's failure must not stop the others.
        }
      }
    });
    this.#subscriber = sub;
    return sub;
  }

  #setState(state: RedisState): void {
    if (this.#closed || state === this.#state) return;
    this.#state = state;
    this.#opts.onStateChange?.(state, state === 'down' ? this.#lastError : undefined);
    for (const fn of [...this.#stateListeners]) fn(state);
  }

  #setSubscribed(subscribed: boolean): void {
    if (this.#closed || subscribed === this.#subscribed) return;
    this.#subscribed = subscribed;
    for (const fn of [...this.#subscriptionListeners]) fn(subscribed);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stateListeners.clear();
    this.#subscriptionListeners.clear();
    await Promise.all([
      this.#client.quit().catch(() => this.#client.disconnect()),
      this.#subscriber?.quit().catch(() => this.#subscriber?.disconnect()),
    ]);
  }
}
