/**
 * Reads the server-sent events of a streamed chat completion (`docs/protocols.md` §2): one
 * `data: {chat.completion.chunk}` per event and a final `data: [DONE]`, parsed with
 * eventsource-parser, and maps them to the gateway's {@link ChatStreamPart}s: `delta.content` to
 * text, `delta.reasoning_content` / `delta.reasoning` to reasoning, `delta.tool_calls[]` pieces to
 * tool call pieces (https://platform.openai.com/docs/api-reference/chat-streaming). It does no
 * I/O: the caller feeds it the bytes of each network read and asks what they said.
 */
import { randomUUID } from 'node:crypto';
import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser';
import type { ProviderErrors } from '../http-errors.js';
import type { ChatStreamPart, FinishReason, ProviderError, Usage } from '../provider.js';
import {
  isPlainDeltaChunk,
  openAIChunkSchema,
  type OpenAIChunkChoice,
  type OpenAIPlainChunkChoice,
  type OpenAIToolCallPiece,
} from './openai-compatible-api.js';
import { mapOpenAIFinishReason } from './map-openai-finish-reason.js';
import { mapOpenAIUsage } from './map-openai-usage.js';

/** Largest SSE event the parser buffers before giving up, characters. */
const SSE_MAX_BUFFER_CHARS = 16 * 1024 * 1024;

/** A `tool-call-delta` part, as the reader builds it up (pieces of one call that arrive together are joined). */
type ToolCallDeltaPart = Extract<ChatStreamPart, { type: 'tool-call-delta' }>;

/** What the reader has passed on of one tool call: its id and name. */
interface AnnouncedToolCall {
  id: string;
  name?: string;
}

/**
 * The state of one chat stream: the parts parsed since the caller last took them, the finish
 * reason and usage seen, whether `[DONE]` came, and the first failure. The parser's callback only
 * records what each event says, so that the caller can turn one network read into few parts
 * (coalescing, see docs/performance.md): the text of a read becomes one text-delta part, its
 * reasoning one reasoning-delta part, the pieces of one tool call one tool-call-delta part, in the
 * order the model wrote them (text, then reasoning, then text again makes three parts).
 *
 * Tool calls: each piece of `delta.tool_calls[]` becomes a piece of call `index`. The first piece
 * of a call carries its `id` (a call whose first piece has none gets `call_` and 24 hex digits, as
 * clients need an id to answer a call) and its name; an id or name repeated by a later piece is
 * not passed on again. A piece without `index` (some servers leave it out) starts a new call when
 * it carries an id other than the last call's, else continues the last call. A turn with tool
 * calls whose upstream finished it with `stop` (or with no reason) finishes with `tool-calls`.
 *
 * Failures are recorded, not thrown: {@link failure} is a ProviderError of the provider —
 * `UPSTREAM_BAD_RESPONSE` for malformed JSON, a chunk of the wrong shape or an event larger than
 * 16 Mi characters, `UPSTREAM_ERROR` for an in-band `error` chunk. Events after `[DONE]` or after a
 * failure are ignored.
 */
export class OpenAIChatStreamReader {
  readonly #providerId: string;
  readonly #errors: ProviderErrors;
  readonly #parser: EventSourceParser;
  readonly #decoder = new TextDecoder();
  /** Text parsed after the last of {@link #pendingParts} (the common case: all a read carried). */
  #pendingText = '';
  /** Parts parsed before {@link #pendingText}: reasoning, tool call pieces, and the text before them. */
  #pendingParts: ChatStreamPart[] = [];
  /** The calls of this turn by index, as announced so far. */
  readonly #toolCalls: AnnouncedToolCall[] = [];
  #finishReason: FinishReason | undefined;
  #usage: Usage | undefined;
  #doneReceived = false;
  #failure: ProviderError | undefined;

  /**
   * @param providerId the provider id, as messages name the upstream.
   * @param errors the provider's errors (messages redacted).
   */
  constructor(providerId: string, errors: ProviderErrors) {
    this.#providerId = providerId;
    this.#errors = errors;
    this.#parser = createParser({
      onEvent: (event) => this.#handleEvent(event),
      onError: (error) => {
        // Unknown fields and bad `retry:` lines are ignorable; a runaway event is not.
        if (error.type === 'max-buffer-size-exceeded' && !this.#failure) {
          this.#failure = errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an event larger than ${SSE_MAX_BUFFER_CHARS} characters`);
        }
      },
      maxBufferSize: SSE_MAX_BUFFER_CHARS,
    });
  }

  /**
   * Decodes and feeds `bytes` one line at a time until an event brought content (text, reasoning
   * or a tool call), failed or ended the stream (a line ends at `\n`, a byte that never occurs
   * inside a UTF-8 sequence; events end at a blank line, so each event is dispatched as soon as its
   * end is fed), so the first content can go out before the rest of a read is parsed.
   * @returns how many bytes were fed; feed the rest with {@link feed}.
   */
  feedUntilContent(bytes: Uint8Array): number {
    let offset = 0;
    while (offset < bytes.length && !this.#pendingText && this.#pendingParts.length === 0 && !this.#failure && !this.#doneReceived) {
      const lineEnd = bytes.indexOf(0x0a, offset);
      const end = lineEnd === -1 ? bytes.length : lineEnd + 1;
      this.#parser.feed(this.#decoder.decode(bytes.subarray(offset, end), { stream: true }));
      offset = end;
    }
    return offset;
  }

  /** Decodes and feeds `bytes` from byte `from` on (0 by default) in one go. */
  feed(bytes: Uint8Array, from = 0): void {
    if (from < bytes.length) this.#parser.feed(this.#decoder.decode(from === 0 ? bytes : bytes.subarray(from), { stream: true }));
  }

  /** The body ended: feeds what the decoder still holds (unless the stream already failed or ended). */
  end(): void {
    if (!this.#failure && !this.#doneReceived) this.#parser.feed(this.#decoder.decode());
  }

  /**
   * Whether reasoning or tool call pieces were parsed since the last {@link takeParts}. The caller
   * takes these first, then the text ({@link takeTextDelta}), which came after them.
   */
  hasParts(): boolean {
    return this.#pendingParts.length > 0;
  }

  /** The reasoning-delta and tool-call-delta parts (and the text-delta parts between them) parsed since the last call, in order. */
  takeParts(): ChatStreamPart[] {
    const parts = this.#pendingParts;
    this.#pendingParts = [];
    return parts;
  }

  /** Whether text was parsed since the last {@link takeTextDelta} (after any of {@link takeParts}). */
  hasText(): boolean {
    return this.#pendingText !== '';
  }

  /** The text parsed since the last text-delta part, as the next one (empties it). */
  takeTextDelta(): ChatStreamPart {
    const text = this.#pendingText;
    this.#pendingText = '';
    return { type: 'text-delta', text };
  }

  /** The first failure of the stream, if any. */
  failure(): ProviderError | undefined {
    return this.#failure;
  }

  /** Whether `data: [DONE]` came. */
  doneReceived(): boolean {
    return this.#doneReceived;
  }

  /** Whether the answer is complete: `[DONE]` or a `finish_reason` came. */
  isComplete(): boolean {
    return this.#doneReceived || this.#finishReason !== undefined;
  }

  /**
   * The `finish` part: the mapped reason (`stop` when none came; `tool-calls` instead of `stop` when
   * the turn made tool calls) and the usage, when a chunk carried one.
   */
  finishPart(): ChatStreamPart {
    let finishReason = this.#finishReason ?? 'stop';
    if (finishReason === 'stop' && this.#toolCalls.length > 0) finishReason = 'tool-calls';
    return this.#usage ? { type: 'finish', finishReason, usage: this.#usage } : { type: 'finish', finishReason };
  }

  /** The choice of a plain chunk (the hot path): its text and finish reason. */
  #readPlainChoice(choice: OpenAIPlainChunkChoice): void {
    const content = choice.delta?.content;
    if (content) this.#pendingText += content;
    if (choice.finish_reason) this.#finishReason = mapOpenAIFinishReason(choice.finish_reason);
  }

  /** Any choice: its reasoning, text and tool call pieces (in that order), and its finish reason. */
  #readChoice(choice: OpenAIChunkChoice): void {
    const delta = choice.delta;
    if (delta) {
      // Servers that send both fields send the same text in each.
      const reasoning = delta.reasoning_content ?? delta.reasoning;
      if (reasoning) this.#addReasoning(reasoning);
      if (delta.content) this.#pendingText += delta.content;
      if (delta.tool_calls) for (const piece of delta.tool_calls) this.#addToolCallPiece(piece);
    }
    if (choice.finish_reason) this.#finishReason = mapOpenAIFinishReason(choice.finish_reason);
  }

  /** Moves the pending text into {@link #pendingParts}, ahead of a part of another kind. */
  #settleText(): void {
    if (this.#pendingText === '') return;
    this.#pendingParts.push({ type: 'text-delta', text: this.#pendingText });
    this.#pendingText = '';
  }

  #addReasoning(text: string): void {
    this.#settleText();
    const last = this.#pendingParts.at(-1);
    if (last?.type === 'reasoning-delta') last.text += text;
    else this.#pendingParts.push({ type: 'reasoning-delta', text });
  }

  /** The index of a piece that has none: a new call when it brings an id other than the last call's, else the last call. */
  #indexOfUnnumberedPiece(id: string | undefined): number {
    const last = this.#toolCalls.length - 1;
    if (last < 0) return 0;
    return id && id !== this.#toolCalls[last]!.id ? last + 1 : last;
  }

  #addToolCallPiece(piece: OpenAIToolCallPiece): void {
    const givenId = piece.id || undefined;
    const index = piece.index ?? this.#indexOfUnnumberedPiece(givenId);
    let announced = this.#toolCalls[index];
    let id: string | undefined;
    if (!announced) {
      id = givenId ?? `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
      announced = { id };
      this.#toolCalls[index] = announced;
    } else if (givenId && givenId !== announced.id) {
      id = announced.id = givenId;
    }
    const givenName = piece.function?.name || undefined;
    let name: string | undefined;
    if (givenName && givenName !== announced.name) name = announced.name = givenName;
    const argumentsDelta = piece.function?.arguments ?? '';
    if (id === undefined && name === undefined && argumentsDelta === '') return;

    this.#settleText();
    const last = this.#pendingParts.at(-1);
    if (last?.type === 'tool-call-delta' && last.index === index && id === undefined && name === undefined) {
      last.argumentsDelta += argumentsDelta;
      return;
    }
    const part: ToolCallDeltaPart = { type: 'tool-call-delta', index, argumentsDelta };
    if (id !== undefined) part.id = id;
    if (name !== undefined) part.name = name;
    this.#pendingParts.push(part);
  }

  #handleEvent(event: EventSourceMessage): void {
    if (this.#doneReceived || this.#failure) return;
    const data = event.data;
    if (data === '[DONE]') {
      this.#doneReceived = true;
      return;
    }
    if (data.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      const excerpt = data.length > 200 ? `${data.slice(0, 200)}…` : data;
      this.#failure = this.#errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${this.#providerId} sent malformed JSON in the stream: ${excerpt}`);
      return;
    }
    if (isPlainDeltaChunk(json)) {
      this.#readPlainChoice(json.choices[0]);
      return;
    }
    const parsed = openAIChunkSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue ? `${issue.path.join('.') || 'chunk'}: ${issue.message}` : 'unexpected shape';
      this.#failure = this.#errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${this.#providerId} sent a chunk of the wrong shape (${where})`);
      return;
    }
    const chunk = parsed.data;
    if (chunk.error) {
      const message = typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'unknown error');
      this.#failure = this.#errors.error('UPSTREAM_ERROR', `upstream ${this.#providerId} reported an error: ${message}`);
      return;
    }
    const choice = chunk.choices?.[0];
    if (choice) this.#readChoice(choice);
    if (chunk.usage) this.#usage = mapOpenAIUsage(chunk.usage) ?? this.#usage;
  }
}
