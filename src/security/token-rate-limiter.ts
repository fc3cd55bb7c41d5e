/**
 * A virtual key's tokens per minute: a sliding window over the tokens of the key's generations,
 * each counted at its start — first its estimate (checked before it starts), then, when it ended,
 * its real usage in place of the estimate. The counts live in a {@link TokenRateStore}: this
 * module's bounded in-memory one by default, or `RedisTokenRateStore`
 * (`scale-out/redis-token-rate-store.ts`) so that instances share them.
 */
import type { Logger } from '../operations/logger.js';

/** The answer of a reservation: counted, or refused with the time until it would fit, ms. */
export type TokenRateDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

/** Where the windows are kept. Every method may reject when a shared store cannot be reached. */
export interface TokenRateStore {
  /**
   * Counts `tokens` for `owner` at `now` (ms since the epoch) under `entryId` when the tokens of the
   * owner's entries younger than `windowMs` plus `tokens` are at most `limit`; otherwise answers how
   * long until enough of them have left the window (ms, at least 0). `tokens` is at most `limit`.
   */
  reserve(owner: string, entryId: string, tokens: number, limit: number, windowMs: number, now: number): Promise<TokenRateDecision>;
  /** Replaces the tokens of entry `entryId` (the real usage); nothing when it left the window. */
  settle(owner: string, entryId: string, tokens: number): Promise<void>;
  /** Removes entry `entryId` (its start was refused after all). */
  cancel(owner: string, entryId: string): Promise<void>;
}

interface WindowEntry {
  id: string;
  at: number;
  tokens: number;
}

/**
 * The time until enough of `entries` (oldest first) leave the window for `used - freed + tokens <= limit`, ms.
 * Exported for the Redis store's tests; the Redis script computes the same.
 */
export function retryAfterMs(entries: readonly WindowEntry[], used: number, tokens: number, limit: number, windowMs: number, now: number): number {
  let freed = 0;
  for (const entry of entries) {
    freed += entry.tokens;
    if (used - freed + tokens <= limit) return Math.max(0, entry.at + windowMs - now);
  }
  return windowMs;
}

/**
 * {@link TokenRateStore} in memory, bounded: an owner's entries leave with the window, owners
 * without entries are forgotten, and at most `maxOwners` owners are kept (the ones idle longest go first).
 */
export class MemoryTokenRateStore implements TokenRateStore {
  private readonly windows = new Map<string, WindowEntry[]>();

  constructor(private readonly maxOwners = 100_000) {}

  async reserve(owner: string, entryId: string, tokens: number, limit: number, windowMs: number, now: number): Promise<TokenRateDecision> {
    const entries = (this.windows.get(owner) ?? []).filter((entry) => entry.at + windowMs > now);
    const used = entries.reduce((sum, entry) => sum + entry.tokens, 0);
    if (used + tokens > limit) {
      this.keep(owner, entries);
      return { allowed: false, retryAfterMs: retryAfterMs(entries, used, tokens, limit, windowMs, now) };
    }
    entries.push({ id: entryId, at: now, tokens });
    this.keep(owner, entries);
    return { allowed: true };
  }

  async settle(owner: string, entryId: string, tokens: number): Promise<void> {
    const entry = this.windows.get(owner)?.find((candidate) => candidate.id === entryId);
    if (entry) entry.tokens = tokens;
  }

  async cancel(owner: string, entryId: string): Promise<void> {
    const entries = this.windows.get(owner);
    if (entries) this.keep(owner, entries.filter((entry) => entry.id !== entryId));
  }

  /** Owners held now. */
  get size(): number {
    return this.windows.size;
  }

  private keep(owner: string, entries: WindowEntry[]): void {
    this.windows.delete(owner);
    if (entries.length === 0) return;
    this.windows.set(owner, entries);
    if (this.windows.size > this.maxOwners) this.windows.delete(this.windows.keys().next().value as string);
  }
}

/** Settings of a {@link TokenRateLimiter}. */
export interface TokenRateLimiterOptions {
  /** Where the windows live; default a {@link MemoryTokenRateStore}. */
  store?: TokenRateStore;
  /** Length of the window, ms (the gateway uses 60 000: "per minute"). */
  windowMs: number;
  /** The clock, ms since the epoch (injectable for tests). */
  now?: () => number;
  /** Receives one `warn` when a shared store stops answering and one `info` when it answers again. */
  logger?: Pick<Logger, 'warn' | 'info'>;
}

/**
 * Reserves, settles and cancels tokens in the window. While a shared store (Redis) fails, the
 * owner's tokens are counted in this instance's memory instead (each instance then allows the full
 * limit), as the start rate limiter does.
 */
export class TokenRateLimiter {
  private readonly store: TokenRateStore;
  private readonly localStore = new MemoryTokenRateStore();
  private readonly now: () => number;
  private sharedStoreFailing = false;

  constructor(private readonly options: TokenRateLimiterOptions) {
    this.store = options.store ?? this.localStore;
    this.now = options.now ?? Date.now;
  }

  /** The window, ms. */
  get windowMs(): number {
    return this.options.windowMs;
  }

  /**
   * Counts `tokens` (capped at `limit`, so a request larger than the limit runs once the window is
   * empty) under `entryId` when they fit the owner's window.
   * @returns counted, or refused with the time until they fit (ms, at least 1).
   */
  async reserve(owner: string, entryId: string, tokens: number, limit: number): Promise<TokenRateDecision> {
    const counted = Math.min(tokens, limit);
    const decision = await this.withStore((store) => store.reserve(owner, entryId, counted, limit, this.options.windowMs, this.now()));
    return decision.allowed ? decision : { allowed: false, retryAfterMs: Math.max(1, decision.retryAfterMs) };
  }

  /** Replaces the entry's estimate with the real usage. Never rejects (a failure is logged by the store switch). */
  async settle(owner: string, entryId: string, tokens: number): Promise<void> {
    await this.withStore((store) => store.settle(owner, entryId, tokens)).catch(() => {});
  }

  /** Removes the entry. Never rejects. */
  async cancel(owner: string, entryId: string): Promise<void> {
    await this.withStore((store) => store.cancel(owner, entryId)).catch(() => {});
  }

  private async withStore<Result>(use: (store: TokenRateStore) => Promise<Result>): Promise<Result> {
    if (this.store === this.localStore) return use(this.localStore);
    try {
      const result = await use(this.store);
      if (this.sharedStoreFailing) {
        this.sharedStoreFailing = false;
        this.options.logger?.info('the shared token-rate store answers again: tokens per minute are counted across instances again');
      }
      return result;
    } catch (error) {
      if (!this.sharedStoreFailing) {
        this.sharedStoreFailing = true;
        this.options.logger?.warn({ err: error }, 'the shared token-rate store (Redis) does not answer: counting tokens per minute on this instance until it does');
      }
      return use(this.localStore);
    }
  }
}
