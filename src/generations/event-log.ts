/**
 * The event log: every event of every generation, in sequence order, kept for replay.
 * The interface is asynchronous so a Redis Stream can replace the in-memory implementation.
 */
import type { GenerationEvent } from './generation-events.js';

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
 * sits at index `s - first` and a replay is one `slice`.
 */
export class MemoryEventLog implements EventLog {
  private readonly events = new Map<string, GenerationEvent[]>();

  async append(event: GenerationEvent): Promise<void> {
    const list = this.events.get(event.generationId);
    if (!list) {
      if (!Number.isInteger(event.sequence) || event.sequence < 1) throw new Error(`event ${event.sequence} of ${event.generationId} has no valid sequence`);
      this.events.set(event.generationId, [event]);
      return;
    }
    const expected = list.at(-1)!.sequence + 1;
    if (event.sequence !== expected) {
      throw new Error(`event ${event.sequence} of ${event.generationId} is out of order (the next is ${expected})`);
    }
    list.push(event);
  }

  async read(generationId: string, after: number): Promise<GenerationEvent[]> {
    const list = this.events.get(generationId);
    if (!list) return [];
    return list.slice(Math.max(0, after - list[0]!.sequence + 1));
  }

  async delete(generationId: string): Promise<void> {
    this.events.delete(generationId);
  }

  /**
   * Drops the generation's events with `sequence <= through`, keeping the later ones (as `XTRIM …
   * MINID` does to a Redis Stream); for tests of subscribers that ask for events no longer held.
   */
  evict(generationId: string, through: number): void {
    const list = this.events.get(generationId);
    if (!list) return;
    const kept = list.filter((event) => event.sequence > through);
    if (kept.length > 0) this.events.set(generationId, kept);
    else this.events.delete(generationId);
  }

  /** Number of generations held (for tests of retention). */
  get size(): number {
    return this.events.size;
  }
}
