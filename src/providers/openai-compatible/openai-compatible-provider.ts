/**
 * A chat (and optionally image) provider for any OpenAI-compatible upstream (OpenAI, Groq,
 * Together, OpenRouter, Ollama's `/v1`, vLLM, LM Studio, llama.cpp's server, LocalAI,
 * Pollinations, …): the wiring of this folder's parts.
 *
 * Wire format: `docs/protocols.md` §2 (chat chunks as described in §1):
 * `POST {baseURL}/chat/completions` with `stream: true` answers server-sent events, one
 * `data: {chat.completion.chunk}` per event and a final `data: [DONE]`; `GET {baseURL}/models`
 * answers `{"object":"list","data":[{"id",…}]}`; `POST {baseURL}/images/generations` answers
 * `{"created":…,"data":[{"url"}|{"b64_json"},…]}`; errors are `{"error":{"message","type","code"}}`
 * with an HTTP status.
 *
 * - where and how to call: `openai-compatible-endpoints.ts` (URLs, headers, the bearer key);
 * - wire shapes: `openai-compatible-api.ts`;
 * - one request with its connect and idle timeouts: `openai-compatible-exchange.ts`;
 * - chat: `build-openai-chat-body.ts`, `openai-chat-stream-reader.ts` (SSE → parts),
 *   `map-openai-finish-reason.ts`, `map-openai-usage.ts`, `stream-openai-chat.ts`;
 * - images: `build-openai-image-body.ts`, `convert-openai-image-reply.ts`, `generate-openai-images.ts`;
 * - models and availability: `openai-compatible-model-catalog.ts`.
 */
import { createProviderErrors, redactingSecret } from '../http-errors.js';
import type { ChatProvider, ImageRequest, ProviderError, StreamOptions } from '../provider.js';
import { generateOpenAIImages } from './generate-openai-images.js';
import { resolveOpenAICompatibleEndpoints } from './openai-compatible-endpoints.js';
import { createOpenAICompatibleModelCatalog } from './openai-compatible-model-catalog.js';
import type { OpenAICompatibleUpstream } from './openai-compatible-upstream.js';
import { streamOpenAIChat } from './stream-openai-chat.js';

/** Injectable dependencies of {@link createOpenAICompatibleProvider}. */
export interface OpenAICompatibleProviderOptions {
  /**
   * The fetch implementation for model discovery, availability probes and image requests; defaults
   * to the global `fetch` (Node's undici). Chat streams use undici's `request` API instead (see
   * `OpenAICompatibleExchange.stream`).
   */
  fetch?: typeof fetch;
}

/**
 * Creates the provider of one OpenAI-compatible upstream (`docs/protocols.md` §2).
 *
 * - `id` is `config.id`, `label` is `config.label ?? config.id`, capabilities `['chat']`, or
 *   `['chat', 'image']` when `config.imageModels` is non-empty.
 * - `listModels()` returns `config.models` when configured, else the ids of
 *   `GET {baseURL}/models` (reused for 60 000 ms), all with `['chat', 'tools', 'vision',
 *   'json-schema', 'reasoning']` (the upstream is the authority on features and refuses what a model
 *   cannot do with its own 400, `UPSTREAM_BAD_REQUEST`); never throws: no chat models when
 *   discovery fails. Each of `config.imageModels` (never discovered) follows with `['image']`; a
 *   configured image model id drops out of the discovered chat list, and an id in both `models`
 *   and `imageModels` is listed once with both sets.
 * - `checkAvailability()` sends `GET {baseURL}/models` with a timeout of
 *   `min(config.connectTimeoutMs, 5000)` ms and reuses the answer for 30 000 ms. Unavailable
 *   (`reason: "GET <url> failed: <why>"`) when unreachable, on a timeout, on 401/403/5xx, or on
 *   404 when no models (chat or image) are configured; a 404 with configured models counts as
 *   available (many servers do not implement `/models`). Never throws.
 * - `streamChat(request, { signal, abort })` streams `POST {baseURL}/chat/completions` (`stream: true`,
 *   `stream_options.include_usage: true`; messages with image parts, tool calls and tool results,
 *   `tools`, `tool_choice`, `parallel_tool_calls`, `response_format` and `reasoning_effort` in the
 *   shapes of https://platform.openai.com/docs/api-reference/chat/create, see
 *   `build-openai-chat-body.ts`) as `text-delta` parts — one per network read, holding all text
 *   that read carried, except that the first content goes out as soon as its event is parsed (the
 *   rest of that read follows) — with `reasoning-delta` parts for `delta.reasoning_content` /
 *   `delta.reasoning` and `tool-call-delta` parts for `delta.tool_calls[]` pieces (by `index`; id
 *   and name with a call's first piece), followed by exactly one `finish` part with the reason
 *   (`tool_calls` and the legacy `function_call` → `tool-calls`) and usage.
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
 *   `resolveImageSize` with `OPENAI_IMAGE_SIZE_RULES` of `build-openai-image-body.ts`: default 1024x1024, 16:9 →
 *   1792x1024, 9:16 → 1024x1792), the same headers and timeouts as chat (the response-headers
 *   timeout is the larger of `connectTimeoutMs` and `imageTimeoutMs`), and reads the JSON
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
 *   `imageModels`, `headers`, and the timeouts `connectTimeoutMs`, `idleTimeoutMs` and
 *   `imageTimeoutMs` in ms; see {@link OpenAICompatibleUpstream}.
 * @param options.fetch a fetch implementation to use instead of the global one.
 */
export function createOpenAICompatibleProvider(
  config: OpenAICompatibleUpstream,
  options: OpenAICompatibleProviderOptions = {},
): ChatProvider {
  const fetchImplementation = options.fetch ?? globalThis.fetch;
  const endpoints = resolveOpenAICompatibleEndpoints(config);
  const errors = createProviderErrors(config.id, config.apiKey);
  const exchange = { fetch: fetchImplementation, providerId: config.id, idleTimeoutMs: config.idleTimeoutMs, errors };
  const catalog = createOpenAICompatibleModelCatalog({ upstream: config, endpoints, fetch: fetchImplementation, errors });
  const chatSettings = { exchange, endpoints, connectTimeoutMs: config.connectTimeoutMs };
  /** Image endpoints answer only once the image exists, so they get the longer image timeout. */
  const imageSettings = { exchange, endpoints, timeoutMs: Math.max(config.connectTimeoutMs, config.imageTimeoutMs ?? 0) };
  const servesImages = (config.imageModels ?? []).length > 0;

  return {
    id: config.id,
    label: config.label ?? config.id,
    capabilities: servesImages ? ['chat', 'image'] : ['chat'],
    listModels: catalog.listModels,
    checkAvailability: catalog.checkAvailability,
    // A request's own key is redacted from errors too (upstreams echo keys: "Incorrect API key provided: …").
    streamChat: (request, streamOptions) =>
      request.apiKey
        ? redactingSecret(streamOpenAIChat(chatSettings, request, streamOptions), request.apiKey)
        : streamOpenAIChat(chatSettings, request, streamOptions),
    ...(servesImages && {
      generateImages: (request: ImageRequest, streamOptions: StreamOptions) =>
        request.apiKey
          ? redactingSecret(generateOpenAIImages(imageSettings, request, streamOptions), request.apiKey)
          : generateOpenAIImages(imageSettings, request, streamOptions),
    }),
  };
}
