/**
 * The event log: every event of every generation, in sequence order, kept for replay.
 * The interface is asynchronous so a Redis Stream can replace the in-memory implementation.
 */
import { CompactEvents } from './compact-events.js';
import { isTerminalEvent, type GenerationEvent } from './generation-events.js';

/** Append-only, per-generation event storage. */
export interface EventLog {
  /**
   * Appends one event; `event.sequence` must be one more than the last appended for its generation
   * (a generation the log holds nothing of — new, or deleted — may start at any sequence, as a Redis
   * Stream does after `DEL`).
   * @throws when the log refuses the event (out of order, twice) or cannot be reached.
   */
  append(event: GenerationEvent): Promise<void>;
  /**
   * Events of the generation with `sequence > after`, in order; `[]` when there are none or the
   * generation is unknown. Events may be missing at the front (expired, trimmed): callers compare
   * the first sequence with the one they expect.
   * @throws when the log cannot be reached.
   */
  read(generationId: string, after: number): Promise<GenerationEvent[]>;
  /** Forgets the generation's events. */
  delete(generationId: string): Promise<void>;
  /**
   * Resolves once the log can be reached: at once when it can, else when its connection is back
   * (Redis: the command client's next `ready`). Absent for a log that is always reachable.
   */
  whenAvailable?(): Promise<void>;
}

/**
 * In-memory event log. Each generation's events are contiguous, so the event with sequence `s`
 * sits at index `s - first` and a replay is one `slice`. Once a generation's terminal event is in,
 * its events are kept compacted ({@link CompactEvents}: a finished generation is held for the
 * retention time, and its deltas would otherwise cost an object each); replays read the same events.
 */
export class MemoryEventLog implements EventLog {
  private readonly events = new Map<string, GenerationEvent[] | CompactEvents>();

  async append(event: GenerationEvent): Promise<void> {
    const held = this.events.get(event.generationId);
    if (!held) {
      if (!Number.isInteger(event.sequence) || event.sequence < 1) throw new Error(`event ${event.sequence} of ${event.generationId} has no valid sequence`);
      this.events.set(event.generationId, isTerminalEvent(event) ? CompactEvents.of([event]) : [event]);
      return;
    }
    const list = held instanceof CompactEvents ? held.after(0) : held;
    const expected = list.at(-1)!.sequence + 1;
    if (event.sequence !== expected) {
      throw new Error(`event ${event.sequence} of ${event.generationId} is out of order (the next is ${expected})`);
    }
    list.push(event);
    if (isTerminalEvent(event)) this.events.set(event.generationId, CompactEvents.of(list));
    else if (list !== held) this.events.set(event.generationId, list);
  }

  async read(generationId: string, after: number): Promise<GenerationEvent[]> {
    const held = this.events.get(generationId);
    if (!held) return [];
    if (held instanceof CompactEvents) return held.after(after);
    return held.slice(Math.max(0, after - held[0]!.sequence + 1));
  }

  async delete(generationId: string): Promise<void> {
    this.events.delete(generationId);
  }

  /**
   * Drops the generation's events with `sequence <= through`, keeping the later ones (as `XTRIM …
   * MINID` does to a Redis Stream); for tests of subscribers that ask for events no longer held.
   */
  evict(generationId: string, through: number): void {
    const held = this.events.get(generationId);
    if (!held) return;
    const kept = (held instanceof CompactEvents ? held.after(0) : held).filter((event) => event.sequence > through);
    if (kept.length > 0) this.events.set(generationId, kept);
    else this.events.delete(generationId);
  }

  /** Number of generations held (for tests of retention). */
  get size(): number {
    return this.events.size;
  }
}
