/**
 * The subscribers of this instance: each follows one generation's events (see event-follower.ts)
 * through an iterator whose `return()` ends it at once, even while it waits. They are counted from
 * their first read until they end, so a shutdown can wait for them to get their terminal events
 * and observers see subscriptions open and close; the ones following a generation can be woken
 * (when its end could not be stored, for one).
 */
import type { EventLog } from './event-log.js';
import { followEvents, type FollowControl, type FollowSource, type FollowStart } from './event-follower.js';
import { GatewayError } from './gateway-error.js';
import type { GenerationEvent } from './generation-events.js';
import type { GenerationPubSub } from './generation-pub-sub.js';
import type { GenerationRecord } from './generation-records.js';

/**
 * The record a subscription may follow: `record` when it exists, is of `kind` (when given), and
 * `after` is a whole number, 0 or more.
 * @throws GatewayError `GENERATION_NOT_FOUND`, or `BAD_USER_INPUT` for the wrong kind or a bad `after`.
 */
export function subscribable(record: GenerationRecord | undefined, generationId: string, after: number, kind?: GenerationRecord['kind']): GenerationRecord {
  if (!record) throw new GatewayError('GENERATION_NOT_FOUND', `Unknown generation "${generationId}".`);
  if (kind && record.kind !== kind) {
    throw new GatewayError(
      'BAD_USER_INPUT',
      `Generation "${generationId}" is an ${record.kind === 'chat' ? 'chat' : 'image'} generation; subscribe with ${record.kind === 'chat' ? 'chatCompletionEvents' : 'imageGenerationEvents'}.`,
    );
  }
  if (!Number.isInteger(after) || after < 0) throw new GatewayError('BAD_USER_INPUT', 'after must be a whole number, 0 or more');
  return record;
}

/** What following needs of the service. */
export interface GenerationSubscriptionsOptions {
  eventLog: EventLog;
  pubSub: GenerationPubSub;
  /** While a subscriber waits for live events, re-read the log this often, ms (scaled out: lost publishes); absent = never. */
  recheckIntervalMs?: number;
  /** For another instance's generation: its last sequence once its shared record is final, else undefined. */
  sharedEnd(record: GenerationRecord): Promise<number | undefined>;
  /** The generation's last sequence once this instance's pending appends have settled. */
  settledLastSequence(record: GenerationRecord): Promise<number>;
  /** The error of a terminal event of this instance that the log could not store yet, if any. */
  unstoredEnd(generationId: string): GatewayError | undefined;
  /** Whether the generation runs on this instance. */
  runsHere(generationId: string): boolean;
  /** Told when a subscriber starts (`true`) and stops (`false`) following. */
  onFollowing(following: boolean): void;
}

/** This instance's subscribers. */
export class GenerationSubscriptions {
  /** What `followEvents` needs (see event-follower.ts). */
  readonly source: FollowSource;
  /** Subscribers following each generation here, so they can be woken. */
  private readonly controls = new Map<string, Set<FollowControl>>();
  /** Subscribers following now, each with a way to hear when it has ended. */
  private readonly followers = new Set<Promise<void>>();

  constructor(private readonly options: GenerationSubscriptionsOptions) {
    this.source = {
      eventLog: options.eventLog,
      pubSub: options.pubSub,
      ...(options.recheckIntervalMs !== undefined && { recheckIntervalMs: options.recheckIntervalMs }),
      register: (generationId, control) => {
        let controls = this.controls.get(generationId);
        if (!controls) this.controls.set(generationId, (controls = new Set()));
        controls.add(control);
        return () => {
          controls.delete(control);
          if (controls.size === 0) this.controls.delete(generationId);
        };
      },
      sharedEnd: (record) => options.sharedEnd(record),
      settledLastSequence: (record) => options.settledLastSequence(record),
      unstoredEnd: (generationId) => options.unstoredEnd(generationId),
      runsHere: (generationId) => options.runsHere(generationId),
    };
  }

  /**
   * The generation's events with `sequence > after` (see `followEvents`), as an iterator whose
   * `return()` wakes a waiting reader and runs `onClose` first. A plain object rather than another
   * generator around `followEvents`: an idle subscription holds less, and each event takes one hop fewer.
   * A stream that ends with an error (`EVENTS_EXPIRED`, `EVENT_LOG_UNAVAILABLE`) is closed as if its reader had left.
   * @param next the event after `after` when the caller has it as stored (see `followEvents`).
   */
  follow(
    record: GenerationRecord,
    after: number,
    onClose?: () => Promise<void>,
    next?: GenerationEvent,
    start?: FollowStart,
  ): AsyncIterableIterator<GenerationEvent> {
    const control: FollowControl = { closed: false };
    const events = followEvents(this.source, record, after, control, next, start);
    let following: { ended: Promise<void>; end: () => void } | undefined;
    let finished = false;
    const begin = (): void => {
      if (following || finished) return;
      let end!: () => void;
      const ended = new Promise<void>((resolve) => (end = resolve));
      following = { ended, end };
      this.followers.add(ended);
      this.options.onFollowing(true);
    };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      if (!following) return;
      this.followers.delete(following.ended);
      this.options.onFollowing(false);
      following.end();
    };
    const close = async (): Promise<IteratorResult<GenerationEvent>> => {
      if (!control.closed) {
        control.closed = true;
        control.wake?.();
        await onClose?.();
      }
      try {
        return await events.return(undefined);
      } finally {
        finish();
      }
    };
    return {
      next: async () => {
        begin();
        try {
          const result = await events.next();
          if (result.done) finish();
          return result;
        } catch (error) {
          finish();
          await close().catch(() => {});
          throw error;
        }
      },
      return: close,
      throw: async (error?: unknown) => {
        await close();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /**
   * `follow` for another instance's generation, begun before its record is looked up, so that the
   * lookup and the log's first read share one round trip: the live subscription is sent first (so
   * nothing published after the read is missed), then the read, then `lookup` runs; when it throws,
   * both are dropped and its error is thrown.
   * @param lookup the generation's record, checked (see {@link subscribable}).
   */
  async followAhead(generationId: string, after: number, lookup: () => Promise<GenerationRecord>): Promise<AsyncIterableIterator<GenerationEvent>> {
    // A bad `after` is the lookup's to report: nothing to read ahead for it.
    if (!Number.isInteger(after) || after < 0) return this.follow(await lookup(), after);
    const live = this.source.pubSub.subscribe('generation:event', generationId)[Symbol.asyncIterator]();
    const firstLive = live.next();
    const firstRead = this.source.eventLog.read(generationId, after);
    firstRead.catch(() => {}); // a failed read is reported by the follower, or dropped with a failed lookup
    let record: GenerationRecord;
    try {
      record = await lookup();
    } catch (error) {
      void live.return?.();
      throw error;
    }
    return this.follow(record, after, undefined, undefined, { live, firstLive, firstRead });
  }

  /** Wakes the subscribers following the generation here. */
  wake(generationId: string): void {
    for (const control of this.controls.get(generationId) ?? []) control.wake?.();
  }

  /** Resolves once every subscriber has ended, or after `maxWaitMs`, whichever comes first. */
  async settle(maxWaitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.followers), new Promise<void>((resolve) => (timer = setTimeout(resolve, maxWaitMs).unref()))]);
    clearTimeout(timer);
  }
}
