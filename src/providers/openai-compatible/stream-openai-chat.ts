/**
 * A streamed chat completion: `POST {baseURL}/chat/completions` with `stream: true`
 * (`docs/protocols.md` §2), its server-sent events read as they arrive and yielded as
 * {@link ChatStreamPart}s.
 */
import type { Readable } from 'node:stream';
import type { ChatRequest, ChatStreamPart, StreamOptions } from '../provider.js';
import { buildOpenAIChatBody } from './build-openai-chat-body.js';
import type { OpenAICompatibleEndpoints } from './openai-compatible-endpoints.js';
import { startOpenAICompatibleExchange, type OpenAICompatibleExchangeSettings } from './openai-compatible-exchange.js';
import { OpenAIChatStreamReader } from './openai-chat-stream-reader.js';

/** What {@link streamOpenAIChat} needs of its upstream. */
export interface OpenAIChatSettings {
  exchange: OpenAICompatibleExchangeSettings;
  endpoints: OpenAICompatibleEndpoints;
  /** Time allowed for the response headers, ms. */
  connectTimeoutMs: number;
}

/**
 * Streams one chat completion as `text-delta` parts — one per network read, holding all text that
 * read carried, except that the first content goes out as soon as its event is parsed (the rest of
 * that read follows) — with `reasoning-delta` and `tool-call-delta` parts where the upstream sent
 * reasoning and tool calls (joined within a read the same way, in the order they came; see
 * {@link OpenAIChatStreamReader}), then exactly one `finish` part with the reason and usage.
 * The request body is {@link buildOpenAIChatBody}'s; it carries `request.apiKey` when given, else
 * the upstream's key.
 *
 * @throws ProviderError as the exchange maps statuses, timeouts and unreachable upstreams
 *   ({@link startOpenAICompatibleExchange}), the reader's failures ({@link OpenAIChatStreamReader}),
 *   and `UPSTREAM_CONNECTION_LOST` when the body ended before `[DONE]` and before any
 *   `finish_reason`. When the caller's abort (`options.abort`, else `options.signal`) fires, the
 *   request is aborted (its connection closes) and the iterator throws its `reason`.
 */
export async function* streamOpenAIChat(
  settings: OpenAIChatSettings,
  request: ChatRequest,
  options: StreamOptions,
): AsyncGenerator<ChatStreamPart> {
  const exchange = startOpenAICompatibleExchange(settings.exchange, options.abort ?? options.signal);
  let body: Readable | undefined;

  try {
    // The request is dispatched now: on a new connection undici writes it once connected, on a
    // reused keep-alive one in this turn's check phase (its idle-socket validation, see the
    // generation service's launch); the reader below is set up meanwhile.
    const reply = exchange.stream(
      settings.endpoints.chatURL,
      {
        method: 'POST',
        headers: { ...settings.endpoints.jsonPostHeadersFor('text/event-stream', request.apiKey), ...options.traceHeaders },
        body: buildOpenAIChatBody(request),
      },
      { timeoutMs: settings.connectTimeoutMs, expected: 'response headers' },
    );

    const reader = new OpenAIChatStreamReader(settings.exchange.providerId, settings.exchange.errors);
    /** Whether a content part (text, reasoning, a tool call) was yielded yet. */
    let contentYielded = false;

    body = await reply;

    const chunks: AsyncIterator<Uint8Array> = body[Symbol.asyncIterator]();
    for (;;) {
      exchange.rethrowIfCallerAborted();
      const result = await exchange.read(() => chunks.next(), 'mid-stream');

      if (result.done) {
        exchange.finish();
        reader.end();
        if (reader.hasParts()) for (const part of reader.takeParts()) yield part;
        if (reader.hasText()) yield reader.takeTextDelta();
        const failure = reader.failure();
        if (failure) throw failure;
        if (reader.isComplete()) {
          yield reader.finishPart();
          return;
        }
        throw settings.exchange.errors.error('UPSTREAM_CONNECTION_LOST', `upstream ${settings.exchange.providerId} stream ended before [DONE]`);
      }

      const bytes = result.value;
      let fed = 0;
      if (!contentYielded) {
        // Until the first content is out, the read is decoded and parsed a line at a time and the
        // first content goes out before the rest of the read is decoded and parsed: a fast
        // upstream's first read can hold the whole answer, and handling all of it first would hold
        // the first token back.
        fed = reader.feedUntilContent(bytes);
        if (reader.hasParts() || reader.hasText()) {
          contentYielded = true;
          if (reader.hasParts()) for (const part of reader.takeParts()) yield part;
          if (reader.hasText()) yield reader.takeTextDelta();
        }
      }
      reader.feed(bytes, fed);
      // Reasoning and tool call pieces came before the text that follows them.
      if (reader.hasParts()) for (const part of reader.takeParts()) yield part;
      if (reader.hasText()) yield reader.takeTextDelta();
      const failure = reader.failure();
      if (failure) throw failure;
      if (reader.doneReceived()) {
        yield reader.finishPart();
        // Read the (usually already buffered) end of the body, with the idle timeout, so the
        // connection can be reused; the content is complete, so a broken tail does not matter.
        try {
          for (;;) {
            const { done } = await exchange.read(() => chunks.next(), 'after [DONE]');
            if (done) break;
          }
        } catch {
          // ignored, see above
        }
        exchange.finish();
        return;
      }
    }
  } finally {
    // Early exit (caller abort, consumer stopped, error): close the upstream connection.
    const finished = exchange.isFinished();
    exchange.close('stream closed by the gateway');
    if (!finished) body?.destroy();
  }
}
