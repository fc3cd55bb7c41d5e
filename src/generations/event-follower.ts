/**
 * Following one generation's events for a subscriber: replay from the event log, then live events
 * from the pub/sub, with no gap and no repeat — or a clear error (`EVENTS_EXPIRED`,
 * `EVENT_LOG_UNAVAILABLE`) where the log cannot give what the subscriber needs. The generation
 * service provides the log, the pub/sub and what only it knows (`FollowSource`).
 */
import type { EventLog } from './event-log.js';
import { GatewayError } from './gateway-error.js';
import { isTerminalEvent, type GenerationEvent } from './generation-events.js';
import type { GenerationPubSub } from './generation-pub-sub.js';
import { isFinalStatus, type GenerationRecord } from './generation-records.js';

/** Live events a subscriber may hold before it falls back to reading the log. */
const LIVE_BUFFER_LIMIT = 256;

/** How the service closes a follower and wakes it when it waits. */
export interface FollowControl {
  closed: boolean;
  wake?: () => void;
}

/** What a follower needs from the generation service. */
export interface FollowSource {
  eventLog: EventLog;
  pubSub: GenerationPubSub;
  /** How often a waiting follower looks at the log anyway (scaled out, a publish can be lost), ms; unset: never. */
  recheckIntervalMs?: number;
  /** Registers a follower of the generation (the service wakes it, e.g. when the log fails); returns the unregistering function. */
  register(generationId: string, control: FollowControl): () => void;
  /** For another instance's generation: its last sequence once its shared record is final, else undefined. */
  sharedEnd(record: GenerationRecord): Promise<number | undefined>;
  /** The generation's last sequence once this instance's pending appends have settled. */
  settledLastSequence(record: GenerationRecord): Promise<number>;
  /** The error of a terminal event of this instance that the log could not store yet, if any. */
  unstoredEnd(generationId: string): GatewayError | undefined;
  /** Whether the generation runs on this instance (its events are then heard in-process, see `GenerationPubSub.subscribe`). */
  runsHere(generationId: string): boolean;
}

/**
 * A follower started before its generation's record was read (see
 * `GenerationSubscriptions.followAhead`): the live subscription, already listening, and the log's
 * first read, sent after it.
 */
export interface FollowStart {
  live: AsyncIterator<GenerationEvent>;
  /** The live subscription's first `next()` (the call that made it listen). */
  firstLive: Promise<IteratorResult<GenerationEvent>>;
  /** The log's events after `after`, as read right after the subscription was sent. */
  firstRead: Promise<GenerationEvent[]>;
}

/**
 * The events of a generation with `sequence > after`, for one subscriber (see
 * `GenerationService.subscribe`): first those in the log, then live ones, ending after the terminal
 * event. Live events are buffered from before the log is read, and any gap in sequence is filled
 * from the log. A hole is never skipped: when the log no longer holds
 * events the subscriber needs — the first event it has after `last` is further on, or it lacks an
 * event that was heard live or that a final record counts — the stream ends with GatewayError
 * `EVENTS_EXPIRED` naming the missing sequences. A log that cannot be read ends it with
 * `EVENT_LOG_UNAVAILABLE`, as does the end of a generation of this instance that the log could not store.
 *
 * `next`: the event after `after` as stored, when the caller has it (a stream that started the
 * generation here has event 1). When `record` — then this instance's own, live record — has
 * numbered no event beyond it once the follower listens, every later event will be heard live, so
 * the log is not read at the start (scaled out, one `XRANGE` less per generation); otherwise it is.
 * `start`: the live subscription and the first read, begun before the record was looked up (they
 * replace the ones this function would begin).
 */
export async function* followEvents(
  source: FollowSource,
  record: GenerationRecord,
  after: number,
  control: FollowControl,
  next?: GenerationEvent,
  start?: FollowStart,
): AsyncGenerator<GenerationEvent, void, undefined> {
  const { pubSub } = source;
  if (isFinalStatus(record.status) && after >= record.lastSequence) {
    await start?.live.return?.();
    return;
  }
  const position: FollowPosition = { last: after, heard: 0 };

  // Listen before reading the log, so nothing published in between is missed.
  const live: GenerationEvent[] = [];
  let overflowed = false;
  let recheck: NodeJS.Timeout | undefined;
  let rechecking = false;
  /** The last sequence of another instance's generation seen final in the shared record on a recheck. */
  let sharedEnd: number | undefined;
  const local = !start && source.runsHere(record.id);
  const iterator = start?.live ?? pubSub.subscribe('generation:event', record.id, { local })[Symbol.asyncIterator]();
  const pump = (async () => {
    for (let result = await (start?.firstLive ?? iterator.next()); !result.done; result = await iterator.next()) {
      position.heard = Math.max(position.heard, result.value.sequence);
      if (live.length < LIVE_BUFFER_LIMIT) live.push(result.value);
      else overflowed = true; // the log still has it; the reader catches up from there
      control.wake?.();
    }
  })();
  // Scaled out, the live subscription and the log's first read leave on different connections, and
  // Redis may run the read first: events published in between reach neither. Once the subscription
  // is confirmed, the log is read once more (as after an overflow), which closes that gap.
  const listening = local ? undefined : pubSub.whenListening?.('generation:event', record.id);
  void listening?.then(() => {
    overflowed = true;
    control.wake?.();
  });
  const unregister = source.register(record.id, control);
  try {
    // Listening now (the pump's first read added the listener): nothing numbered after `next` yet means nothing missed.
    if (next && next.sequence === after + 1 && record.lastSequence === next.sequence) {
      yield next;
      position.last = next.sequence;
      if (isTerminalEvent(next)) return;
    } else if (yield* eventsFromLog(source.eventLog, record, position, Infinity, start?.firstRead)) return;
    while (!control.closed) {
      if (overflowed) {
        overflowed = false;
        live.length = 0;
        if (yield* eventsFromLog(source.eventLog, record, position)) return;
        // A generation of another instance may have ended while its terminal event was lost on the way
        // here (a publish dropped, then the stream trimmed): its shared record tells.
        if (rechecking && live.length === 0) sharedEnd ??= await source.sharedEnd(record);
        rechecking = false;
        continue;
      }
      const event = live.shift();
      if (!event) {
        if (isFinalStatus(record.status) || sharedEnd !== undefined) {
          // The terminal event is in the log once this instance's appends of it have settled (or, for a
          // record shared by another instance, since before the record was saved as final).
          const end = sharedEnd ?? (await source.settledLastSequence(record));
          if (position.last >= end || control.closed) return;
          if (live.length > 0 || overflowed) continue;
          if (yield* eventsFromLog(source.eventLog, record, position)) return;
          const unstored = source.unstoredEnd(record.id);
          if (unstored) throw unstored;
          throw expired(record, position, end);
        }
        await new Promise<void>((resolve) => {
          control.wake = resolve;
          // Scaled out, a published event can be lost (a dropped Redis connection): look at the log now and then.
          if (source.recheckIntervalMs) recheck = setTimeout(() => (overflowed = rechecking = true, resolve()), source.recheckIntervalMs);
        });
        clearTimeout(recheck);
        control.wake = undefined;
        continue;
      }
      if (event.sequence <= position.last) continue;
      if (event.sequence > position.last + 1 && (yield* eventsFromLog(source.eventLog, record, position, event.sequence - 1))) return;
      yield event;
      position.last = event.sequence;
      if (isTerminalEvent(event)) return;
    }
  } finally {
    unregister();
    await iterator.return?.();
    await pump;
  }
}

/** Where a follower stands: the last sequence it yielded, and the highest it heard live (the log held that one then: an event is published once appended). */
interface FollowPosition {
  last: number;
  heard: number;
}

/**
 * Yields the log's events after `position.last` up to `until`, advancing `position.last` past each;
 * returns true once the terminal event is out.
 * A module-level generator rather than a closure inside `followEvents`: on Node 20 a closure of an
 * async generator function made per call keeps what it captures (here the follower's whole state)
 * through young-generation collections, where a module-level one keeps nothing (likely the hidden
 * class each such closure gets for its generator objects; `docs/performance.md`).
 * @throws GatewayError `EVENTS_EXPIRED` when the log lacks an event before `until` that the follower
 * needs (or one it heard live), `EVENT_LOG_UNAVAILABLE` when the log cannot be read.
 * @param read the read of the events after `position.last`, when it was already sent.
 */
async function* eventsFromLog(
  eventLog: EventLog,
  record: GenerationRecord,
  position: FollowPosition,
  until = Infinity,
  read?: Promise<GenerationEvent[]>,
): AsyncGenerator<GenerationEvent, boolean> {
  // Heard before the read was sent: the log must still hold it (nothing was heard yet when a read sent ahead left).
  const mustReach = read ? 0 : Math.min(position.heard, until);
  let events: GenerationEvent[];
  try {
    events = await (read ?? eventLog.read(record.id, position.last));
  } catch (error) {
    throw new GatewayError(
      'EVENT_LOG_UNAVAILABLE',
      `The event log cannot be read for generation "${record.id}" (${(error as Error).message}); subscribe again with after: ${position.last} when it is back.`,
    );
  }
  for (const event of events) {
    if (event.sequence > until) break;
    if (event.sequence > position.last + 1) throw expired(record, position, event.sequence - 1);
    yield event;
    position.last = event.sequence;
    if (isTerminalEvent(event)) return true;
  }
  if (position.last < mustReach) throw expired(record, position, mustReach);
  return false;
}

/** The error that ends a follower whose next events, up to sequence `through`, are no longer in the log. */
function expired(record: GenerationRecord, position: FollowPosition, through: number): GatewayError {
  return new GatewayError(
    'EVENTS_EXPIRED',
    `Events ${position.last + 1} to ${through} of generation "${record.id}" are no longer in the event log (expired, trimmed or deleted), so they cannot be replayed; the subscription ends here instead of skipping them.`,
  );
}
