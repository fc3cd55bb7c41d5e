/**
 * Writes one `generations` row per ended generation (usage, budgets, durable history), behind the
 * generations: an observer that queues the row when a generation ends and a writer that stores
 * the queue in batches. A generation never waits for the database.
 *
 * While the database cannot be written the rows wait in memory (at most `maxWaiting`; rows past
 * that are dropped and counted, never silently), the writer retries with a growing pause (up to
 * {@link MAX_RETRY_PAUSE_MS}), and {@link UsageRecorder.unavailableReason} says so for `/readyz`.
 * When the database answers again the waiting rows are written, oldest first.
 */
import type { GenerationObserver } from '../generations/generation-observer.js';
import type { GenerationRecord } from '../generations/generation-records.js';
import type { GenerationRow, GenerationStore } from '../storage/generation-store.js';

/** Rows written in one statement at most. */
const BATCH_ROWS = 200;
/** First pause after a failed write, ms; doubled after each further failure. */
const FIRST_RETRY_PAUSE_MS = 250;
/** Longest pause between two attempts while the database is down, ms. */
const MAX_RETRY_PAUSE_MS = 30_000;

/** Settings of a {@link UsageRecorder}. */
export interface UsageRecorderOptions {
  store: Pick<GenerationStore, 'recordMany'>;
  /** Most rows waiting for the database; more are dropped (and counted). */
  maxWaiting: number;
  /** The cost of a row (in the price table's currency), or undefined when its model has no price. */
  costOf?(row: GenerationRow): number | undefined;
  /** Told once per outage, with {@link databaseFailureReason}'s line, when a write first fails; and when writes succeed again. */
  onOutage?(reason: string): void;
  onRecovered?(written: number): void;
}

/** Longest reason kept, characters. */
const MAX_REASON_CHARACTERS = 200;

/**
 * Why the database refused a write, as one short line that holds none of the rows' data: the
 * driver's own error (the innermost `cause`: "connect ECONNREFUSED 127.0.0.1:5432"), not Drizzle's
 * wrapper, whose message repeats the SQL and its parameters — generation text among them — and so
 * must never reach `/readyz` (public) or the logs.
 */
export function databaseFailureReason(error: unknown): string {
  let innermost = error as { message?: string; code?: string; cause?: unknown } | undefined;
  while (innermost?.cause && typeof innermost.cause === 'object') innermost = innermost.cause as typeof innermost;
  const line = (innermost?.message || innermost?.code || 'unknown error').split('\n')[0]!.trim();
  // A message that still quotes the statement is replaced by the driver's code.
  const reason = /^Failed query:/i.test(line) ? (innermost?.code ?? 'the query failed') : line;
  return reason.length > MAX_REASON_CHARACTERS ? `${reason.slice(0, MAX_REASON_CHARACTERS)}…` : reason;
}

/**
 * What {@link GenerationRecord} becomes in the table. `result` holds what `generation(id)` shows
 * (`generations/generation-history.ts` reads it back) and the last event's sequence; the bytes of
 * inline (`B64_JSON`) images are left out.
 */
export function generationRow(record: GenerationRecord, timeToFirstTokenMs: number | undefined): GenerationRow {
  const finishedAt = record.finishedAt ?? new Date();
  const common = {
    id: record.id,
    kind: record.kind,
    ...(record.owner !== undefined && { owner: record.owner }),
    provider: record.provider,
    model: record.model,
    status: record.status === 'completed' || record.status === 'cancelled' ? record.status : ('failed' as const),
    ...(record.error && { errorCode: record.error.code }),
    ...(timeToFirstTokenMs !== undefined && { timeToFirstTokenMs }),
    durationMs: Math.max(0, finishedAt.getTime() - record.createdAt.getTime()),
    createdAt: record.createdAt,
    finishedAt,
  };
  // The last sequence lets a subscriber of an expired generation learn which events are gone (EVENTS_EXPIRED).
  const { lastSequence } = record;
  if (record.kind === 'chat') {
    return {
      ...common,
      promptTokens: record.usage?.promptTokens ?? 0,
      completionTokens: record.usage?.completionTokens ?? 0,
      images: 0,
      result: JSON.parse(
        JSON.stringify({
          text: record.text,
          finishReason: record.finishReason,
          usage: record.usage,
          toolCalls: record.toolCalls,
          reasoning: record.reasoning,
          conversationId: record.conversationId,
          error: record.error,
          lastSequence,
        }),
      ) as Record<string, unknown>,
    };
  }
  return {
    ...common,
    promptTokens: 0,
    completionTokens: 0,
    images: record.images.length,
    // Inline images (`B64_JSON`) are not stored: that format keeps nothing on the server, and its bytes would swell every row.
    result: JSON.parse(
      JSON.stringify({ prompt: record.prompt, images: record.images.map(({ b64Json: _bytes, ...image }) => image), error: record.error, lastSequence }),
    ) as Record<string, unknown>,
  };
}

/** The observer and writer; see the module comment. */
export class UsageRecorder implements GenerationObserver {
  private readonly waiting: GenerationRow[] = [];
  private readonly firstContentAt = new WeakMap<GenerationRecord, number>();
  private writing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryPauseMs = FIRST_RETRY_PAUSE_MS;
  private outage: string | undefined;
  private droppedTotal = 0;
  private closed = false;

  constructor(private readonly options: UsageRecorderOptions) {}

  /** Rows waiting to be written, and rows dropped since start. */
  get stats(): { waiting: number; dropped: number } {
    return { waiting: this.waiting.length, dropped: this.droppedTotal };
  }

  contentReceived(record: GenerationRecord): void {
    if (!this.firstContentAt.has(record)) this.firstContentAt.set(record, Date.now());
  }

  generationFinished(record: GenerationRecord): void {
    if (this.closed) return;
    const firstContentAt = this.firstContentAt.get(record);
    const row = generationRow(record, firstContentAt === undefined ? undefined : Math.max(0, firstContentAt - record.createdAt.getTime()));
    const cost = this.options.costOf?.(row);
    if (cost !== undefined) row.cost = cost;
    if (this.waiting.length >= this.options.maxWaiting) {
      this.droppedTotal += 1;
      return;
    }
    this.waiting.push(row);
    if (!this.retryTimer) this.write();
  }

  /** Why rows cannot be written right now (for `/readyz`), or undefined. */
  unavailableReason(): string | undefined {
    if (this.outage === undefined) return undefined;
    return `usage records cannot be written to the database (${this.outage}); ${this.waiting.length} waiting, ${this.droppedTotal} dropped`;
  }

  /**
   * Resolves once every row queued so far has been written (or the database refused it); for tests
   * and for a stop. Does not wait for a database that is down beyond one attempt.
   */
  async flush(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    while (this.waiting.length > 0 || this.writing) {
      const before = this.waiting.length;
      await (this.writing ?? this.write());
      if (this.outage !== undefined && this.waiting.length >= before) return;
    }
  }

  /** Writes what waits (at most one attempt more), then stops taking rows. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    clearTimeout(this.retryTimer);
  }

  private write(): Promise<void> {
    this.writing ??= this.writeBatches().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  private async writeBatches(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.slice(0, BATCH_ROWS);
      try {
        await this.options.store.recordMany(batch);
      } catch (error) {
        const reason = databaseFailureReason(error);
        if (this.outage === undefined) this.options.onOutage?.(reason);
        this.outage = reason;
        this.scheduleRetry();
        return;
      }
      this.waiting.splice(0, batch.length);
      if (this.outage !== undefined) {
        this.outage = undefined;
        this.retryPauseMs = FIRST_RETRY_PAUSE_MS;
        this.options.onRecovered?.(batch.length);
      }
    }
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.write();
    }, this.retryPauseMs);
    this.retryTimer.unref();
    this.retryPauseMs = Math.min(this.retryPauseMs * 2, MAX_RETRY_PAUSE_MS);
  }
}
