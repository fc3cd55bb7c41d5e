/**
 * One generation while it runs: its record, its abort, its chain of events (numbered, appended to
 * the event log, published — one after another, in sequence order, whatever the log's latency), its
 * time limit, and its end with exactly one terminal event (completed, failed or cancelled). The
 * work itself (providers, fallback, images) is handed in; the service keeps a map of runs.
 */
import type { Logger } from '../operations/logger.js';
import type { EventLog } from './event-log.js';
import { GatewayError } from './gateway-error.js';
import { GenerationAbort } from './generation-abort.js';
import { GenerationCancellation, GenerationTimeout, toGenerationError } from './generation-errors.js';
import { isTerminalEvent, type GenerationEvent, type UnnumberedGenerationEvent } from './generation-events.js';
import type { GenerationPubSub } from './generation-pub-sub.js';
import type { GenerationTrace } from './generation-tracer.js';
import { applyTerminalEvent, type GenerationRecord, type GenerationStatus } from './generation-records.js';

/** Races a promise against the run's abort, so a provider that ignores the abort cannot hold it. */
export type AbortRace = <T>(promise: Promise<T>) => Promise<T>;

/**
 * The body of a generation: runs the providers and returns the terminal success event. Every step
 * that waits on something outside (a provider's next part, a download) goes through `race`, so a
 * cancellation or the time limit ends the work even when that step never settles.
 */
export type GenerationWork = (run: GenerationRun, race: AbortRace) => Promise<UnnumberedGenerationEvent>;

/** A terminal event the event log could not take, and the error its followers end with meanwhile. */
export interface UnstoredEnd {
  event: GenerationEvent;
  error: GatewayError;
}

/** What a run needs of the service that keeps it. */
export interface GenerationRunContext {
  eventLog: EventLog;
  pubSub: GenerationPubSub;
  logger: Logger;
  /** Longest time a run may take, ms; then it ends FAILED with `GENERATION_TIMEOUT`. Absent: no limit. */
  timeoutMs?: number;
  /** Terminal events the log could not take yet, by generation id (followers end with their error). */
  unstoredEnds: Map<string, UnstoredEnd>;
  /** Wakes this instance's followers of a generation (they then see its unstored end). */
  wakeFollowers(generationId: string): void;
  /** Whether the service still keeps this record (it neither stopped nor forgot the generation). */
  keeps(record: GenerationRecord): boolean;
  /** Saves the record where other instances see it (scaled out; nothing to do on one instance). */
  share(record: GenerationRecord): Promise<void>;
  /** Gives up the run's owner lease (scaled out; nothing to do on one instance). */
  releaseLease(generationId: string): void;
  /** Told once the run has ended: its terminal event is out, or kept to be written later. */
  onEnded(run: GenerationRun): void;
}

/** Attempts to write an end the log could not take, once it is reachable again each time. */
const UNSTORED_END_ATTEMPTS = 5;

/** A generation running (or queued) on this instance. */
export class GenerationRun {
  readonly abort = new GenerationAbort();
  /** The generation's trace, when tracing is on (set before `start`; see `generation-tracer.ts`). */
  trace?: GenerationTrace;
  /** Settles when the terminal event is out (see {@link start}); settled until then for a run that is never started. */
  finished: Promise<void> = Promise.resolve();
  /** The last emission: the next one waits for it. */
  private chain: Promise<unknown> = Promise.resolve();
  /** Sequence of the last event the log took. */
  private stored: number;
  /** Set once an append failed: later events are refused with it, and the terminal event follows `stored`. */
  private failure: GatewayError | undefined;

  /** @param record the generation's record; its `lastSequence` is where numbering goes on. */
  constructor(
    readonly record: GenerationRecord,
    private readonly context: GenerationRunContext,
  ) {
    this.stored = record.lastSequence;
  }

  /**
   * Runs `work` in the background and ends the generation with exactly one terminal event: the
   * work's, or `generation-failed` (its error; `GENERATION_TIMEOUT` past the time limit;
   * `EVENT_LOG_UNAVAILABLE` when the log refused an event), or `generation-cancelled`.
   * @returns {@link finished}.
   */
  start(work: GenerationWork): Promise<void> {
    this.finished = this.run(work);
    return this.finished;
  }

  /** Cancels the run (`generation-cancelled` with `reason`) and waits until its terminal event is out. */
  cancel(reason: string): Promise<void> {
    this.abort.abort(new GenerationCancellation(reason));
    return this.finished;
  }

  /**
   * Numbers the event, appends it to the log and publishes it. Appends of one run go one after
   * another, in sequence order, whatever the log's latency.
   *
   * An event the log cannot take (Redis unreachable, or it refused it) breaks the run's log from
   * there: the emission rejects with GatewayError `EVENT_LOG_UNAVAILABLE`, the run is aborted with
   * that error (it ends FAILED with that code), later events are refused the same way, and the
   * terminal event takes the sequence after the last one stored, so the log never has a hole. A
   * terminal event the log cannot take either is written once it is back (see {@link storeEndLater});
   * its emission resolves. Nothing is published that the log did not take.
   * @returns the event as the log took it (numbered), or undefined for a terminal event it did not take (yet).
   */
  emit(event: UnnumberedGenerationEvent): Promise<GenerationEvent | undefined> {
    const record = this.record;
    record.lastSequence += 1;
    // Object.assign, not an object spread: every `{ ...event, … }` got a hidden class of its own on
    // Node 20's V8, so each event kept in the log cost a map and made every reader of events megamorphic.
    const numbered = Object.assign({}, event, { generationId: record.id, sequence: record.lastSequence }) as GenerationEvent;
    const emission = this.chain.catch(() => {}).then(() => this.store(numbered));
    this.chain = emission;
    return emission;
  }

  /** The record's last sequence once the pending appends have settled (a final record's is then its terminal event's). */
  async settledLastSequence(): Promise<number> {
    await this.chain.catch(() => {});
    return this.record.lastSequence;
  }

  private async run(work: GenerationWork): Promise<void> {
    const { abort } = this;
    // Each step settles with its promise or with the abort, whichever comes first. (Promise.race against
    // one never-settling "aborted" promise would keep a reaction per step until the generation ends.)
    const pending = new Set<(reason: unknown) => void>();
    const onAbort = () => {
      for (const reject of pending) reject(abort.reason);
      pending.clear();
    };
    abort.addEventListener('abort', onAbort, { once: true });
    const { timeoutMs } = this.context;
    const timeout =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => abort.abort(new GenerationTimeout(`The generation ran longer than ${timeoutMs} ms (GENERATION_TIMEOUT_MS) and was stopped.`)), timeoutMs);
    const race: AbortRace = (promise) =>
      new Promise((resolve, reject) => {
        if (abort.aborted) {
          // The step still settles later (a provider throws the abort reason): observed, so it is not an unhandled rejection.
          promise.catch(() => {});
          reject(abort.reason);
          return;
        }
        pending.add(reject);
        promise.then(
          (value) => {
            pending.delete(reject);
            resolve(value);
          },
          (error: unknown) => {
            pending.delete(reject);
            reject(error);
          },
        );
      });
    const record = this.record;
    try {
      const completed = await work(this, race);
      if (abort.aborted) throw abort.reason;
      await this.finish('completed', completed);
    } catch (error) {
      const reason: unknown = abort.reason;
      if ((reason instanceof GatewayError && reason.code === 'EVENT_LOG_UNAVAILABLE') || reason instanceof GenerationTimeout) {
        // Aborted by `emit` (the log could not store an event; the terminal event follows the last stored one), or by the time limit.
        record.error = { code: reason.code, message: reason.message, provider: record.provider };
        await this.finish('failed', { type: 'generation-failed', error: record.error });
      } else if (abort.aborted) {
        await this.finish('cancelled', { type: 'generation-cancelled', reason: reason instanceof GenerationCancellation ? reason.message : 'cancelled' });
      } else {
        record.error = toGenerationError(error, record.provider, this.context.logger, record.id);
        await this.finish('failed', { type: 'generation-failed', error: record.error });
      }
    } finally {
      clearTimeout(timeout);
      abort.removeEventListener('abort', onAbort);
    }
  }

  /** Sets the final status, emits the terminal event, shares the record, and tells the service. */
  private async finish(status: GenerationStatus, event: UnnumberedGenerationEvent): Promise<void> {
    this.record.status = status;
    this.record.finishedAt = new Date();
    flattenTexts(this.record);
    try {
      await this.emit(event);
      await this.context.share(this.record);
    } finally {
      this.context.onEnded(this);
    }
  }

  /** Appends and publishes one numbered event of {@link emit}, or handles the log's failure; resolves with the event stored, if it was. */
  private async store(numbered: GenerationEvent): Promise<GenerationEvent | undefined> {
    const { record, context } = this;
    const terminal = isTerminalEvent(numbered);
    let event = numbered;
    if (this.failure) {
      if (!terminal) throw this.failure;
      if (this.stored === 0) return undefined; // nothing of it reached the log, so no one can be following it
      event = Object.assign({}, numbered, { sequence: this.stored + 1 });
      record.lastSequence = event.sequence;
    }
    try {
      await context.eventLog.append(event);
    } catch (error) {
      const reason = (error as Error).message;
      if (terminal) {
        const ending = new GatewayError(
          'EVENT_LOG_UNAVAILABLE',
          `The event log could not store the last event (${event.sequence}) of generation "${record.id}" (${reason}); it is written when the log is back: resubscribe then with after: ${this.stored}.`,
        );
        if (this.stored > 0) this.storeEndLater(event, ending);
        context.logger.error({ err: error, generationId: record.id, sequence: event.sequence }, 'cannot store the terminal event of a generation');
        return undefined;
      }
      const failure =
        this.failure ??
        new GatewayError('EVENT_LOG_UNAVAILABLE', `The event log could not store event ${event.sequence} of generation "${record.id}" (${reason}), so the generation was stopped.`);
      if (!this.failure) {
        this.failure = failure;
        context.logger.error({ err: error, generationId: record.id, sequence: event.sequence }, 'cannot store an event: the generation is stopped');
        this.abort.abort(failure);
      }
      throw failure;
    }
    this.stored = event.sequence;
    context.pubSub.publish('generation:event', record.id, event);
    return event;
  }

  /**
   * Keeps a terminal event the log could not take. This instance's followers of the generation that
   * have every stored event are woken and end with `error` (they cannot be given an event the log
   * does not hold). When the log is back (`EventLog.whenAvailable`) the event is appended after the
   * last event the log holds — normally `stored`, later when an append whose answer was lost did go
   * through — published, and the record shared, so the generation ends for every instance. Given up
   * after a few failed attempts, or when the service stops or forgets the generation; the lease is
   * released either way (an end never written lets another instance end it with `INSTANCE_LOST`).
   */
  private storeEndLater(event: GenerationEvent, error: GatewayError): void {
    const { record, context } = this;
    const { eventLog, pubSub, unstoredEnds } = context;
    unstoredEnds.set(record.id, { event, error });
    context.wakeFollowers(record.id);
    const whenAvailable = eventLog.whenAvailable?.bind(eventLog);
    if (!whenAvailable) {
      context.releaseLease(record.id);
      return;
    }
    void (async () => {
      for (let attempt = 1; attempt <= UNSTORED_END_ATTEMPTS; attempt += 1) {
        await whenAvailable();
        if (!context.keeps(record)) break;
        try {
          const later = await eventLog.read(record.id, this.stored);
          const storedEnd = later.find((stored) => isTerminalEvent(stored));
          if (storedEnd) {
            // Its own append went through after all, or another instance ended the generation (INSTANCE_LOST
            // after a lapsed lease): the record says what the stream says.
            applyTerminalEvent(record, storedEnd);
            record.lastSequence = storedEnd.sequence;
          } else {
            const end = Object.assign({}, event, { sequence: (later.at(-1)?.sequence ?? this.stored) + 1 });
            await eventLog.append(end);
            this.stored = end.sequence;
            record.lastSequence = end.sequence;
            pubSub.publish('generation:event', record.id, end);
          }
          unstoredEnds.delete(record.id);
          await context.share(record);
          return;
        } catch (retryError) {
          context.logger.warn({ err: retryError, generationId: record.id, attempt }, 'cannot store the terminal event yet');
        }
      }
      // Stopped or forgotten (kept after the last failed attempt, so followers still get `error`).
      if (!context.keeps(record)) unstoredEnds.delete(record.id);
    })().finally(() => context.releaseLease(record.id));
  }
}

/**
 * Makes the record's streamed text one flat string, in place, before it is retained. V8 keeps a
 * string built by repeated `+=` as a tree of its pieces (a 32-byte node per append, each piece
 * besides), which a finished generation would hold through its retention time; reading one
 * character makes V8 flatten it into a single sequential string (its `String::Flatten`), and every
 * holder of the string — the record, the completed event — shares that.
 */
function flattenTexts(record: GenerationRecord): void {
  if (record.kind !== 'chat') return;
  record.text.charCodeAt(0);
  record.reasoning?.charCodeAt(0);
}

/**
 * Iterates a provider's stream, racing every step against the run's abort; closes the provider's
 * generator (which aborts its upstream request) when the loop ends early. The close is not awaited:
 * a provider busy in a read only returns once that read settles.
 */
export async function* racedParts<Part>(parts: AsyncIterable<Part>, race: AbortRace): AsyncGenerator<Part> {
  const iterator = parts[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      const result = await race(iterator.next());
      if (result.done) {
        done = true;
        return;
      }
      yield result.value;
    }
  } finally {
    if (!done) iterator.return?.()?.catch(() => {});
  }
}
