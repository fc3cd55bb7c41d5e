/**
 * How long finished generations are kept: for the retention time, and no more than `maxRetained`
 * of them (the oldest go first). One timer, for the first of them to expire, serves all: the
 * retention time is the same for all, so the order of finishing is the order of expiry, and a
 * timer per kept generation would cost heap for each.
 */

/** Settings of {@link GenerationRetention}. */
export interface GenerationRetentionOptions {
  /** How long a finished generation is kept, ms. */
  retentionMs: number;
  /** Most finished generations kept; beyond it the oldest are forgotten early. Default: no limit. */
  maxRetained?: number;
  /** Forgets one generation (its record and its events). */
  forget(generationId: string): void;
}

/** The finished generations kept, in the order they finished. */
export class GenerationRetention {
  /** Each kept generation's expiry, ms on `performance.now()`'s clock, in the order they finished. */
  private readonly retained = new Map<string, number>();
  /** Fires when the first of `retained` is due; unset while nothing is kept. */
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: GenerationRetentionOptions) {}

  /** Keeps a generation that just finished, forgetting the oldest kept ones beyond `maxRetained`. */
  keep(generationId: string): void {
    this.retained.set(generationId, performance.now() + this.options.retentionMs);
    const maxRetained = this.options.maxRetained ?? Number.POSITIVE_INFINITY;
    this.forgetOldestWhile(() => this.retained.size > maxRetained);
    if (this.expiryTimer === undefined) this.startExpiryTimer();
  }

  /** Stops the timer and forgets the schedule (the generations themselves are left to the caller). */
  clear(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.retained.clear();
  }

  /** Forgets kept generations, oldest first, as long as `due(expiresAt)` holds for the oldest left. */
  private forgetOldestWhile(due: (expiresAt: number) => boolean): void {
    for (const [generationId, expiresAt] of this.retained) {
      if (!due(expiresAt)) break;
      this.retained.delete(generationId);
      this.options.forget(generationId);
    }
  }

  /** Sets the timer for the first kept generation's expiry (none when nothing is kept). */
  private startExpiryTimer(): void {
    const first = this.retained.values().next();
    if (first.done) return;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      const now = performance.now();
      this.forgetOldestWhile((expiresAt) => expiresAt <= now);
      this.startExpiryTimer();
    }, Math.max(0, first.value - performance.now()));
    this.expiryTimer.unref();
  }
}
