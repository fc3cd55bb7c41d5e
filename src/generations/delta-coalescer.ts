/**
 * Groups text deltas in time. The first delta goes out at once (time to first token is never
 * delayed); after that, text that arrives within `windowMs` of the previous delta waits and goes
 * out together at the end of the window. Streams slower than the window are untouched; fast ones
 * (a local model at thousands of tokens/s) become one delta per window instead of one per token,
 * which is what keeps the per-event cost of GraphQL execution and socket writes off the hot path
 * (every event is executed and written once per subscriber).
 */
import { performance } from 'node:perf_hooks';

/** Collects delta text and sends it, in order, at most once per window. */
export class DeltaCoalescer {
  private pending = '';
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  /** Sends run one after another; a failed send makes every later `flush` reject. */
  private sending: Promise<unknown> = Promise.resolve();

  /**
   * @param windowMs the shortest time between two sends, ms; 0 sends every delta at once.
   * @param send delivers one delta's text (e.g. numbers and publishes the event).
   */
  constructor(
    private readonly windowMs: number,
    private readonly send: (text: string) => Promise<unknown>,
  ) {}

  /** Adds text; sends it now when the window since the last send has passed, else at the window's end. */
  add(text: string): Promise<unknown> {
    if (text.length === 0) return this.sending;
    this.pending += text;
    if (this.timer) return Promise.resolve();
    const wait = this.lastSentAt + this.windowMs - performance.now();
    if (wait <= 0) return this.flush();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch(() => {}); // the failure is reported by the next flush
    }, wait);
    return Promise.resolve();
  }

  /** Sends what is pending now (before a terminal event) and resolves when every send is done. */
  flush(): Promise<unknown> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length > 0) {
      const text = this.pending;
      this.pending = '';
      this.lastSentAt = performance.now();
      this.sending = this.sending.then(() => this.send(text));
    }
    return this.sending;
  }
}
