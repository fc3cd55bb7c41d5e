/**
 * The event log: every event of every generation, in sequence order, kept for replay.
 * The interface is asynchronous so a Redis Stream can replace the in-memory implementation.
 */
import type { GenerationEvent } from './generation-events.js';

/** Append-only, per-generation event storage. */
export interface EventLog {
  /** Appends one event; `event.sequence` must be one more than the last appended for its generation. */
  append(event: GenerationEvent): Promise<void>;
  /** Events of the generation with `sequence > after`, in order; `[]` when there are none or the generation is unknown. */
  read(generationId: string, after: number): Promise<GenerationEvent[]>;
  /** Forgets the generation's events. */
  delete(generationId: string): Promise<void>;
}

/**
 * In-memory event log. Sequences are contiguous from 1, so the event with sequence `s`
 * sits at index `s - 1` and a replay is one `slice`.
 */
export class MemoryEventLog implements EventLog {
  private readonly events = new Map<string, GenerationEvent[]>();

  async append(event: GenerationEvent): Promise<void> {
    let list = this.events.get(event.generationId);
    if (!list) {
      list = [];
      this.events.set(event.generationId, list);
    }
    if (event.sequence !== list.length + 1) {
      throw new Error(`event ${event.sequence} of ${event.generationId} is out of order (log holds ${list.length})`);
    }
    list.push(event);
  }

  async read(generationId: string, after: number): Promise<GenerationEvent[]> {
    return this.events.get(generationId)?.slice(Math.max(0, after)) ?? [];
  }

  async delete(generationId: string): Promise<void> {
    this.events.delete(generationId);
  }

  /** Number of generations held (for tests of retention). */
  get size(): number {
    return this.events.size;
  }
}
