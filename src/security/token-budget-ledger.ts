/**
 * How many tokens an owner (a virtual key, `key:<id>`) used since a time, for its budget: the sum of
 * its `generations` rows in the database (read through `GenerationStore.tokensSince`, cached for
 * `cacheTtlMs`), plus what the database does not hold yet —
 * - the real usage of its generations that ended but whose rows are not written yet (the usage
 *   recorder writes them behind the generations, and keeps them in memory while the database is down),
 * - the estimates held for its starts and running generations.
 *
 * A row written while the sum was read may or may not be in it: such a read is done again (twice at
 * most; then the row may count twice until the next read, never zero times). Rows written by other
 * instances count once this instance reads the sum again (within `cacheTtlMs`).
 */
import { LRUCache } from 'lru-cache';

/** Where the sums come from: `GenerationStore`. */
export interface TokenUseSource {
  /** Prompt plus completion tokens of `owner`'s generations that finished at or after `since`. */
  tokensSince(owner: string, since: Date): Promise<number>;
}

/** Settings of a {@link TokenBudgetLedger}. */
export interface TokenBudgetLedgerOptions {
  source: TokenUseSource;
  /** How long a sum read from the database is trusted, ms (`API_KEY_CACHE_TTL_MS`). */
  cacheTtlMs: number;
  /** Most sums cached (owners × periods). */
  maxCachedSums: number;
  /** Most ended generations remembered while their rows are not written (past it the oldest are forgotten). */
  maxEndedGenerations?: number;
  /** The clock, ms since the epoch (injectable for tests). */
  now?: () => number;
}

interface EndedGeneration {
  owner: string;
  tokens: number;
  /** ms since the epoch. */
  finishedAt: number;
  /** When its row was written, ms since the epoch; undefined while it is not. */
  writtenAt?: number;
}

interface OwnerState {
  /** Tokens held for starts and running generations, by reservation id. */
  held: Map<string, number>;
  /** Ended generations the cached sums may lack, by generation id. */
  ended: Map<string, EndedGeneration>;
  /** Reads of the owner's sum in flight. */
  reading: number;
  /** Until when a cached sum of the owner may be served, ms since the epoch. */
  cachedUntil: number;
}

interface DatabaseSum {
  tokens: number;
  /** When the read began: rows written before it are in `tokens`. */
  readStartedAt: number;
}

/** Reads of a sum, at most, when rows of the owner were written meanwhile. */
const MAX_READS = 3;

/** See the module comment. */
export class TokenBudgetLedger {
  private readonly owners = new Map<string, OwnerState>();
  /** Every remembered ended generation, oldest first, for the bound and for rows written. */
  private readonly endedGenerations = new Map<string, EndedGeneration>();
  private readonly sums: LRUCache<string, DatabaseSum>;
  private readonly readingSums = new Map<string, Promise<DatabaseSum>>();
  private readonly now: () => number;
  private readonly maxEnded: number;
  private lastSweep: number;

  constructor(private readonly options: TokenBudgetLedgerOptions) {
    this.now = options.now ?? Date.now;
    this.maxEnded = options.maxEndedGenerations ?? 100_000;
    this.lastSweep = this.now();
    this.sums = new LRUCache({ max: options.maxCachedSums, ttl: options.cacheTtlMs, ttlResolution: 0, perf: { now: this.now } });
  }

  /**
   * Tokens `owner` used since `since` (see the module comment), estimates held included.
   * @throws the database's error when the sum is not cached and cannot be read.
   */
  async used(owner: string, since: Date): Promise<number> {
    const sum = await this.databaseSum(owner, since);
    const state = this.owners.get(owner);
    if (!state) return sum.tokens;
    let tokens = sum.tokens;
    for (const held of state.held.values()) tokens += held;
    for (const generation of state.ended.values()) {
      const inSum = generation.writtenAt !== undefined && generation.writtenAt < sum.readStartedAt;
      if (!inSum && generation.finishedAt >= since.getTime()) tokens += generation.tokens;
    }
    return tokens;
  }

  /** Holds `tokens` for `owner` under `reservationId` until {@link release}. */
  hold(owner: string, reservationId: string, tokens: number): void {
    this.sweep();
    this.stateOf(owner).held.set(reservationId, tokens);
  }

  /** Stops holding what {@link hold} held under `reservationId`. */
  release(owner: string, reservationId: string): void {
    const state = this.owners.get(owner);
    state?.held.delete(reservationId);
    if (state) this.forgetIfIdle(owner, state);
  }

  /** A generation of `owner` ended having used `tokens`; its row is on its way to the database. */
  ended(owner: string, generationId: string, tokens: number, finishedAt: Date): void {
    const generation: EndedGeneration = { owner, tokens, finishedAt: finishedAt.getTime() };
    this.stateOf(owner).ended.set(generationId, generation);
    this.endedGenerations.set(generationId, generation);
    if (this.endedGenerations.size > this.maxEnded) {
      const [oldestId, oldest] = this.endedGenerations.entries().next().value as [string, EndedGeneration];
      this.forgetEnded(oldestId, oldest);
    }
  }

  /** Rows were written to the database (the usage recorder's writes): their tokens are in the next sums read. */
  written(rows: ReadonlyArray<{ id: string }>): void {
    const now = this.now();
    for (const row of rows) {
      const generation = this.endedGenerations.get(row.id);
      if (!generation) continue;
      generation.writtenAt = now;
      const state = this.owners.get(generation.owner);
      // No sum of the owner is cached or being read: the next read counts the row.
      if (state && state.reading === 0 && state.cachedUntil <= now) this.forgetEnded(row.id, generation);
    }
  }

  /** Owners and ended generations held (for tests of the bounds). */
  get size(): { owners: number; endedGenerations: number } {
    return { owners: this.owners.size, endedGenerations: this.endedGenerations.size };
  }

  private databaseSum(owner: string, since: Date): Promise<DatabaseSum> {
    const cacheKey = `${owner}\u0000${since.getTime()}`;
    const cached = this.sums.get(cacheKey);
    if (cached) return Promise.resolve(cached);
    let reading = this.readingSums.get(cacheKey);
    if (!reading) {
      reading = this.readSum(owner, since, cacheKey).finally(() => this.readingSums.delete(cacheKey));
      this.readingSums.set(cacheKey, reading);
    }
    return reading;
  }

  private async readSum(owner: string, since: Date, cacheKey: string): Promise<DatabaseSum> {
    const state = this.stateOf(owner);
    for (let read = 1; ; read += 1) {
      const readStartedAt = this.now();
      state.reading += 1;
      let tokens: number;
      try {
        tokens = await this.options.source.tokensSince(owner, since);
      } finally {
        state.reading -= 1;
      }
      const writtenMeanwhile = [...state.ended.values()].some((generation) => generation.writtenAt !== undefined && generation.writtenAt >= readStartedAt);
      if (writtenMeanwhile && read < MAX_READS) continue;
      const sum = { tokens, readStartedAt };
      this.sums.set(cacheKey, sum);
      state.cachedUntil = Math.max(state.cachedUntil, this.now() + this.options.cacheTtlMs);
      // Rows written before the read began are in the sum.
      for (const [generationId, generation] of state.ended) {
        if (generation.writtenAt !== undefined && generation.writtenAt < readStartedAt) this.forgetEnded(generationId, generation);
      }
      this.forgetIfIdle(owner, state);
      return sum;
    }
  }

  /**
   * At most once per `cacheTtlMs`: forgets written generations of owners whose sums expired (the
   * next read counts them) and owners left with nothing.
   */
  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweep < this.options.cacheTtlMs) return;
    this.lastSweep = now;
    for (const [owner, state] of this.owners) {
      if (state.reading === 0 && state.cachedUntil <= now) {
        for (const [generationId, generation] of state.ended) if (generation.writtenAt !== undefined) this.forgetEnded(generationId, generation);
      }
      this.forgetIfIdle(owner, state);
    }
  }

  private stateOf(owner: string): OwnerState {
    let state = this.owners.get(owner);
    if (!state) {
      state = { held: new Map(), ended: new Map(), reading: 0, cachedUntil: 0 };
      this.owners.set(owner, state);
    }
    return state;
  }

  private forgetEnded(generationId: string, generation: EndedGeneration): void {
    this.endedGenerations.delete(generationId);
    const state = this.owners.get(generation.owner);
    if (!state) return;
    state.ended.delete(generationId);
    this.forgetIfIdle(generation.owner, state);
  }

  /** Drops an owner's state once nothing of it matters: nothing held, ended or being read, and no cached sum it could correct. */
  private forgetIfIdle(owner: string, state: OwnerState): void {
    if (state.held.size === 0 && state.ended.size === 0 && state.reading === 0 && state.cachedUntil <= this.now()) this.owners.delete(owner);
  }
}
