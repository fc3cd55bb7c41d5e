/**
 * A finished generation's events in a compact form, for the in-memory event log to keep through
 * the retention time: a streamed reply is mostly deltas, one small object each (an object, its
 * text piece, its slot in the list: about 100 bytes a token), while replay needs only their text
 * and order. Here the deltas' texts are one string and each delta one 2-byte code unit of a layout
 * string (its kind and length), and the other events (started, completed, failed attempts,
 * tool-call deltas) stay as they were. A replay rebuilds the delta objects it returns, equal to the ones appended: same
 * type, text, generation id and sequence, in the same order.
 *
 * The completed event's `text` is the concatenation of the token deltas; when it is, the compact
 * form keeps that one string for both (the record, the completed event and the deltas then share it).
 */
import type { GenerationEvent } from './generation-events.js';

/**
 * Each event is one UTF-16 code unit of the layout string: 0 for another event (kept as an
 * object), else the delta's kind in the top two bits and its text's length in the other 14.
 * A delta whose text is longer than {@link MAX_PIECE} is kept as an object instead.
 */
const TOKEN_DELTA = 1 << 14;
const REASONING_DELTA = 2 << 14;
const MAX_PIECE = (1 << 14) - 1;

/** Code units per `String.fromCharCode` call (well under the engine's argument limit). */
const CODES_PER_CALL = 8_192;

/** The events of one generation, compacted; see the module comment. */
export class CompactEvents {
  private constructor(
    private readonly generationId: string,
    /** Sequence of the first event held. */
    readonly firstSequence: number,
    /** One code unit per event, see {@link TOKEN_DELTA}. */
    private readonly layout: string,
    /** The deltas' texts, joined in order. */
    private readonly texts: string,
    /** The other events, in order. */
    private readonly others: GenerationEvent[],
  ) {}

  /**
   * Compacts `events` (one generation's, contiguous, at least one). When the token deltas' texts
   * join to the completed event's `text`, that string is kept for both.
   */
  static of(events: readonly GenerationEvent[]): CompactEvents {
    const codes: number[] = [];
    const pieces: string[] = [];
    const others: GenerationEvent[] = [];
    let onlyTokens = true;
    for (const event of events) {
      if ((event.type === 'chat-token-delta' || event.type === 'chat-reasoning-delta') && event.text.length <= MAX_PIECE) {
        codes.push((event.type === 'chat-token-delta' ? TOKEN_DELTA : REASONING_DELTA) | event.text.length);
        pieces.push(event.text);
        if (event.type === 'chat-reasoning-delta') onlyTokens = false;
      } else {
        codes.push(0);
        others.push(event);
        if (event.type === 'chat-token-delta' || event.type === 'chat-reasoning-delta') onlyTokens = false;
      }
    }
    let layout = '';
    for (let start = 0; start < codes.length; start += CODES_PER_CALL) layout += String.fromCharCode(...codes.slice(start, start + CODES_PER_CALL));
    const joined = pieces.join('');
    // The completed event and the record share the text: keep that one string for the deltas too.
    const completed = others.find((event) => event.type === 'chat-completion-completed');
    const texts = onlyTokens && completed?.type === 'chat-completion-completed' && completed.text === joined ? completed.text : joined;
    return new CompactEvents(events[0]!.generationId, events[0]!.sequence, layout, texts, others);
  }

  /** Sequence of the last event held. */
  get lastSequence(): number {
    return this.firstSequence + this.layout.length - 1;
  }

  /** The events with `sequence > after`, rebuilt, in order. */
  after(after: number): GenerationEvent[] {
    const start = Math.max(0, after - this.firstSequence + 1);
    const events: GenerationEvent[] = [];
    let other = 0;
    let offset = 0;
    for (let index = 0; index < this.layout.length; index++) {
      const code = this.layout.charCodeAt(index);
      if (code === 0) {
        if (index >= start) events.push(this.others[other]!);
        other++;
        continue;
      }
      const end = offset + (code & MAX_PIECE);
      if (index >= start) {
        events.push({
          type: (code & ~MAX_PIECE) === TOKEN_DELTA ? 'chat-token-delta' : 'chat-reasoning-delta',
          text: this.texts.slice(offset, end),
          generationId: this.generationId,
          sequence: this.firstSequence + index,
        } as GenerationEvent);
      }
      offset = end;
    }
    return events;
  }
}
