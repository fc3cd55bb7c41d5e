/**
 * Scale-out over one Redis: the {@link ScaleOut} the generation service gets when `REDIS_URL` is
 * set. Records are shared (`redis-generation-records.ts`), generations this instance runs itself
 * hold an owner lease (`generation-leases.ts`), a generation whose instance is gone is ended by
 * whoever notices first (`INSTANCE_LOST`, or `WORKER_LOST` for a queued one), and cancellations
 * travel over the pub/sub to the instance running the generation.
 */
import { GatewayError } from '../generations/gateway-error.js';
import type { EventLog } from '../generations/event-log.js';
import { GenerationCancellation } from '../generations/generation-errors.js';
import { followEvents, type FollowControl, type FollowSource } from '../generations/event-follower.js';
import { isTerminalEvent, type GenerationErrorShape, type GenerationEvent, type UnnumberedGenerationEvent } from '../generations/generation-events.js';
import type { GenerationJobData } from '../generations/generation-job.js';
import type { GenerationFilter, GenerationPage } from '../generations/generation-listing.js';
import type { GenerationPubSub } from '../generations/generation-pub-sub.js';
import { applyTerminalEvent, isFinalStatus, type GenerationRecord } from '../generations/generation-records.js';
import type { GenerationRun } from '../generations/generation-run.js';
import type { LoadedJob, ScaleOut, SharedLease } from '../generations/scale-out.js';
import type { Logger } from '../operations/logger.js';
import type { GenerationLeases } from './generation-leases.js';
import type { SharedGenerationRecord, SharedGenerationRecords } from './redis-generation-records.js';

/** What the Redis scale-out is made of. */
export interface RedisScaleOutOptions {
  sharedRecords: SharedGenerationRecords;
  /** The shared event log (Redis Streams). */
  eventLog: EventLog;
  pubSub: GenerationPubSub;
  /** Owner leases of the generations this instance runs itself; absent = none (no lost-instance recovery). */
  leases?: GenerationLeases;
  /** While a subscriber waits for live events, re-read the log this often, ms. */
  recheckIntervalMs?: number;
  /** Role `api`: the queue generations go to. */
  queue?: { enqueue(data: GenerationJobData): Promise<void> };
  logger: Logger;
}

/** The text of a chat as its events hold it. */
function textOf(events: GenerationEvent[]): string {
  return events.map((event) => (event.type === 'chat-token-delta' ? event.text : '')).join('');
}

/** {@link ScaleOut} over Redis. */
export class RedisScaleOut implements ScaleOut {
  readonly recheckIntervalMs?: number;
  readonly enqueue?: ScaleOut['enqueue'];
  /** Stops listening for cancellations, per generation this instance runs. */
  private readonly cancelListeners = new Map<string, () => void>();
  /** Role `api`: followers of queued generations, which keep the returned records' status current. */
  private readonly queuedWatches = new Set<FollowControl>();

  constructor(private readonly options: RedisScaleOutOptions) {
    if (options.recheckIntervalMs !== undefined) this.recheckIntervalMs = options.recheckIntervalMs;
    if (options.queue) this.enqueue = (run, started, data, source) => this.enqueueJob(options.queue!, run, started, data, source);
  }

  async share(record: GenerationRecord, lease?: SharedLease): Promise<void> {
    try {
      await this.options.sharedRecords.save(record, lease);
    } catch (error) {
      this.options.logger.error({ err: error, generationId: record.id }, 'cannot share the generation');
    }
  }

  adopt(run: GenerationRun, { lease }: { lease: boolean }): { lease?: SharedLease } {
    const { leases, pubSub } = this.options;
    // The lease's key goes out with the shared record's first save (`share` with the lease returned
    // here), on the connection that then appends event 1: whoever sees the generation sees its lease.
    if (lease && leases) leases.hold(run.record.id);
    const requests = pubSub.subscribe('generation:cancel', run.record.id)[Symbol.asyncIterator]();
    void (async () => {
      for (let request = await requests.next(); !request.done; request = await requests.next()) {
        run.abort.abort(new GenerationCancellation(request.value));
      }
    })();
    this.cancelListeners.set(run.record.id, () => void requests.return?.());
    return lease && leases ? { lease: { owner: leases.instanceId, durationMs: leases.leaseMs } } : {};
  }

  disown(generationId: string, { keepLease }: { keepLease: boolean }): void {
    this.cancelListeners.get(generationId)?.();
    this.cancelListeners.delete(generationId);
    // The save of the final record (before the run ended) deleted the lease's key.
    if (!keepLease) void this.options.leases?.release(generationId, { write: false });
  }

  releaseLease(generationId: string): void {
    void this.options.leases?.release(generationId);
  }

  async find(generationId: string, options: { text?: boolean } = {}): Promise<GenerationRecord | undefined> {
    try {
      // A running generation whose instance is gone (its owner lease expired) is reported, and ended, as such.
      const found = await this.loadChecked(generationId);
      if (!found) return undefined;
      const { lease: _lease, ...shared } = found;
      if (shared.kind === 'chat' && !isFinalStatus(shared.status) && options.text !== false) {
        const events = await this.options.eventLog.read(generationId, 0);
        shared.text = textOf(events);
        shared.lastSequence = events.at(-1)?.sequence ?? shared.lastSequence;
      }
      return shared;
    } catch (error) {
      throw new GatewayError('EVENT_LOG_UNAVAILABLE', `Generation "${generationId}" cannot be looked up: the shared state is unreachable (${(error as Error).message}).`);
    }
  }

  async list(filter: GenerationFilter): Promise<GenerationPage> {
    try {
      const page = await this.options.sharedRecords.list(filter);
      return { ...page, records: page.records.map(({ lease: _lease, ...record }: SharedGenerationRecord) => record as GenerationRecord) };
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new GatewayError('EVENT_LOG_UNAVAILABLE', `Generations cannot be listed: the shared state is unreachable (${(error as Error).message}).`);
    }
  }

  async sharedEnd(record: GenerationRecord): Promise<number | undefined> {
    let shared: GenerationRecord | undefined;
    try {
      // A generation whose instance is gone (its owner lease expired) is ended here: nobody else would.
      shared = await this.loadChecked(record.id);
    } catch (error) {
      throw new GatewayError('EVENT_LOG_UNAVAILABLE', `Generation "${record.id}" cannot be looked up: the shared state is unreachable (${(error as Error).message}).`);
    }
    return shared && isFinalStatus(shared.status) ? shared.lastSequence : undefined;
  }

  requestCancel(generationId: string, reason: string): void {
    this.options.pubSub.publish('generation:cancel', generationId, reason);
  }

  async loadJob(data: GenerationJobData): Promise<LoadedJob | undefined> {
    // The record and the stream in one round trip (the two commands pipelined).
    const [shared, events] = await Promise.all([this.options.sharedRecords.load(data.generationId), this.options.eventLog.read(data.generationId, 0)]);
    if (!shared || isFinalStatus(shared.status)) return undefined;
    if (events.length === 0 || events.some((event) => isTerminalEvent(event))) return undefined;
    const { lease: _lease, ...rest } = shared;
    const record = { ...rest, status: 'running', lastSequence: events.at(-1)!.sequence } as GenerationRecord;
    if (record.kind === 'chat') record.text = textOf(events);
    return { record };
  }

  async markLost(generationId: string, reason: string): Promise<void> {
    const record = await this.options.sharedRecords.load(generationId);
    if (!record || isFinalStatus(record.status)) return;
    await this.endLost(record, {
      code: 'WORKER_LOST',
      message: `The worker running this generation was lost (${reason}); it is not restarted, so no output is repeated.`,
      provider: record.provider,
    });
  }

  close(): void {
    for (const control of this.queuedWatches) {
      control.closed = true;
      control.wake?.();
    }
    // Leases still held (ends the log could not take) expire; other instances then end those generations.
    this.options.leases?.close();
  }

  /** {@link ScaleOut.enqueue} with `queue`. */
  private async enqueueJob(
    queue: { enqueue(data: GenerationJobData): Promise<void> },
    run: GenerationRun,
    started: UnnumberedGenerationEvent,
    data: GenerationJobData,
    source: FollowSource,
  ): Promise<void> {
    const { record } = run;
    // Event 1 and the shared record go out together (one round trip, as `launch` does for a
    // generation run here); the job only once both are stored, for the worker loads them.
    const emitted = run.emit(started);
    const shared = this.share(record);
    await emitted;
    await shared;
    try {
      await queue.enqueue(data);
    } catch (error) {
      this.options.logger.error({ err: error, generationId: record.id }, 'cannot queue the generation');
      record.status = 'failed';
      record.finishedAt = new Date();
      record.error = { code: 'SERVICE_UNAVAILABLE', message: 'The generation could not be queued for a worker.', provider: record.provider };
      await run.emit({ type: 'generation-failed', error: record.error });
      await this.share(record);
      return;
    }
    const control: FollowControl = { closed: false };
    this.queuedWatches.add(control);
    void (async () => {
      try {
        for await (const event of followEvents(source, record, record.lastSequence, control)) {
          record.lastSequence = Math.max(record.lastSequence, event.sequence);
          if (record.kind === 'chat' && event.type === 'chat-token-delta') record.text += event.text;
          if (isTerminalEvent(event)) applyTerminalEvent(record, event);
        }
      } catch {
        // The shared record and stream stay the truth; this copy only serves the caller's limits.
      } finally {
        this.queuedWatches.delete(control);
      }
    })();
  }

  /**
   * Ends a running generation of another instance that can no longer end it (`shared`: its record as
   * loaded, not final): appends `generation-failed` with `error` after the last event in the shared
   * stream, publishes it, and saves the record FAILED (with the text that streamed). When several
   * instances try at once the stream takes only the first append (its ids must increase), so one
   * terminal event is written. Returns the FAILED record when this call wrote the end, else undefined
   * (the generation already ended, another instance ended it first, or its events are gone).
   * @throws when Redis is unreachable.
   */
  private async endLost(shared: GenerationRecord, error: GenerationErrorShape): Promise<GenerationRecord | undefined> {
    const { eventLog, pubSub } = this.options;
    const events = await eventLog.read(shared.id, 0);
    if (events.length === 0 || events.some((event) => isTerminalEvent(event))) return undefined;
    const event = { type: 'generation-failed', error, generationId: shared.id, sequence: events.at(-1)!.sequence + 1 } as GenerationEvent;
    try {
      await eventLog.append(event);
    } catch {
      return undefined; // another instance appended first
    }
    pubSub.publish('generation:event', shared.id, event);
    const { lease: _lease, ...record } = shared as SharedGenerationRecord;
    const ended = { ...record, status: 'failed', finishedAt: new Date(), error, lastSequence: event.sequence } as GenerationRecord;
    if (ended.kind === 'chat') ended.text = textOf(events);
    await this.share(ended);
    return ended;
  }

  /**
   * The shared record, ended first (see {@link endIfOwnerLost}) when it runs under an owner lease
   * that is gone. The record and its lease are read at once (one round trip, the two commands
   * pipelined), not one after the other.
   * @throws when Redis is unreachable.
   */
  private async loadChecked(generationId: string): Promise<SharedGenerationRecord | undefined> {
    const { sharedRecords, leases } = this.options;
    const [loaded, leaseHeld] = await Promise.all([sharedRecords.load(generationId), leases?.isHeld(generationId)]);
    return loaded && this.endIfOwnerLost(loaded, leaseHeld);
  }

  /**
   * For another instance's generation whose shared record is running under an owner lease: ends it
   * with `INSTANCE_LOST` (see {@link endLost}) when the lease is gone — its instance stopped renewing it.
   * Returns the record as it is then: FAILED when this call ended it, re-loaded when another
   * instance or its owner ended it meanwhile, else `shared` unchanged (the lease is held, or none applies).
   * @param leaseHeld whether the lease existed when (just after) the record was read (undefined without leases).
   * @throws when Redis is unreachable.
   */
  private async endIfOwnerLost(shared: SharedGenerationRecord, leaseHeld: boolean | undefined): Promise<SharedGenerationRecord | undefined> {
    const { leases, sharedRecords, logger } = this.options;
    const lease = shared.lease;
    if (!leases || !lease || isFinalStatus(shared.status) || leaseHeld) return shared;
    const ended = await this.endLost(shared, {
      code: 'INSTANCE_LOST',
      message: `The instance running this generation stopped responding (no lease renewal for ${lease.durationMs} ms); it is not restarted, so no output is repeated.`,
      provider: shared.provider,
    });
    if (ended) {
      logger.warn({ generationId: shared.id, instance: lease.owner }, 'generation ended: the instance running it was lost');
      return ended;
    }
    return sharedRecords.load(shared.id);
  }
}
