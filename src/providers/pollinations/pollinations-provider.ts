/**
 * The `pollinations` provider: free images and chat from Pollinations, no key
 * (`docs/protocols.md` §4).
 *
 * - Images: `GET {imageBaseURL}/prompt/{url-encoded prompt}?width=…&height=…&model=…&seed=…&nologo=true`
 *   answers the image bytes themselves (`image/jpeg`), in some deployments after a redirect
 *   (`pollinations-endpoints.ts`, `fetch-pollinations-image.ts`, `generate-pollinations-images.ts`).
 * - Chat: the OpenAI-compatible endpoint at `{textBaseURL}` (protocols.md §2), served by the
 *   OpenAI-compatible provider.
 * - `GET {imageBaseURL}/models` lists the image models (used as the availability probe).
 */
import { cacheAvailability, probeTimeoutFor, probeUnavailability } from '../cached-availability.js';
import { createProviderErrors, describeError } from '../http-errors.js';
import { OPENAI_COMPATIBLE_CHAT_CAPABILITIES } from '../openai-compatible/openai-compatible-model-catalog.js';
import { createOpenAICompatibleProvider } from '../openai-compatible/openai-compatible-provider.js';
import type { Availability, ChatProvider, ImageProvider, ImageRequest, ModelDescriptor, ProviderError, StreamOptions } from '../provider.js';
import { generatePollinationsImages } from './generate-pollinations-images.js';
import { resolvePollinationsEndpoints } from './pollinations-endpoints.js';

/** The provider id (also the chat provider's id). */
const PROVIDER_ID = 'pollinations';
/** Default time one image request may take, from sending it to its last byte, ms. */
const DEFAULT_DOWNLOAD_TIMEOUT_MS = 60_000;
/** Default largest image accepted, bytes. */
const DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024;

/** Settings of {@link createPollinationsProvider}. Durations in ms. */
export interface PollinationsProviderOptions {
  /** Base of the image endpoint, e.g. `https://image.pollinations.ai` (a trailing `/` is ignored). */
  imageBaseURL: string;
  /** Base of the OpenAI-compatible text endpoint, e.g. `https://text.pollinations.ai/openai`. */
  textBaseURL: string;
  /** Image model ids, e.g. `['flux', 'turbo']`; sent as `model=`. */
  imageModels: string[];
  /** Chat model ids, e.g. `['openai']`. */
  textModels: string[];
  /** Chat: time allowed for the response headers, ms. Also caps the availability probe (at most 5 000 ms). */
  connectTimeoutMs: number;
  /** Chat: longest silence allowed between two stream chunks, ms. */
  idleTimeoutMs: number;
  /**
   * Time one image request may take from sending it to its last byte, ms (Pollinations only answers
   * once the image is generated, so this covers the generation). Default 60 000.
   */
  downloadTimeoutMs?: number;
  /** Largest image accepted, bytes. Default 20 MiB (20 971 520). */
  maxImageBytes?: number;
}

/** Injectable dependencies of {@link createPollinationsProvider}. */
export interface PollinationsProviderDependencies {
  /** The fetch implementation for every request (images, probe and chat); defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** A source of numbers in [0, 1) for random base seeds; defaults to `Math.random`. */
  random?: () => number;
}

/**
 * Creates the `pollinations` provider (`docs/protocols.md` §4). Id `pollinations`,
 * label `Pollinations`, capabilities `['chat', 'image']`.
 *
 * - `streamChat` is the OpenAI-compatible provider's (§2) for `textBaseURL` with `textModels`, no
 *   key, `connectTimeoutMs` and `idleTimeoutMs`: same parts, same errors (provider `pollinations`).
 * - `listModels()` returns `textModels` with the OpenAI-compatible chat capabilities (`['chat',
 *   'tools', 'vision', 'json-schema', 'reasoning']`: the text endpoint is the authority and refuses
 *   what a model cannot do with its own 400), then `imageModels` with `['image']` (an id in both is
 *   listed once with both). Never asks the network, never throws.
 * - `checkAvailability()` sends `GET {imageBaseURL}/models` with a timeout of
 *   `min(connectTimeoutMs, 5000)` ms and reuses the answer for 30 000 ms. Unavailable
 *   (`reason: "GET <url> failed: <why>"`) when unreachable, on a timeout or on 5xx; any other
 *   status counts as available. Never throws.
 * - `generateImages(request, { signal })` sends `request.n` requests at once, each
 *   `GET {imageBaseURL}/prompt/{encodeURIComponent(prompt)}?width=W&height=H&model=M&seed=S&nologo=true`
 *   (plus `negative_prompt=` when given). `W`×`H` in pixels comes from `resolveImageSize` with
 *   `POLLINATIONS_IMAGE_SIZE_RULES` (`generate-pollinations-images.ts`). Seeds: `request.seed`,
 *   `seed + 1`, … when a seed is given, else a random base seed in [0, 10⁹) plus the index, so the
 *   `n` images differ. Redirects are followed. Each reply body is the image; it yields
 *   `{ type: 'image', image: { data, mimeType, url, width, height, seed } }` as each request
 *   completes (so in completion order), with
 *   `mimeType` from `Content-Type` (parameters dropped), `url` the request URL (it holds no
 *   secret; requesting it again gives the same image), `width`/`height` the pixels asked for and
 *   `seed` the seed sent; then one `finish` part. Bytes are passed through unchecked (the caller
 *   sniffs them) unless `Content-Type` names a non-image type.
 *
 *   It throws {@link ProviderError} (provider `pollinations`): for a non-2xx reply the code of
 *   its status (401 `UNAUTHORIZED`, 403 `FORBIDDEN`, 404 `UPSTREAM_NOT_FOUND`, 408/504
 *   `UPSTREAM_TIMEOUT`, 429 `RATE_LIMITED` with `retryAfterMs`, other 4xx `UPSTREAM_BAD_REQUEST`,
 *   5xx `UPSTREAM_ERROR`) and `statusCode`; `UPSTREAM_TIMEOUT` when one request takes longer than
 *   `downloadTimeoutMs`; `UPSTREAM_ERROR` when the host cannot be reached; `UPSTREAM_BAD_RESPONSE`
 *   for an empty body, a body larger than `maxImageBytes` bytes, or a 2xx reply whose
 *   `Content-Type` is neither `image/*` nor `application/octet-stream` (e.g. an HTML or JSON error
 *   page); `UPSTREAM_CONNECTION_LOST` when a body breaks. When one of the `n` requests fails, the
 *   others are aborted and the first failure is thrown. When `signal` aborts, every request in
 *   flight is aborted (its connection closes) and the iterator throws `signal.reason`; a consumer
 *   that stops iterating early aborts them too.
 *
 * @param options endpoints, models, timeouts (ms) and the image size cap (bytes); see {@link PollinationsProviderOptions}.
 * @param dependencies an injected `fetch` and random source.
 */
export function createPollinationsProvider(
  options: PollinationsProviderOptions,
  dependencies: PollinationsProviderDependencies = {},
): ChatProvider & ImageProvider {
  const fetchImplementation = dependencies.fetch ?? globalThis.fetch;
  const endpoints = resolvePollinationsEndpoints(options.imageBaseURL);
  const modelsURL = endpoints.modelsURL;
  const probeTimeoutMs = probeTimeoutFor(options.connectTimeoutMs);
  const generationSettings = {
    image: {
      fetch: fetchImplementation,
      providerId: PROVIDER_ID,
      errors: createProviderErrors(PROVIDER_ID),
      downloadTimeoutMs: options.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS,
      maxImageBytes: options.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES,
    },
    endpoints,
    random: dependencies.random ?? Math.random,
  };

  const chat = createOpenAICompatibleProvider(
    {
      id: PROVIDER_ID,
      label: 'Pollinations',
      baseURL: options.textBaseURL,
      models: options.textModels,
      connectTimeoutMs: options.connectTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
    },
    dependencies.fetch ? { fetch: dependencies.fetch } : {},
  );

  const listModels = async (): Promise<ModelDescriptor[]> => {
    const models = new Map<string, ModelDescriptor>();
    for (const id of options.textModels) models.set(id, { id, capabilities: [...OPENAI_COMPATIBLE_CHAT_CAPABILITIES] });
    for (const id of options.imageModels) {
      const existing = models.get(id);
      if (!existing) models.set(id, { id, capabilities: ['image'] });
      else if (!existing.capabilities.includes('image')) existing.capabilities.push('image');
    }
    return [...models.values()];
  };

  const probeAvailability = async (): Promise<Availability> => {
    const reason = await probeUnavailability(fetchImplementation, modelsURL, {
      headers: { Accept: 'application/json' },
      timeoutMs: probeTimeoutMs,
      isUnavailable: (status) => status >= 500,
    });
    return reason === undefined ? { available: true } : { available: false, reason };
  };

  return {
    id: PROVIDER_ID,
    label: 'Pollinations',
    capabilities: ['chat', 'image'],
    listModels,
    checkAvailability: cacheAvailability(probeAvailability, (error) => `GET ${modelsURL} failed: ${describeError(error)}`),
    streamChat: chat.streamChat,
    generateImages: (request: ImageRequest, streamOptions: StreamOptions) => generatePollinationsImages(generationSettings, request, streamOptions),
  };
}
