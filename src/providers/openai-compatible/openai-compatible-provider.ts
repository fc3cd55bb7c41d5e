/**
 * A chat (and optionally image) provider for any OpenAI-compatible upstream (OpenAI, Groq,
 * Together, OpenRouter, Ollama's `/v1`, vLLM, LM Studio, llama.cpp's server, LocalAI,
 * Pollinations, …).
 *
 * Wire format: `docs/protocols.md` §2 (chat chunks as described in §1):
 * `POST {baseURL}/chat/completions` with `stream: true` answers server-sent events, one
 * `data: {chat.completion.chunk}` per event and a final `data: [DONE]`; `GET {baseURL}/models`
 * answers `{"object":"list","data":[{"id",…}]}`; `POST {baseURL}/images/generations` answers
 * `{"created":…,"data":[{"url"}|{"b64_json"},…]}`; errors are `{"error":{"message","type","code"}}`
 * with an HTTP status.
 */
import { Readable } from 'node:stream';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { request as sendRequest } from 'undici';
import { z } from 'zod';
import type { OpenAICompatibleUpstreamConfig } from '../../config.js';
import { AbortHandle } from '../abort-handle.js';
import { cacheAvailability, probeTimeoutFor, probeUnavailability, reuseWhileFresh, sendProbe } from '../cached-availability.js';
import {
  BodyTooLargeError,
  TimeoutAbort,
  describeError,
  extractErrorMessage,
  readBoundedBytes,
  readHttpFailure,
  type HttpFailure,
} from '../http-errors.js';
import { resolveImageSize, type ImageSizeRules } from '../image-size.js';
import {
  ProviderError,
  type AbortSignalLike,
  type Availability,
  type ChatProvider,
  type ChatRequest,
  type ChatStreamPart,
  type FinishReason,
  type ImageRequest,
  type ImageStreamPart,
  type ModelDescriptor,
  type ProviderErrorCode,
  type ProviderImage,
  type StreamOptions,
  type Usage,
} from '../provider.js';

/** Injectable dependencies of {@link createOpenAICompatibleProvider}. */
export interface OpenAICompatibleProviderOptions {
  /**
   * The fetch implementation for model discovery, availability probes and image requests; defaults
   * to the global `fetch` (Node's undici). Chat streams use undici's `request` API instead (see
   * `startExchange().stream`).
   */
  fetch?: typeof fetch;
}

/** How long a discovered model list is reused, ms. */
const MODEL_LIST_CACHE_MS = 60_000;
/** How long a failed model discovery is remembered before trying again, ms. */
const MODEL_LIST_FAILURE_CACHE_MS = 5_000;
/** Largest SSE event the parser buffers before giving up, characters. */
const SSE_MAX_BUFFER_CHARS = 16 * 1024 * 1024;
/** Largest `/images/generations` reply read (four base64 PNGs fit easily), bytes. */
const IMAGE_REPLY_LIMIT_BYTES = 64 * 1024 * 1024;

/** Sizes sent to `/images/generations`: OpenAI's DALL·E 3 sizes for the ratios it knows, pixels. */
export const OPENAI_IMAGE_SIZE_RULES: ImageSizeRules = {
  defaultWidth: 1024,
  defaultHeight: 1024,
  aspectRatioSizes: { '1:1': [1024, 1024], '16:9': [1792, 1024], '9:16': [1024, 1792] },
};

// ---------------------------------------------------------------------------------------------
// Schemas (built once: they run on every chunk of every stream).

/** `usage` of the last chunk (only when `stream_options.include_usage` is sent). Any count may be missing. */
const usageSchema = z.looseObject({
  prompt_tokens: z.number().nullish(),
  completion_tokens: z.number().nullish(),
  total_tokens: z.number().nullish(),
});

/** One `chat.completion.chunk`, reduced to the fields this provider reads; extra fields pass. */
const chunkSchema = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        delta: z.looseObject({ content: z.string().nullish() }).nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .nullish(),
  usage: usageSchema.nullish(),
  /** An in-band error sent after the stream began: `{"error":{"message":…}}` (some servers send a string). */
  error: z.union([z.string(), z.looseObject({ message: z.string().nullish() })]).nullish(),
});

/** The common chunk: one choice with a text delta and/or a finish reason, no usage, no error. */
interface PlainDeltaChunk {
  choices: [{ delta?: { content?: string | null } | null; finish_reason?: string | null }];
  usage?: null;
  error?: null;
}

/** A plain (non-array) object. */
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Whether a chunk has the common shape ({@link PlainDeltaChunk}), checked by hand: every chunk
 * this accepts, `chunkSchema` accepts too and reads the same way, so the stream's hot path (one
 * check per token) skips the schema; anything else (usage, errors, several choices, wrong types)
 * goes through `chunkSchema`, whose issues name what is wrong.
 */
function isPlainDeltaChunk(json: unknown): json is PlainDeltaChunk {
  if (!isRecord(json) || json.usage != null || json.error != null) return false;
  const choices = json.choices;
  if (!Array.isArray(choices) || choices.length !== 1) return false;
  const choice: unknown = choices[0];
  if (!isRecord(choice)) return false;
  if (choice.finish_reason != null && typeof choice.finish_reason !== 'string') return false;
  const delta = choice.delta;
  if (delta == null) return true;
  return isRecord(delta) && (delta.content == null || typeof delta.content === 'string');
}

/** `GET /models`: `{"data":[{"id":…}]}`; other fields (`object`, `created`, `owned_by`, …) pass. */
const modelListSchema = z.looseObject({
  data: z.array(z.looseObject({ id: z.string().min(1) })),
});

/** One image of an `/images/generations` reply: a `url`, a `b64_json`, or both; `revised_prompt` is optional. */
const generatedImageSchema = z
  .looseObject({
    url: z.string().min(1).nullish(),
    b64_json: z.string().min(1).nullish(),
    revised_prompt: z.string().nullish(),
  })
  .refine((image) => Boolean(image.url || image.b64_json), { message: 'an image has neither "url" nor "b64_json"' });

/** `POST /images/generations`: `{"created":…,"data":[…]}` with at least one image; other fields pass. */
const imageReplySchema = z.looseObject({
  created: z.number().nullish(),
  data: z.array(generatedImageSchema).min(1, 'the reply holds no images'),
});

// ---------------------------------------------------------------------------------------------
// Small pure helpers.

const FINISH_REASONS: Readonly<Record<string, FinishReason>> = {
  stop: 'stop',
  length: 'length',
  content_filter: 'content-filter',
  tool_calls: 'tool-calls',
  function_call: 'tool-calls',
};

/** Maps OpenAI's `finish_reason` to ours; an unknown value counts as `stop`. */
function mapFinishReason(value: string): FinishReason {
  return FINISH_REASONS[value] ?? 'stop';
}

/** Maps OpenAI's snake_case usage to {@link Usage}, or undefined when it carries no count. */
function mapUsage(usage: z.infer<typeof usageSchema>): Usage | undefined {
  const mapped: Usage = {};
  if (typeof usage.prompt_tokens === 'number') mapped.promptTokens = usage.prompt_tokens;
  if (typeof usage.completion_tokens === 'number') mapped.completionTokens = usage.completion_tokens;
  if (typeof usage.total_tokens === 'number') mapped.totalTokens = usage.total_tokens;
  return Object.keys(mapped).length > 0 ? mapped : undefined;
}

/** `data:image/png;base64,` at the start of a base64 string (some servers send data URLs). */
const DATA_URL_PREFIX = /^data:([^;,]*)((?:;[^;,]*)*);base64,/i;

/**
 * Decodes base64 (standard or URL-safe alphabet, whitespace ignored, optionally a `data:` URL);
 * the MIME type when a data URL named one. Undefined when the text is not base64 or decodes to nothing.
 */
function decodeBase64Image(text: string): { data: Uint8Array; mimeType?: string } | undefined {
  let payload = text.trim();
  let mimeType: string | undefined;
  const prefix = DATA_URL_PREFIX.exec(payload);
  if (prefix) {
    mimeType = prefix[1]?.toLowerCase() || undefined;
    payload = payload.slice(prefix[0].length);
  }
  payload = payload.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) return undefined;
  const bytes = Buffer.from(payload, 'base64');
  if (bytes.byteLength === 0) return undefined;
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return mimeType ? { data, mimeType } : { data };
}

// ---------------------------------------------------------------------------------------------

/**
 * Creates the provider of one OpenAI-compatible upstream (`docs/protocols.md` §2).
 *
 * - `id` is `config.id`, `label` is `config.label ?? config.id`, capabilities `['chat']`, or
 *   `['chat', 'image']` when `config.imageModels` is non-empty.
 * - `listModels()` returns `config.models` when configured, else the ids of
 *   `GET {baseURL}/models` (reused for 60 000 ms), all with `['chat']`; never throws: no chat
 *   models when discovery fails. Each of `config.imageModels` (never discovered) follows with
 *   `['image']`; a configured image model id drops out of the discovered chat list, and an id in
 *   both `models` and `imageModels` is listed once with `['chat', 'image']`.
 * - `checkAvailability()` sends `GET {baseURL}/models` with a timeout of
 *   `min(config.connectTimeoutMs, 5000)` ms and reuses the answer for 30 000 ms. Unavailable
 *   (`reason: "GET <url> failed: <why>"`) when unreachable, on a timeout, on 401/403/5xx, or on
 *   404 when no models (chat or image) are configured; a 404 with configured models counts as
 *   available (many servers do not implement `/models`). Never throws.
 * - `streamChat(request, { signal, abort })` streams `POST {baseURL}/chat/completions` (`stream: true`,
 *   `stream_options.include_usage: true`) as `text-delta` parts — one per network read, holding
 *   all text that read carried, except that the first text goes out as soon as its event is parsed
 *   (the rest of that read follows as the next part) — followed by exactly one `finish` part with
 *   the reason and usage.
 *   It throws {@link ProviderError}:
 *   `UPSTREAM_TIMEOUT` (no response headers within `connectTimeoutMs` ms, no body chunk within
 *   `idleTimeoutMs` ms, HTTP 408/504), `UNAUTHORIZED` (401), `FORBIDDEN` (403),
 *   `UPSTREAM_NOT_FOUND` (404), `RATE_LIMITED` (429, `retryAfterMs` from `Retry-After`),
 *   `UPSTREAM_BAD_REQUEST` (other 4xx), `UPSTREAM_ERROR` (5xx, an in-band `error` chunk, or the
 *   upstream cannot be reached), `UPSTREAM_BAD_RESPONSE` (malformed JSON or a chunk of the wrong
 *   shape), `UPSTREAM_CONNECTION_LOST` (the body broke or ended before `[DONE]` and before any
 *   `finish_reason`). When the caller's abort fires — `abort` when given (the generation
 *   service's, which makes `signal` only if read), else `signal` — the upstream request is aborted
 *   (its connection closes) and the iterator throws its `reason`, never a ProviderError. Error
 *   messages never contain `config.apiKey`. `request.apiKey`, when given, is sent instead of `config.apiKey` and
 *   is redacted from error messages the same way (chat and images).
 * - `generateImages(request, { signal, abort })` exists only when `config.imageModels` is non-empty
 *   (otherwise the property is absent). It sends `POST {baseURL}/images/generations` with
 *   `{ model, prompt, n, size: "WxH", seed?, negative_prompt? }` (`size` in pixels from
 *   {@link resolveImageSize} with {@link OPENAI_IMAGE_SIZE_RULES}: default 1024x1024, 16:9 →
 *   1792x1024, 9:16 → 1024x1792), the same headers and timeouts as chat, and reads the JSON
 *   reply `{"data":[{"url"}|{"b64_json"}, "revised_prompt"?]}` (both shapes may mix in one reply;
 *   at most 64 MiB). It yields one `image` part per entry, in reply order — `{ url, revisedPrompt }`
 *   for a `url` (a relative URL is resolved against `baseURL`, a `data:` URL is decoded), or
 *   `{ data, revisedPrompt }` with the decoded bytes for a `b64_json` (no `mimeType`: the bytes
 *   decide) — then one `finish` part. It throws {@link ProviderError} with the codes of
 *   `streamChat` for HTTP statuses, timeouts and unreachable upstreams, `UPSTREAM_ERROR` for a 2xx
 *   reply holding only `{"error":…}`, `UPSTREAM_BAD_RESPONSE` for a reply that is not JSON, has
 *   no images, an image with neither field, invalid base64 or is too large, and
 *   `UPSTREAM_CONNECTION_LOST` when the body breaks. The caller's abort (as for chat) aborts the
 *   request (its connection closes) and the iterator throws its `reason`.
 *
 * @param config the upstream: `baseURL` without a trailing `/`, optional `apiKey`, `models`,
 *   `imageModels`, `headers`, and the timeouts `connectTimeoutMs` and `idleTimeoutMs` in ms.
 * @param options.fetch a fetch implementation to use instead of the global one.
 */
export function createOpenAICompatibleProvider(
  config: OpenAICompatibleUpstreamConfig,
  options: OpenAICompatibleProviderOptions = {},
): ChatProvider {
  const fetchImplementation = options.fetch ?? globalThis.fetch;
  const providerId = config.id;
  const baseURL = config.baseURL.replace(/\/+$/, '');
  const chatURL = `${baseURL}/chat/completions`;
  const modelsURL = `${baseURL}/models`;
  const probeTimeoutMs = probeTimeoutFor(config.connectTimeoutMs);
  const staticModels: ModelDescriptor[] | undefined = config.models?.map((id) => ({ id, capabilities: ['chat'] }));
  const imageModelIds = [...new Set(config.imageModels ?? [])];
  const servesImages = imageModelIds.length > 0;
  const imagesURL = `${baseURL}/images/generations`;

  /** Replaces the API key wherever it appears; every message we produce goes through here. */
  const redact = (text: string): string =>
    config.apiKey && config.apiKey.length > 0 ? text.split(config.apiKey).join('***') : text;

  const providerError = (
    code: ProviderErrorCode,
    message: string,
    extra: { statusCode?: number; retryAfterMs?: number; cause?: unknown } = {},
  ): ProviderError => new ProviderError({ code, provider: providerId, message: redact(message), ...extra });

  /** The error for a non-2xx reply: `upstream <id> answered <status>: <upstream message>`. */
  const httpFailureError = (failure: HttpFailure): ProviderError =>
    providerError(
      failure.code,
      `upstream ${providerId} answered ${failure.statusCode}${failure.upstreamMessage ? `: ${failure.upstreamMessage}` : ''}`,
      { statusCode: failure.statusCode, ...(failure.retryAfterMs !== undefined && { retryAfterMs: failure.retryAfterMs }) },
    );

  /** `apiKey`: a request's own key (`ChatRequest.apiKey`) wins over the configured one. */
  const commonHeaders = (accept: string, apiKey = config.apiKey): Record<string, string> => {
    const headers: Record<string, string> = { Accept: accept, ...config.headers };
    if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
    return headers;
  };

  // ---- GET /models ---------------------------------------------------------------------------

  /** What `GET {baseURL}/models` is sent with: the probe timeout and the upstream's headers. */
  const modelsProbe = { headers: commonHeaders('application/json'), timeoutMs: probeTimeoutMs };

  /** The chat models `GET {baseURL}/models` lists (none when it fails) and how long to reuse them, ms. Never throws. */
  const discoverModels = async (): Promise<{ models: ModelDescriptor[]; lifetimeMs: number }> => {
    let models: ModelDescriptor[] = [];
    let lifetimeMs = MODEL_LIST_FAILURE_CACHE_MS;
    const probe = await sendProbe(fetchImplementation, modelsURL, modelsProbe);
    if (probe.ok) {
      const { response } = probe;
      if (response.ok) {
        try {
          const parsed = modelListSchema.safeParse(await response.json());
          if (parsed.success) {
            models = parsed.data.data.map((model) => ({ id: model.id, capabilities: ['chat'] }));
            lifetimeMs = MODEL_LIST_CACHE_MS;
          }
        } catch {
          // unreadable list: no models for now
        }
      } else {
        response.body?.cancel().catch(() => {});
      }
    }
    return { models, lifetimeMs };
  };
  const discoveredModels = reuseWhileFresh(discoverModels, (discovery) => discovery.lifetimeMs);

  /**
   * Appends the image models to a chat model list (a fresh copy): configured image ids leave a
   * discovered list, and an id configured for both gets both capabilities.
   */
  const withImageModels = (chatModels: ModelDescriptor[], discovered: boolean): ModelDescriptor[] => {
    const imageIds = new Set(imageModelIds);
    const models: ModelDescriptor[] = chatModels
      .filter((model) => !(discovered && imageIds.has(model.id)))
      .map((model) => ({ id: model.id, capabilities: imageIds.has(model.id) ? ['chat', 'image'] : [...model.capabilities] }));
    const listed = new Set(models.map((model) => model.id));
    for (const id of imageModelIds) if (!listed.has(id)) models.push({ id, capabilities: ['image'] });
    return models;
  };

  const listModels = async (): Promise<ModelDescriptor[]> => {
    if (staticModels) return withImageModels(staticModels, false);
    return withImageModels((await discoveredModels()).models, true);
  };

  const probeAvailability = async (): Promise<Availability> => {
    const reason = await probeUnavailability(fetchImplementation, modelsURL, {
      ...modelsProbe,
      isUnavailable: (status) => status === 401 || status === 403 || status >= 500 || (status === 404 && !staticModels && !servesImages),
    });
    return reason === undefined ? { available: true } : { available: false, reason: redact(reason) };
  };

  const checkAvailability = cacheAvailability(probeAvailability, (error) => redact(`GET ${modelsURL} failed: ${describeError(error)}`));

  // ---- one request (chat or images) ----------------------------------------------------------

  /**
   * Starts one request of {@link streamChat} or {@link generateImages}: the caller's abort (`signal`)
   * combined with our own aborts (timeouts, early exit), a timeout on the response headers and an
   * idle timeout on body reads. Throws `signal.reason` when the caller already aborted. Every
   * method throws `signal.reason` (never a ProviderError) once the caller aborted; `close` must
   * run in a `finally`.
   */
  const startExchange = (signal: AbortSignalLike) => {
    signal.throwIfAborted();
    // One abort for the request: our own (timeouts, early exit) and, forwarded, the caller's (a
    // listener removed by `close`: cheaper per request than `AbortSignal.any`). undici's `request`
    // takes it as it is; `fetch` gets its `AbortSignal`, made only then (see abort-handle.ts).
    const requestAbort = new AbortHandle();
    const forwardAbort = (): void => requestAbort.abort(signal.reason);
    signal.addEventListener('abort', forwardAbort, { once: true });
    let timedOut: 'connect' | 'idle' | undefined;
    let waitingForRead = false;
    let idleTimer: NodeJS.Timeout | undefined;
    let bodyFinished = false;

    /** Rethrows the caller's abort reason when the caller aborted; otherwise returns. */
    const rethrowIfCallerAborted = (): void => {
      if (signal.aborted) throw signal.reason;
    };

    /** Runs `start` (which sends the request) under the response-headers timeout, mapping its failures. */
    const awaitHeaders = async <Reply>(options: { timeoutMs: number; expected: string }, start: () => Promise<Reply>): Promise<Reply> => {
      const connectTimer = setTimeout(() => {
        timedOut = 'connect';
        requestAbort.abort(new TimeoutAbort(`no response headers within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      try {
        return await start();
      } catch (error) {
        rethrowIfCallerAborted();
        if (timedOut === 'connect') {
          throw providerError('UPSTREAM_TIMEOUT', `upstream ${providerId} sent no ${options.expected} within ${options.timeoutMs} ms`, {
            cause: error,
          });
        }
        throw providerError('UPSTREAM_ERROR', `cannot reach upstream ${providerId}: ${describeError(error) || 'network error'}`, {
          cause: error,
        });
      } finally {
        clearTimeout(connectTimer);
      }
    };

    /**
     * From the response headers on, the idle timer watches every body read (it only fires while a
     * read is pending, so a slow consumer never trips it).
     */
    const armIdleTimer = (): void => {
      idleTimer = setTimeout(() => {
        if (!waitingForRead) return;
        timedOut = 'idle';
        requestAbort.abort(new TimeoutAbort(`no data for ${config.idleTimeoutMs} ms`));
      }, config.idleTimeoutMs);
    };

    /** Reads a non-2xx reply's error body and throws the error its status maps to. */
    const failWith = async (response: Response): Promise<never> => {
      waitingForRead = true;
      const failure = await readHttpFailure(response);
      waitingForRead = false;
      rethrowIfCallerAborted();
      bodyFinished = true;
      throw httpFailureError(failure);
    };

    return {
      rethrowIfCallerAborted,

      /**
       * Sends the request (`init` without a signal) with `fetch` and waits for its response
       * headers, then arms the idle timer of {@link read}.
       * @param options.timeoutMs time allowed for the response headers, ms.
       * @param options.expected what the upstream did not send in time, for the message (`response headers`, `image`).
       * @returns the response, always 2xx.
       * @throws ProviderError `UPSTREAM_TIMEOUT` (`upstream <id> sent no <expected> within <timeoutMs> ms`),
       *   `UPSTREAM_ERROR` (`cannot reach upstream <id>: <why>`), or for a non-2xx reply the code of its
       *   status with `statusCode` and `retryAfterMs` (`upstream <id> answered <status>: <upstream message>`).
       */
      async send(url: string, init: RequestInit, options: { timeoutMs: number; expected: string }): Promise<Response> {
        const response = await awaitHeaders(options, () => fetchImplementation(url, { ...init, signal: requestAbort.toAbortSignal() }));
        armIdleTimer();
        if (!response.ok) await failWith(response);
        return response;
      },

      /**
       * Sends a request with undici's `request` API (https://undici.nodejs.org/#/docs/api/Dispatcher?id=dispatcherrequestoptions-callback)
       * and waits for its response headers, then arms the idle timer of {@link read}. Unlike
       * `send`, the body is a Node stream, not a WHATWG one: a 64-token stream costs about a
       * quarter of `fetch`'s CPU time (0.28 → 0.07 ms per request, measured on the benchmark
       * machine), which matters on the chat hot path. Redirects are not followed (a 3xx is an error).
       * @returns the body of a 2xx reply, a Node readable of byte chunks; destroy it when not read to its end.
       * @throws as `send` does.
       */
      async stream(
        url: string,
        init: { method: 'POST'; headers: Record<string, string>; body: string },
        options: { timeoutMs: number; expected: string },
      ): Promise<Readable> {
        // Our timers (connect, idle) decide; undici's own 300 s header and body timeouts are off, so a
        // longer UPSTREAM_IDLE_TIMEOUT_MS is not cut short.
        const reply = await awaitHeaders(options, () => sendRequest(url, { ...init, signal: requestAbort, headersTimeout: 0, bodyTimeout: 0 }));
        armIdleTimer();
        if (reply.statusCode < 200 || reply.statusCode > 299) {
          // Rare: the error reply goes through the same reader as `send`'s.
          const nullBody = reply.statusCode === 204 || reply.statusCode === 205 || reply.statusCode === 304;
          if (nullBody) reply.body.destroy();
          const headers = new Headers();
          for (const [name, value] of Object.entries(reply.headers)) {
            for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, item);
          }
          const body = nullBody ? null : (Readable.toWeb(reply.body) as ReadableStream<Uint8Array>);
          await failWith(new Response(body, { status: reply.statusCode, headers }));
        }
        return reply.body;
      },

      /**
       * Runs one read of the body under the idle timer, which `readBody` restarts by calling `progress`.
       * @param lostWhere where the connection broke, for the message (`mid-stream`, `while reading the image reply`).
       * @throws ProviderError `UPSTREAM_TIMEOUT` when nothing came for `idleTimeoutMs` ms,
       *   `UPSTREAM_CONNECTION_LOST` (`connection to upstream <id> lost <lostWhere>: <why>`) when the body
       *   broke; a ProviderError `readBody` threw passes as it is.
       */
      async read<Result>(readBody: (progress: () => void) => Promise<Result>, lostWhere: string): Promise<Result> {
        waitingForRead = true;
        idleTimer?.refresh();
        try {
          return await readBody(() => idleTimer?.refresh());
        } catch (error) {
          rethrowIfCallerAborted();
          if (error instanceof ProviderError) throw error;
          if (timedOut === 'idle') {
            throw providerError('UPSTREAM_TIMEOUT', `upstream ${providerId} sent nothing for ${config.idleTimeoutMs} ms (idle timeout)`, {
              cause: error,
            });
          }
          throw providerError(
            'UPSTREAM_CONNECTION_LOST',
            `connection to upstream ${providerId} lost ${lostWhere}: ${describeError(error) || 'network error'}`,
            { cause: error },
          );
        } finally {
          waitingForRead = false;
        }
      },

      /** Records that the body was read to its end (the connection can be reused) and stops the idle timer. */
      finish(): void {
        bodyFinished = true;
        clearTimeout(idleTimer);
      },

      /**
       * Whether the body was read to its end, or the reply was a non-2xx one (its error body read).
       * A method, not a getter: on Node 20 an object literal made per call with a getter outlives
       * young-generation collections (in isolation 93 bytes per object, none with a method; the
       * objects still share one hidden class), and here it kept the whole exchange — closures,
       * timers, the request's abort — with it: 2.4 → 1.1 kB copied per request for this provider
       * alone (README, Performance).
       */
      isFinished(): boolean {
        return bodyFinished;
      },

      /** Stops the timers and, unless the body was read to its end, aborts the request (its connection closes) with `reason`. */
      close(reason: string): void {
        clearTimeout(idleTimer);
        signal.removeEventListener('abort', forwardAbort);
        if (!bodyFinished) requestAbort.abort(new TimeoutAbort(reason));
      },
    };
  };

  // ---- POST /chat/completions ----------------------------------------------------------------

  const buildBody = (request: ChatRequest): string => {
    const body: Record<string, unknown> = {
      model: request.model,
      messages: request.messages,
      stream: true,
      stream_options: { include_usage: true },
    };
    if (request.temperature !== undefined) body.temperature = request.temperature;
    if (request.topP !== undefined) body.top_p = request.topP;
    if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
    if (request.stop !== undefined && request.stop.length > 0) body.stop = request.stop;
    if (request.seed !== undefined) body.seed = request.seed;
    return JSON.stringify(body);
  };

  async function* streamChat(request: ChatRequest, options: StreamOptions): AsyncGenerator<ChatStreamPart> {
    const exchange = startExchange(options.abort ?? options.signal);
    let body: Readable | undefined;

    try {
      // The request is dispatched now: on a new connection undici writes it once connected, on a
      // reused keep-alive one in this turn's check phase (its idle-socket validation, see the
      // generation service's launch); the reader below is set up meanwhile.
      const reply = exchange.stream(
        chatURL,
        {
          method: 'POST',
          headers: { ...commonHeaders('text/event-stream', request.apiKey ?? config.apiKey), 'Content-Type': 'application/json' },
          body: buildBody(request),
        },
        { timeoutMs: config.connectTimeoutMs, expected: 'response headers' },
      );

      // ---- the SSE body -----------------------------------------------------------------------
      // The parser's callback only records what each event says; the loop below turns one
      // network read into at most one text-delta part (coalescing, see pitfalls.md).
      let pendingText = '';
      let finishReason: FinishReason | undefined;
      let usage: Usage | undefined;
      let doneReceived = false;
      let streamError: ProviderError | undefined;

      const readChoice = (choice: PlainDeltaChunk['choices'][0]): void => {
        const content = choice.delta?.content;
        if (content) pendingText += content;
        if (choice.finish_reason) finishReason = mapFinishReason(choice.finish_reason);
      };

      const handleEvent = (event: EventSourceMessage): void => {
        if (doneReceived || streamError) return;
        const data = event.data;
        if (data === '[DONE]') {
          doneReceived = true;
          return;
        }
        if (data.trim() === '') return;
        let json: unknown;
        try {
          json = JSON.parse(data);
        } catch {
          const excerpt = data.length > 200 ? `${data.slice(0, 200)}…` : data;
          streamError = providerError('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent malformed JSON in the stream: ${excerpt}`);
          return;
        }
        if (isPlainDeltaChunk(json)) {
          readChoice(json.choices[0]);
          return;
        }
        const parsed = chunkSchema.safeParse(json);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          const where = issue ? `${issue.path.join('.') || 'chunk'}: ${issue.message}` : 'unexpected shape';
          streamError = providerError('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent a chunk of the wrong shape (${where})`);
          return;
        }
        const chunk = parsed.data;
        if (chunk.error) {
          const message = typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? 'unknown error');
          streamError = providerError('UPSTREAM_ERROR', `upstream ${providerId} reported an error: ${message}`);
          return;
        }
        const choice = chunk.choices?.[0];
        if (choice) readChoice(choice);
        if (chunk.usage) usage = mapUsage(chunk.usage) ?? usage;
      };

      const parser = createParser({
        onEvent: handleEvent,
        onError: (error) => {
          // Unknown fields and bad `retry:` lines are ignorable; a runaway event is not.
          if (error.type === 'max-buffer-size-exceeded' && !streamError) {
            streamError = providerError('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an event larger than ${SSE_MAX_BUFFER_CHARS} characters`);
          }
        },
        maxBufferSize: SSE_MAX_BUFFER_CHARS,
      });
      const decoder = new TextDecoder();
      /** Whether a text-delta part was yielded yet. */
      let textYielded = false;
      /**
       * Decodes and feeds `bytes` one line at a time until an event brought text, failed or ended
       * the stream (a line ends at `\n`, a byte that never occurs inside a UTF-8 sequence; events end
       * at a blank line, so each event is dispatched as soon as its end is fed); returns how many
       * bytes were fed.
       */
      const feedLinesUntilText = (bytes: Uint8Array): number => {
        let offset = 0;
        while (offset < bytes.length && !pendingText && !streamError && !doneReceived) {
          const lineEnd = bytes.indexOf(0x0a, offset);
          const end = lineEnd === -1 ? bytes.length : lineEnd + 1;
          parser.feed(decoder.decode(bytes.subarray(offset, end), { stream: true }));
          offset = end;
        }
        return offset;
      };
      /** The text parsed since the last text-delta part, as the next one (empties it). */
      const takeTextDelta = (): ChatStreamPart => {
        const text = pendingText;
        pendingText = '';
        return { type: 'text-delta', text };
      };
      const finishPart = (): ChatStreamPart =>
        usage ? { type: 'finish', finishReason: finishReason ?? 'stop', usage } : { type: 'finish', finishReason: finishReason ?? 'stop' };

      body = await reply;

      const chunks: AsyncIterator<Uint8Array> = body[Symbol.asyncIterator]();
      for (;;) {
        exchange.rethrowIfCallerAborted();
        const result = await exchange.read(() => chunks.next(), 'mid-stream');

        if (result.done) {
          exchange.finish();
          if (!streamError && !doneReceived) parser.feed(decoder.decode());
          if (pendingText) yield takeTextDelta();
          if (streamError) throw streamError;
          if (doneReceived || finishReason !== undefined) {
            yield finishPart();
            return;
          }
          throw providerError('UPSTREAM_CONNECTION_LOST', `upstream ${providerId} stream ended before [DONE]`);
        }

        const bytes = result.value;
        let fed = 0;
        if (!textYielded) {
          // Until the first text is out, the read is decoded and parsed a line at a time and the
          // first text goes out before the rest of the read is decoded and parsed: a fast upstream's
          // first read can hold the whole answer, and handling all of it first would hold the first
          // token back.
          fed = feedLinesUntilText(bytes);
          if (pendingText) {
            textYielded = true;
            yield takeTextDelta();
          }
        }
        if (fed < bytes.length) parser.feed(decoder.decode(fed === 0 ? bytes : bytes.subarray(fed), { stream: true }));
        if (pendingText) yield takeTextDelta();
        if (streamError) throw streamError;
        if (doneReceived) {
          yield finishPart();
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

  // ---- POST /images/generations --------------------------------------------------------------

  const buildImageBody = (request: ImageRequest): string => {
    const { width, height } = resolveImageSize(request, OPENAI_IMAGE_SIZE_RULES);
    const body: Record<string, unknown> = { model: request.model, prompt: request.prompt, n: request.n, size: `${width}x${height}` };
    if (request.seed !== undefined) body.seed = request.seed;
    if (request.negativePrompt !== undefined && request.negativePrompt !== '') body.negative_prompt = request.negativePrompt;
    return JSON.stringify(body);
  };

  /** An http(s) URL (a relative one resolved against `baseURL`), or undefined. */
  const resolveImageURL = (text: string): string | undefined => {
    try {
      const url = new URL(text, `${baseURL}/`);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
    } catch {
      return undefined;
    }
  };

  /** The images of a parsed reply, in order; throws UPSTREAM_BAD_RESPONSE for an unusable entry. */
  const imagesOfReply = (reply: z.infer<typeof imageReplySchema>): ProviderImage[] =>
    reply.data.map((entry, index) => {
      const image: ProviderImage = {};
      const base64 = entry.b64_json ?? (entry.url?.startsWith('data:') ? entry.url : undefined);
      if (base64) {
        const decoded = decodeBase64Image(base64);
        if (!decoded) {
          const field = entry.b64_json ? 'b64_json' : 'url';
          throw providerError('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent invalid base64 in data.${index}.${field}`);
        }
        image.data = decoded.data;
        if (decoded.mimeType) image.mimeType = decoded.mimeType;
      }
      if (entry.url && !entry.url.startsWith('data:')) {
        const url = resolveImageURL(entry.url);
        if (!url) throw providerError('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an image URL that is not http(s) in data.${index}.url`);
        image.url = url;
      }
      if (entry.revised_prompt) image.revisedPrompt = entry.revised_prompt;
      return image;
    });

  /** Image endpoints answer only once the image exists, so they get the longer image timeout. */
  const imageTimeoutMs = Math.max(config.connectTimeoutMs, config.imageTimeoutMs ?? 0);

  async function* generateImages(request: ImageRequest, options: StreamOptions): AsyncGenerator<ImageStreamPart> {
    const exchange = startExchange(options.abort ?? options.signal);

    try {
      const response = await exchange.send(
        imagesURL,
        {
          method: 'POST',
          headers: { ...commonHeaders('application/json', request.apiKey ?? config.apiKey), 'Content-Type': 'application/json' },
          body: buildImageBody(request),
        },
        { timeoutMs: imageTimeoutMs, expected: 'image' },
      );

      // The reply is read in one go; the idle timer fires when no chunk arrives for idleTimeoutMs.
      const bytes = await exchange.read(
        (progress) =>
          readBoundedBytes(response.body, IMAGE_REPLY_LIMIT_BYTES, progress).catch((error: unknown) => {
            if (error instanceof BodyTooLargeError) {
              throw providerError('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an image reply larger than ${IMAGE_REPLY_LIMIT_BYTES} bytes`);
            }
            throw error;
          }),
        'while reading the image reply',
      );
      exchange.finish();
      exchange.rethrowIfCallerAborted();

      const text = new TextDecoder().decode(bytes);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        const trimmed = text.trim();
        const excerpt = trimmed.length > 200 ? `${trimmed.slice(0, 200)}…` : trimmed;
        throw providerError('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an image reply that is not JSON: ${excerpt}`, {
          statusCode: response.status,
        });
      }
      const parsed = imageReplySchema.safeParse(json);
      if (!parsed.success) {
        const inBandError = typeof json === 'object' && json !== null && (json as { error?: unknown }).error;
        if (inBandError) {
          throw providerError('UPSTREAM_ERROR', `upstream ${providerId} reported an error: ${extractErrorMessage(text) || 'unknown error'}`, {
            statusCode: response.status,
          });
        }
        const issue = parsed.error.issues[0];
        const where = issue ? `${issue.path.join('.') || 'reply'}: ${issue.message}` : 'unexpected shape';
        throw providerError('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an image reply of the wrong shape (${where})`, {
          statusCode: response.status,
        });
      }
      for (const image of imagesOfReply(parsed.data)) yield { type: 'image', image };
      yield { type: 'finish' };
    } finally {
      // Early exit (caller abort, consumer stopped, error): close the upstream connection.
      exchange.close('request closed by the gateway');
    }
  }

  return {
    id: providerId,
    label: config.label ?? config.id,
    capabilities: servesImages ? ['chat', 'image'] : ['chat'],
    listModels,
    checkAvailability,
    // A request's own key is redacted from errors too (upstreams echo keys: "Incorrect API key provided: …").
    streamChat: (request, options) => (request.apiKey ? redactingSecret(streamChat(request, options), request.apiKey) : streamChat(request, options)),
    ...(servesImages && {
      generateImages: (request: ImageRequest, options: StreamOptions) =>
        request.apiKey ? redactingSecret(generateImages(request, options), request.apiKey) : generateImages(request, options),
    }),
  };
}

/** The same parts; an error thrown on the way has every occurrence of `secret` in its message replaced by `***`. */
async function* redactingSecret<Part>(parts: AsyncGenerator<Part>, secret: string): AsyncGenerator<Part> {
  try {
    yield* parts;
  } catch (error) {
    if (error instanceof Error && error.message.includes(secret)) error.message = error.message.split(secret).join('***');
    throw error;
  }
}
