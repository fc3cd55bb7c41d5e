/**
 * The per-caller rate limit on generation starts, shared by GraphQL (HTTP, SSE, graphql-ws) and
 * REST: one budget per caller whatever the transport. A sliding window over the timestamps of the
 * caller's recent starts, kept in a `Store` of `@envelop/rate-limiter` — this module's bounded
 * in-memory store by default, or `RedisRateLimitStore` (`scale-out/redis-rate-limit-store.ts`) so instances share the budget.
 *
 * Why not the library's `useRateLimiter` plugin itself: it hooks `onExecute` only, so the
 * `chatCompletion` and `imageGeneration` subscriptions (which start generations) would escape it;
 * it answers without an `extensions.code`; and it sends the window text (`"1m"`) as `Retry-After`,
 * which is not a number of seconds. The window rule and the store contract here are the library's.
 */
import { Store, type Identity } from '@envelop/rate-limiter';
import type { Logger } from '../operations/logger.js';

/** What a caller's starts are stored under in the store (`fieldIdentity`). */
export const RATE_LIMIT_BUCKET = 'generation-starts';

/**
 * A `Store` in memory whose entries expire with their window, so callers that went away do not
 * stay in memory (the library's `InMemoryStore` keeps every identity forever and copies its whole
 * state on every write). Expired entries are swept at most once per window.
 */
export class MemoryRateLimitStore extends Store {
  private readonly entries = new Map<string, { timestamps: readonly number[]; expiresAt: number }>();
  private lastSweep: number;

  /** @param now the clock, ms since the epoch (injectable for tests). */
  constructor(private readonly now: () => number = Date.now) {
    super();
    this.lastSweep = now();
  }

  /** Stores the timestamps (ms since the epoch); the entry lives until the newest is `windowMs` old. */
  setForIdentity(identity: Identity, timestamps: readonly number[], windowMs = 60_000): void {
    const key = storeKey(identity);
    const now = this.now();
    if (now - this.lastSweep >= windowMs) {
      this.lastSweep = now;
      for (const [entryKey, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(entryKey);
    }
    if (timestamps.length === 0) this.entries.delete(key);
    else this.entries.set(key, { timestamps: [...timestamps], expiresAt: Math.max(...timestamps) + windowMs });
  }

  /** The stored timestamps, or none once the entry expired. */
  getForIdentity(identity: Identity): readonly number[] {
    const entry = this.entries.get(storeKey(identity));
    if (!entry) return [];
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(storeKey(identity));
      return [];
    }
    return entry.timestamps;
  }

  /** Identities held now (expired ones included until the next sweep). */
  get size(): number {
    return this.entries.size;
  }
}

function storeKey(identity: Identity): string {
  return `${identity.contextIdentity}\u0000${identity.fieldIdentity}`;
}

/** The answer of {@link RateLimiter.consume}. */
export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

/**
 * A store that checks and counts a start in one step, so concurrent starts (on several instances)
 * cannot both take the last slot, nor overwrite each other's timestamps. {@link RateLimiter} uses
 * it instead of the `Store` read-then-write when a store has it.
 */
export interface AtomicRateLimitStore {
  /**
   * Counts a start at `now` (ms since the epoch) when fewer than `maxPerWindow` timestamps of the
   * identity are within `windowMs` of it; otherwise answers how long until the oldest of those that
   * fill the window leaves it (ms, not rounded; may be 0).
   */
  consumeForIdentity(identity: Identity, maxPerWindow: number, windowMs: number, now: number): Promise<RateLimitDecision>;
}

function isAtomic(store: Store): store is Store & AtomicRateLimitStore {
  return typeof (store as Partial<AtomicRateLimitStore>).consumeForIdentity === 'function';
}

/** Settings of a {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** Starts allowed per caller within one window; 0 = no limit. */
  maxPerWindow: number;
  /** Length of the sliding window, ms (the gateway uses 60 000: "per minute"). */
  windowMs: number;
  /** Where timestamps live; default a {@link MemoryRateLimitStore}. A {@link RedisRateLimitStore} shares them between instances. */
  store?: Store;
  /** The clock, ms since the epoch (injectable for tests). */
  now?: () => number;
  /** Receives one `warn` when a shared store stops answering and one `info` when it answers again. */
  logger?: Pick<Logger, 'warn' | 'info'>;
}

/**
 * A sliding-window limiter: a caller may start at most `maxPerWindow` generations in any
 * `windowMs`. Refused attempts are not counted, so `Retry-After` is exact: after it, one start is
 * allowed again. A store with {@link AtomicRateLimitStore.consumeForIdentity} (Redis) checks and counts in
 * one step; with a plain `Store` (read, then write, as in the library) concurrent starts of one caller
 * may overwrite each other's timestamp.
 */
export class RateLimiter {
  private readonly store: Store;
  private readonly now: () => number;
  /** Counts starts while a shared (atomic) store does not answer, so a Redis outage neither blocks nor unlimits starts. */
  private readonly localStore: MemoryRateLimitStore;
  private sharedStoreFailing = false;

  constructor(private readonly options: RateLimiterOptions) {
    this.now = options.now ?? Date.now;
    this.localStore = new MemoryRateLimitStore(this.now);
    this.store = options.store ?? this.localStore;
  }

  /** Whether a limit applies (`maxPerWindow` > 0). */
  get enabled(): boolean {
    return this.options.maxPerWindow > 0;
  }

  /** The limit, starts per window. */
  get maxPerWindow(): number {
    return this.options.maxPerWindow;
  }

  /**
   * Counts one start for the caller when the window has room.
   * @param callerId who is starting (`key:<digest prefix>`, `key:<virtual key id>` or `ip:<address>`).
   * @param maxPerWindow this caller's own limit instead of the limiter's (a virtual key's; 0 = none).
   * @returns `{ allowed: true }` (counted), or `{ allowed: false, retryAfterMs }` (not counted):
   *   the time until the oldest start in the window leaves it, ms (at least 1).
   *   While a shared store (Redis) fails, the caller's starts are counted in this instance's memory
   *   instead (each instance then allows the full budget), and counted in the shared store again once it answers.
   */
  async consume(callerId: string, maxPerWindow = this.options.maxPerWindow): Promise<RateLimitDecision> {
    const { windowMs } = this.options;
    if (maxPerWindow <= 0) return { allowed: true };
    const identity: Identity = { contextIdentity: callerId, fieldIdentity: RATE_LIMIT_BUCKET };
    const now = this.now();
    let store = this.store;
    if (isAtomic(store)) {
      try {
        const decision = await store.consumeForIdentity(identity, maxPerWindow, windowMs, now);
        if (this.sharedStoreFailing) {
          this.sharedStoreFailing = false;
          this.options.logger?.info('the shared rate-limit store answers again: starts are counted across instances again');
        }
        return decision.allowed ? decision : { allowed: false, retryAfterMs: Math.max(1, decision.retryAfterMs) };
      } catch (error) {
        if (!this.sharedStoreFailing) {
          this.sharedStoreFailing = true;
          this.options.logger?.warn({ err: error }, 'the shared rate-limit store (Redis) does not answer: counting starts on this instance until it does');
        }
        store = this.localStore;
      }
    }
    const recent = [...(await store.getForIdentity(identity))].filter((timestamp) => timestamp + windowMs > now).sort((a, b) => a - b);
    if (recent.length >= maxPerWindow) {
      const freesAt = recent[recent.length - maxPerWindow]! + windowMs;
      return { allowed: false, retryAfterMs: Math.max(1, freesAt - now) };
    }
    await store.setForIdentity(identity, [...recent, now], windowMs);
    return { allowed: true };
  }
}
