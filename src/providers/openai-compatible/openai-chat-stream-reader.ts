/**
 * Reads the server-sent events of a streamed chat completion (`docs/protocols.md` §2): one
 * `data: {chat.completion.chunk}` per event and a final `data: [DONE]`, parsed with
 * eventsource-parser, and maps them to the gateway's {@link ChatStreamPart}s. It does no I/O: the
 * caller feeds it the bytes of each network read and asks what they said.
 */
import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser';
import type { ProviderErrors } from '../http-errors.js';
import type { ChatStreamPart, FinishReason, ProviderError, Usage } from '../provider.js';
import { isPlainDeltaChunk, openAIChunkSchema, type OpenAIChunkChoice } from './openai-compatible-api.js';
import { mapOpenAIFinishReason } from './map-openai-finish-reason.js';
import { mapOpenAIUsage } from './map-openai-usage.js';

/** Largest SSE event the parser buffers before giving up, characters. */
const SSE_MAX_BUFFER_CHARS = 16 * 1024 * 1024;

/**
 * The state of one chat stream: the text parsed since the last text-delta part, the finish reason
 * and usage seen, whether `[DONE]` came, and the first failure. The parser's callback only records
 * what each event says, so that the caller can turn one network read into at most one text-delta
 * part (coalescing, see docs/performance.md).
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
  #pendingText = '';
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
   * Decodes and feeds `bytes` one line at a time until an event brought text, failed or ended
   * the stream (a line ends at `\n`, a byte that never occurs inside a UTF-8 sequence; events end
   * at a blank line, so each event is dispatched as soon as its end is fed), so the first text can
   * go out before the rest of a read is parsed.
   * @returns how many bytes were fed; feed the rest with {@link feed}.
   */
  feedUntilText(bytes: Uint8Array): number {
    let offset = 0;
    while (offset < bytes.length && !this.#pendingText && !this.#failure && !this.#doneReceived) {
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

  /** Whether text was parsed since the last {@link takeTextDelta}. */
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

  /** The `finish` part: the mapped reason (`stop` when none came) and the usage, when a chunk carried one. */
  finishPart(): ChatStreamPart {
    const finishReason = this.#finishReason ?? 'stop';
    return this.#usage ? { type: 'finish', finishReason, usage: this.#usage } : { type: 'finish', finishReason };
  }

  #readChoice(choice: OpenAIChunkChoice): void {
    const content = choice.delta?.content;
    if (content) this.#pendingText += content;
    if (choice.finish_reason) this.#finishReason = mapOpenAIFinishReason(choice.finish_reason);
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
      this.#readChoice(json.choices[0]);
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
