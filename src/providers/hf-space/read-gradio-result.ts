/**
 * Step 2 of a Gradio call (`docs/protocols.md` §3): `GET {baseURL}/call/{endpoint}/{event_id}`
 * answers `text/event-stream` frames `event: <type>\ndata: <json>\n\n`, read with
 * eventsource-parser: `generating` (progress), `heartbeat`, `complete` (the output list) or
 * `error` (a message or null).
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { describeError, extractErrorMessage, shortenMessage } from '../http-errors.js';
import { ProviderError, type ImageStreamPart, type ProviderImage } from '../provider.js';
import { convertGradioOutput, type GradioOutputContext } from './convert-gradio-output.js';
import { parseJson } from './gradio-api.js';
import { gradioHeadersFor } from './gradio-endpoints.js';
import type { GradioExchange } from './gradio-exchange.js';
import { mapGradioProgress } from './map-gradio-progress.js';

/** Largest SSE event the parser buffers before giving up, characters. */
const SSE_MAX_BUFFER_CHARS = 16 * 1024 * 1024;

/** How one read of the result stream ended: with the image, or without a result (then it may be read again). */
export type GradioReadOutcome = { kind: 'image'; image: ProviderImage } | { kind: 'ended'; why: string };

/** What {@link readGradioResult} needs: the space and size ({@link GradioOutputContext}), the run's requests and the token. */
export interface GradioResultContext extends GradioOutputContext {
  exchange: GradioExchange;
  /** The Hugging Face token, sent as `Authorization: Bearer …`; none when undefined. */
  token: string | undefined;
}

/**
 * One read of the result stream, until `complete`, `error` or the end of the stream. Each
 * `generating` event is emitted as a `progress` part ({@link mapGradioProgress}); `heartbeat` and
 * unknown events are ignored. Leaving early (result found, error, abort) closes the connection.
 * @returns the image of the `complete` event ({@link convertGradioOutput}), or `ended` with why when
 *   the stream ended or broke without one (`the stream ended without a complete event`,
 *   `connection lost: <why>`, `answered <status> with no body`).
 * @throws the run's abort outcome; ProviderError for a non-2xx answer (the exchange's `statusError`),
 *   `UPSTREAM_ERROR` for an `error` event (with its message or "the space reported an error"),
 *   `UPSTREAM_BAD_RESPONSE` for an unusable `complete` event or an event larger than 16 Mi characters.
 */
export async function readGradioResult(
  context: GradioResultContext,
  eventId: string,
  emit: (part: ImageStreamPart) => void,
): Promise<GradioReadOutcome> {
  const { exchange, errors, space } = context;
  const resultURL = context.endpoints.resultURL(eventId);
  const { response, abort } = await exchange.send(resultURL, { method: 'GET', headers: gradioHeadersFor('text/event-stream', context.token) });
  let bodyFinished = false;
  try {
    if (!response.ok) {
      bodyFinished = true;
      throw await exchange.statusError(response, `GET ${resultURL}`);
    }
    if (!response.body) return { kind: 'ended', why: `answered ${response.status} with no body` };

    let outcome: { kind: 'image'; image: ProviderImage } | undefined;
    let failure: ProviderError | undefined;
    const handleEvent = (event: EventSourceMessage): void => {
      if (outcome || failure) return;
      try {
        switch (event.event) {
          case 'generating':
            emit({ type: 'progress', message: 'generating', ...mapGradioProgress(parseJson(event.data)) });
            return;
          case 'complete':
            outcome = { kind: 'image', image: convertGradioOutput(event.data, context) };
            return;
          case 'error': {
            const parsed = parseJson(event.data);
            let message: string | undefined;
            if (typeof parsed === 'string') message = parsed;
            else if (parsed !== null && typeof parsed === 'object') message = extractErrorMessage(JSON.stringify(parsed)) || undefined;
            else if (parsed === undefined && event.data.trim() !== '') message = event.data.trim();
            failure = errors.error('UPSTREAM_ERROR', `space ${space.model} failed: ${shortenMessage(message?.trim() || 'the space reported an error')}`);
            return;
          }
          default:
            // `heartbeat`, and events this provider does not know (e.g. queue notices): ignored.
            return;
        }
      } catch (error) {
        failure = error instanceof ProviderError ? error : errors.error('UPSTREAM_BAD_RESPONSE', `space ${space.model}: ${describeError(error)}`);
      }
    };
    const parser = createParser({
      onEvent: handleEvent,
      onError: (error) => {
        if (error.type === 'max-buffer-size-exceeded' && !failure) {
          failure = errors.error('UPSTREAM_BAD_RESPONSE', `space ${space.model} sent an event larger than ${SSE_MAX_BUFFER_CHARS} characters`);
        }
      },
      maxBufferSize: SSE_MAX_BUFFER_CHARS,
    });
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    try {
      for (;;) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          exchange.rethrowIfRunAborted();
          // A broken stream is a stream that ended without a result: read it again.
          return { kind: 'ended', why: `connection lost: ${describeError(error) || 'network error'}` };
        }
        if (result.done) {
          bodyFinished = true;
          parser.feed(decoder.decode());
        } else {
          parser.feed(decoder.decode(result.value, { stream: true }));
        }
        if (failure) throw failure;
        if (outcome) return outcome;
        if (result.done) return { kind: 'ended', why: 'the stream ended without a complete event' };
      }
    } finally {
      if (!bodyFinished) reader.cancel().catch(() => {});
    }
  } finally {
    // Leaving early (result found, error, abort): close the connection.
    if (!bodyFinished) abort();
  }
}
