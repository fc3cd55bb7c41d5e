/**
 * A chat provider for any OpenAI-compatible upstream (OpenAI, Groq, Together, OpenRouter,
 * Ollama's `/v1`, vLLM, LM Studio, llama.cpp's server, Pollinations, …).
 *
 * Wire format: `../shared/reference/protocols.md` §2 (chat chunks as described in §1):
 * `POST {baseURL}/chat/completions` with `stream: true` answers server-sent events, one
 * `data: {chat.completion.chunk}` per event and a final `data: [DONE]`; `GET {baseURL}/models`
 * answers `{"object":"list","data":[{"id",…}]}`; errors are `{"error":{"message","type","code"}}`
 * with an HTTP status.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { z } from 'zod';
import type { OpenAICompatibleUpstreamConfig } from '../../config.js';
import {
  ProviderError,
  type Availability,
  type ChatProvider,
  type ChatRequest,
  type ChatStreamPart,
  type FinishReason,
  type ModelDescriptor,
  type ProviderErrorCode,
  type StreamOptions,
  type Usage,
} from '../provider.js';

/** Injectable dependencies of {@link createOpenAICompatibleProvider}. */
export interface OpenAICompatibleProviderOptions {
  /** The fetch implementation to use; defaults to the global `fetch` (Node's undici). */
  fetch?: typeof fetch;
}

/** How long a discovered model list is reused, ms. */
const MODEL_LIST_CACHE_MS = 60_000;
/** How long a failed model discovery is remembered before trying again, ms. */
const MODEL_LIST_FAILURE_CACHE_MS = 5_000;
/** How long an availability answer is reused, ms. */
const AVAILABILITY_CACHE_MS = 30_000;
/** Upper bound of the availability and discovery request time, ms. */
const PROBE_TIMEOUT_CAP_MS = 5_000;
/** How much of an error body is read, bytes. */
const ERROR_BODY_LIMIT_BYTES = 64 * 1024;
/** How much of an upstream error message is kept in our error message, characters. */
const ERROR_MESSAGE_LIMIT_CHARS = 1_000;
/** Largest SSE event the parser buffers before giving up, characters. */
const SSE_MAX_BUFFER_CHARS = 16 * 1024 * 1024;

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

/** `GET /models`: `{"data":[{"id":…}]}`; other fields (`object`, `created`, `owned_by`, …) pass. */
const modelListSchema = z.looseObject({
  data: z.array(z.looseObject({ id: z.string().min(1) })),
});

/** An error body: OpenAI's `{"error":{"message"}}`, Ollama's `{"error":"…"}`, FastAPI's `{"detail":"…"}`. */
const errorBodySchema = z.looseObject({
  error: z.union([z.string(), z.looseObject({ message: z.string().nullish() })]).nullish(),
  message: z.string().nullish(),
  detail: z.string().nullish(),
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

/** The error code for a non-2xx status (protocols.md §2). */
function codeForStatus(status: number): ProviderErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'UPSTREAM_NOT_FOUND';
  if (status === 408 || status === 504) return 'UPSTREAM_TIMEOUT';
  if (status === 429) return 'RATE_LIMITED';
  if (status >= 500) return 'UPSTREAM_ERROR';
  if (status >= 400) return 'UPSTREAM_BAD_REQUEST';
  return 'UPSTREAM_BAD_RESPONSE';
}

/**
 * Milliseconds to wait from `retry-after-ms` (sent by OpenAI) or `Retry-After`
 * (seconds, or an HTTP date); undefined when absent or unreadable.
 */
function parseRetryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const milliseconds = headers.get('retry-after-ms');
  if (milliseconds !== null && milliseconds.trim() !== '') {
    const value = Number(milliseconds);
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
  }
  const retryAfter = headers.get('retry-after')?.trim();
  if (!retryAfter) return undefined;
  if (/^\d+(\.\d+)?$/.test(retryAfter)) return Math.round(Number(retryAfter) * 1000);
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The upstream's own message from an error body, or the raw text trimmed (and shortened). */
function extractErrorMessage(bodyText: string): string {
  const trimmed = bodyText.trim();
  let message: string | undefined;
  if (trimmed.startsWith('{')) {
    try {
      const parsed = errorBodySchema.safeParse(JSON.parse(trimmed));
      if (parsed.success) {
        const { error, message: topMessage, detail } = parsed.data;
        message = (typeof error === 'string' ? error : error?.message) ?? topMessage ?? detail ?? undefined;
      }
    } catch {
      // not JSON after all: use the raw text
    }
  }
  message = (message ?? trimmed).trim();
  return message.length > ERROR_MESSAGE_LIMIT_CHARS ? `${message.slice(0, ERROR_MESSAGE_LIMIT_CHARS)}…` : message;
}

/**
 * A readable reason for a failure of `fetch` or of a body read. Undici wraps the real cause:
 * `TypeError('fetch failed', { cause: Error('connect ECONNREFUSED 127.0.0.1:1234') })`,
 * `TypeError('terminated', { cause: SocketError('other side closed') })`.
 */
function describeError(error: unknown): string {
  if (error instanceof AggregateError) {
    const inner = error.errors.map(describeError).filter(Boolean);
    const unique = [...new Set(inner)];
    if (unique.length > 0) return unique.join('; ');
  }
  if (error instanceof Error) {
    const own = error.message || (error as { code?: unknown }).code?.toString() || error.name;
    const cause = error.cause === undefined ? '' : describeError(error.cause);
    if (!cause) return own;
    if (own === 'fetch failed') return cause;
    return `${own} (${cause})`;
  }
  return error === undefined || error === null ? '' : String(error);
}

/** Reads at most `limitBytes` of a body as text, then lets go of it. Never throws. */
async function readBoundedText(body: ReadableStream<Uint8Array> | null, limitBytes: number): Promise<string> {
  if (!body) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let received = 0;
  try {
    while (received < limitBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      const slice = value.byteLength + received > limitBytes ? value.subarray(0, limitBytes - received) : value;
      received += slice.byteLength;
      text += decoder.decode(slice, { stream: true });
    }
    text += decoder.decode();
  } catch {
    // a broken error body still gives us the status
  } finally {
    reader.cancel().catch(() => {});
  }
  return text;
}

/** Marks an abort we caused ourselves, so it can be told apart from the caller's. */
class TimeoutAbort extends Error {
  override readonly name = 'TimeoutAbort';
}

// ---------------------------------------------------------------------------------------------

/**
 * Creates the provider of one OpenAI-compatible upstream (`../shared/reference/protocols.md` §2).
 *
 * - `id` is `config.id`, `label` is `config.label ?? config.id`, capabilities `['chat']`.
 * - `listModels()` returns `config.models` when configured, else the ids of
 *   `GET {baseURL}/models` (reused for 60 000 ms); never throws: `[]` when discovery fails.
 * - `checkAvailability()` sends `GET {baseURL}/models` with a timeout of
 *   `min(config.connectTimeoutMs, 5000)` ms and reuses the answer for 30 000 ms. Unavailable
 *   (`reason: "GET <url> failed: <why>"`) when unreachable, on a timeout, on 401/403/5xx, or on
 *   404 when no models are configured; a 404 with configured models counts as available (many
 *   servers do not implement `/models`). Never throws.
 * - `streamChat(request, { signal })` streams `POST {baseURL}/chat/completions` (`stream: true`,
 *   `stream_options.include_usage: true`) as `text-delta` parts — one per network read, holding
 *   all text that read carried — followed by exactly one `finish` part with the reason and usage.
 *   It throws {@link ProviderError}:
 *   `UPSTREAM_TIMEOUT` (no response headers within `connectTimeoutMs` ms, no body chunk within
 *   `idleTimeoutMs` ms, HTTP 408/504), `UNAUTHORIZED` (401), `FORBIDDEN` (403),
 *   `UPSTREAM_NOT_FOUND` (404), `RATE_LIMITED` (429, `retryAfterMs` from `Retry-After`),
 *   `UPSTREAM_BAD_REQUEST` (other 4xx), `UPSTREAM_ERROR` (5xx, an in-band `error` chunk, or the
 *   upstream cannot be reached), `UPSTREAM_BAD_RESPONSE` (malformed JSON or a chunk of the wrong
 *   shape), `UPSTREAM_CONNECTION_LOST` (the body broke or ended before `[DONE]` and before any
 *   `finish_reason`). When `signal` aborts, the upstream request is aborted (its connection
 *   closes) and the iterator throws `signal.reason`, never a ProviderError. Error messages never
 *   contain `config.apiKey`.
 *
 * @param config the upstream: `baseURL` without a trailing `/`, optional `apiKey`, `models`,
 *   `headers`, and the timeouts `connectTimeoutMs` and `idleTimeoutMs` in ms.
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
  const probeTimeoutMs = Math.min(config.connectTimeoutMs, PROBE_TIMEOUT_CAP_MS);
  const staticModels: ModelDescriptor[] | undefined = config.models?.map((id) => ({ id, capabilities: ['chat'] }));

  /** Replaces the API key wherever it appears; every message we produce goes through here. */
  const redact = (text: string): string =>
    config.apiKey && config.apiKey.length > 0 ? text.split(config.apiKey).join('***') : text;

  const providerError = (
    code: ProviderErrorCode,
    message: string,
    extra: { statusCode?: number; retryAfterMs?: number; cause?: unknown } = {},
  ): ProviderError => new ProviderError({ code, provider: providerId, message: redact(message), ...extra });

  const commonHeaders = (accept: string): Record<string, string> => {
    const headers: Record<string, string> = { Accept: accept, ...config.headers };
    if (config.apiKey) headers.Authorization = `Bearer ${config.apiKey}`;
    return headers;
  };

  // ---- GET /models ---------------------------------------------------------------------------

  type ProbeResult = { ok: true; response: Response } | { ok: false; reason: string };

  /** `GET {baseURL}/models` with the probe timeout; never throws. The caller consumes or cancels the body. */
  const probeModels = async (): Promise<ProbeResult> => {
    try {
      const response = await fetchImplementation(modelsURL, {
        method: 'GET',
        headers: commonHeaders('application/json'),
        signal: AbortSignal.timeout(probeTimeoutMs),
      });
      return { ok: true, response };
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
      const why = timedOut ? `no response within ${probeTimeoutMs} ms` : describeError(error) || 'network error';
      return { ok: false, reason: redact(`GET ${modelsURL} failed: ${why}`) };
    }
  };

  let modelCache: { models: ModelDescriptor[]; expiresAt: number } | undefined;
  let modelDiscovery: Promise<ModelDescriptor[]> | undefined;

  const discoverModels = async (): Promise<ModelDescriptor[]> => {
    let models: ModelDescriptor[] = [];
    let lifetimeMs = MODEL_LIST_FAILURE_CACHE_MS;
    const probe = await probeModels();
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
    modelCache = { models, expiresAt: Date.now() + lifetimeMs };
    return models;
  };

  const listModels = async (): Promise<ModelDescriptor[]> => {
    if (staticModels) return staticModels.map((model) => ({ id: model.id, capabilities: [...model.capabilities] }));
    if (modelCache && modelCache.expiresAt > Date.now()) return [...modelCache.models];
    modelDiscovery ??= discoverModels().finally(() => {
      modelDiscovery = undefined;
    });
    return [...(await modelDiscovery)];
  };

  let availabilityCache: { availability: Availability; expiresAt: number } | undefined;
  let availabilityCheck: Promise<Availability> | undefined;

  const probeAvailability = async (): Promise<Availability> => {
    const probe = await probeModels();
    let availability: Availability;
    if (!probe.ok) {
      availability = { available: false, reason: probe.reason };
    } else {
      const { response } = probe;
      const status = response.status;
      const unavailable = status === 401 || status === 403 || status >= 500 || (status === 404 && !staticModels);
      if (unavailable) {
        const message = extractErrorMessage(await readBoundedText(response.body, ERROR_BODY_LIMIT_BYTES));
        const why = `HTTP ${status}${message ? `: ${message}` : ''}`;
        availability = { available: false, reason: redact(`GET ${modelsURL} failed: ${why}`) };
      } else {
        response.body?.cancel().catch(() => {});
        availability = { available: true };
      }
    }
    availabilityCache = { availability, expiresAt: Date.now() + AVAILABILITY_CACHE_MS };
    return availability;
  };

  const checkAvailability = async (): Promise<Availability> => {
    if (availabilityCache && availabilityCache.expiresAt > Date.now()) return { ...availabilityCache.availability };
    availabilityCheck ??= probeAvailability()
      .catch((error: unknown): Availability => ({ available: false, reason: redact(`GET ${modelsURL} failed: ${describeError(error)}`) }))
      .finally(() => {
        availabilityCheck = undefined;
      });
    return { ...(await availabilityCheck) };
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

  async function* streamChat(request: ChatRequest, { signal }: StreamOptions): AsyncGenerator<ChatStreamPart> {
    signal.throwIfAborted();

    // One controller for our own aborts (timeouts, early exit); fetch sees it combined with the caller's.
    const requestController = new AbortController();
    const fetchSignal = AbortSignal.any([signal, requestController.signal]);
    let timedOut: 'connect' | 'idle' | undefined;
    let waitingForRead = false;
    let connectTimer: NodeJS.Timeout | undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let bodyFinished = false;

    /** Rethrows the caller's abort reason when the caller aborted; otherwise returns. */
    const rethrowIfCallerAborted = (): void => {
      if (signal.aborted) throw signal.reason;
    };

    try {
      connectTimer = setTimeout(() => {
        timedOut = 'connect';
        requestController.abort(new TimeoutAbort(`no response headers within ${config.connectTimeoutMs} ms`));
      }, config.connectTimeoutMs);

      let response: Response;
      try {
        response = await fetchImplementation(chatURL, {
          method: 'POST',
          headers: { ...commonHeaders('text/event-stream'), 'Content-Type': 'application/json' },
          body: buildBody(request),
          signal: fetchSignal,
        });
      } catch (error) {
        rethrowIfCallerAborted();
        if (timedOut === 'connect') {
          throw providerError(
            'UPSTREAM_TIMEOUT',
            `upstream ${providerId} sent no response headers within ${config.connectTimeoutMs} ms`,
            { cause: error },
          );
        }
        throw providerError('UPSTREAM_ERROR', `cannot reach upstream ${providerId}: ${describeError(error) || 'network error'}`, {
          cause: error,
        });
      } finally {
        clearTimeout(connectTimer);
      }

      // From here on, the idle timer watches every body read (it only fires while a read is pending,
      // so a slow consumer never trips it).
      idleTimer = setTimeout(() => {
        if (!waitingForRead) return;
        timedOut = 'idle';
        requestController.abort(new TimeoutAbort(`no data for ${config.idleTimeoutMs} ms`));
      }, config.idleTimeoutMs);

      if (!response.ok) {
        waitingForRead = true;
        const bodyText = await readBoundedText(response.body, ERROR_BODY_LIMIT_BYTES);
        waitingForRead = false;
        rethrowIfCallerAborted();
        bodyFinished = true;
        const status = response.status;
        const upstreamMessage = extractErrorMessage(bodyText) || response.statusText;
        const retryAfterMs = parseRetryAfterMs(response.headers);
        throw providerError(
          codeForStatus(status),
          `upstream ${providerId} answered ${status}${upstreamMessage ? `: ${upstreamMessage}` : ''}`,
          { statusCode: status, ...(retryAfterMs !== undefined && { retryAfterMs }) },
        );
      }
      if (!response.body) {
        throw providerError('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} answered ${response.status} with no body`, {
          statusCode: response.status,
        });
      }

      // ---- the SSE body -----------------------------------------------------------------------
      // The parser's callback only records what each event says; the loop below turns one
      // network read into at most one text-delta part (coalescing, see pitfalls.md).
      let pendingText = '';
      let finishReason: FinishReason | undefined;
      let usage: Usage | undefined;
      let doneReceived = false;
      let streamError: ProviderError | undefined;

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
        if (choice) {
          const content = choice.delta?.content;
          if (content) pendingText += content;
          if (choice.finish_reason) finishReason = mapFinishReason(choice.finish_reason);
        }
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
      const finishPart = (): ChatStreamPart =>
        usage ? { type: 'finish', finishReason: finishReason ?? 'stop', usage } : { type: 'finish', finishReason: finishReason ?? 'stop' };

      reader = response.body.getReader();
      for (;;) {
        rethrowIfCallerAborted();
        let result: ReadableStreamReadResult<Uint8Array>;
        waitingForRead = true;
        idleTimer.refresh();
        try {
          result = await reader.read();
        } catch (error) {
          rethrowIfCallerAborted();
          if (timedOut === 'idle') {
            throw providerError(
              'UPSTREAM_TIMEOUT',
              `upstream ${providerId} sent nothing for ${config.idleTimeoutMs} ms (idle timeout)`,
              { cause: error },
            );
          }
          throw providerError(
            'UPSTREAM_CONNECTION_LOST',
            `connection to upstream ${providerId} lost mid-stream: ${describeError(error) || 'network error'}`,
            { cause: error },
          );
        } finally {
          waitingForRead = false;
        }

        if (result.done) {
          bodyFinished = true;
          if (!streamError && !doneReceived) parser.feed(decoder.decode());
          if (pendingText) {
            yield { type: 'text-delta', text: pendingText };
            pendingText = '';
          }
          if (streamError) throw streamError;
          if (doneReceived || finishReason !== undefined) {
            yield finishPart();
            return;
          }
          throw providerError('UPSTREAM_CONNECTION_LOST', `upstream ${providerId} stream ended before [DONE]`);
        }

        parser.feed(decoder.decode(result.value, { stream: true }));
        if (pendingText) {
          const text = pendingText;
          pendingText = '';
          yield { type: 'text-delta', text };
        }
        if (streamError) throw streamError;
        if (doneReceived) {
          yield finishPart();
          // Read the (usually already buffered) end of the body so the connection can be reused.
          await drainBody(reader);
          bodyFinished = true;
          return;
        }
      }
    } finally {
      clearTimeout(connectTimer);
      clearTimeout(idleTimer);
      if (!bodyFinished) {
        // Early exit (caller abort, consumer stopped, error): close the upstream connection.
        requestController.abort(new TimeoutAbort('stream closed by the gateway'));
        reader?.cancel().catch(() => {});
      }
    }

    /** Reads what follows `[DONE]` until the body ends, with the idle timeout; never throws. */
    async function drainBody(bodyReader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
      try {
        for (;;) {
          waitingForRead = true;
          idleTimer?.refresh();
          const { done } = await bodyReader.read();
          waitingForRead = false;
          if (done) return;
        }
      } catch {
        // the content is complete; a broken tail does not matter
      } finally {
        waitingForRead = false;
      }
    }
  }

  return {
    id: providerId,
    label: config.label ?? config.id,
    capabilities: ['chat'],
    listModels,
    checkAvailability,
    streamChat,
  };
}
