/**
 * The `pollinations` provider: free images and chat from Pollinations, no key
 * (`docs/protocols.md` §4).
 *
 * - Images: `GET {imageBaseURL}/prompt/{url-encoded prompt}?width=…&height=…&model=…&seed=…&nologo=true`
 *   answers the image bytes themselves (`image/jpeg`), in some deployments after a redirect.
 * - Chat: the OpenAI-compatible endpoint at `{textBaseURL}` (protocols.md §2), served by the
 *   OpenAI-compatible provider.
 * - `GET {imageBaseURL}/models` lists the image models (used as the availability probe).
 */
import { cacheAvailability, probeTimeoutFor, probeUnavailability } from '../cached-availability.js';
import { createOpenAICompatibleProvider } from '../openai-compatible/openai-compatible-provider.js';
import {
  BodyTooLargeError,
  ERROR_BODY_LIMIT_BYTES,
  TimeoutAbort,
  describeError,
  extractErrorMessage,
  readBoundedBytes,
  readBoundedText,
  readHttpFailure,
} from '../http-errors.js';
import { resolveImageSize, type ImageSizeRules } from '../image-size.js';
import {
  ProviderError,
  type Availability,
  type ChatProvider,
  type ImageProvider,
  type ImageRequest,
  type ImageStreamPart,
  type ModelDescriptor,
  type ProviderErrorCode,
  type ProviderImage,
  type StreamOptions,
} from '../provider.js';

/** The provider id (also the chat provider's id). */
const PROVIDER_ID = 'pollinations';
/** Default time one image request may take, from sending it to its last byte, ms. */
const DEFAULT_DOWNLOAD_TIMEOUT_MS = 60_000;
/** Default largest image accepted, bytes. */
const DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024;
/** Random base seeds are drawn from 0 up to (not including) this. */
const RANDOM_SEED_LIMIT = 1_000_000_000;

/**
 * Sizes Pollinations is asked for, pixels: 1024x1024 by default, and the sizes its clients use
 * for the common ratios (protocols.md §4: 1:1 → 1024×1024, 16:9 → 832×480, 9:16 → 480×832);
 * other ratios keep about the default area.
 */
export const POLLINATIONS_IMAGE_SIZE_RULES: ImageSizeRules = {
  defaultWidth: 1024,
  defaultHeight: 1024,
  aspectRatioSizes: { '1:1': [1024, 1024], '16:9': [832, 480], '9:16': [480, 832] },
};

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

/** `image/jpeg; charset=…` → `image/jpeg`; undefined when absent or empty. */
function mediaTypeOf(contentType: string | null): string | undefined {
  const mediaType = contentType?.split(';', 1)[0]?.trim().toLowerCase();
  return mediaType ? mediaType : undefined;
}

/**
 * Creates the `pollinations` provider (`docs/protocols.md` §4). Id `pollinations`,
 * label `Pollinations`, capabilities `['chat', 'image']`.
 *
 * - `streamChat` is the OpenAI-compatible provider's (§2) for `textBaseURL` with `textModels`, no
 *   key, `connectTimeoutMs` and `idleTimeoutMs`: same parts, same errors (provider `pollinations`).
 * - `listModels()` returns `textModels` with `['chat']`, then `imageModels` with `['image']` (an id
 *   in both is listed once with both). Never asks the network, never throws.
 * - `checkAvailability()` sends `GET {imageBaseURL}/models` with a timeout of
 *   `min(connectTimeoutMs, 5000)` ms and reuses the answer for 30 000 ms. Unavailable
 *   (`reason: "GET <url> failed: <why>"`) when unreachable, on a timeout or on 5xx; any other
 *   status counts as available. Never throws.
 * - `generateImages(request, { signal })` sends `request.n` requests at once, each
 *   `GET {imageBaseURL}/prompt/{encodeURIComponent(prompt)}?width=W&height=H&model=M&seed=S&nologo=true`
 *   (plus `negative_prompt=` when given). `W`×`H` in pixels comes from {@link resolveImageSize} with
 *   {@link POLLINATIONS_IMAGE_SIZE_RULES}. Seeds: `request.seed`, `seed + 1`, … when a seed is
 *   given, else a random base seed in [0, 10⁹) plus the index, so the `n` images differ. Redirects
 *   are followed. Each reply body is the image; it yields `{ type: 'image', image: { data, mimeType,
 *   url, width, height, seed } }` as each request completes (so in completion order), with
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
  const random = dependencies.random ?? Math.random;
  const imageBaseURL = options.imageBaseURL.replace(/\/+$/, '');
  const modelsURL = `${imageBaseURL}/models`;
  const probeTimeoutMs = probeTimeoutFor(options.connectTimeoutMs);
  const downloadTimeoutMs = options.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
  const maxImageBytes = options.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES;

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

  const providerError = (
    code: ProviderErrorCode,
    message: string,
    extra: { statusCode?: number; retryAfterMs?: number; cause?: unknown } = {},
  ): ProviderError => new ProviderError({ code, provider: PROVIDER_ID, message, ...extra });

  // ---- models and availability -----------------------------------------------------------------

  const listModels = async (): Promise<ModelDescriptor[]> => {
    const models = new Map<string, ModelDescriptor>();
    for (const id of options.textModels) models.set(id, { id, capabilities: ['chat'] });
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

  const checkAvailability = cacheAvailability(probeAvailability, (error) => `GET ${modelsURL} failed: ${describeError(error)}`);

  // ---- images ------------------------------------------------------------------------------------

  /** `GET …/prompt/{prompt}?…` for one image. */
  const imageURL = (request: ImageRequest, width: number, height: number, seed: number): string => {
    const parameters = new URLSearchParams({
      width: String(width),
      height: String(height),
      model: request.model,
      seed: String(seed),
      nologo: 'true',
    });
    if (request.negativePrompt !== undefined && request.negativePrompt !== '') parameters.set('negative_prompt', request.negativePrompt);
    return `${imageBaseURL}/prompt/${encodeURIComponent(request.prompt)}?${parameters.toString()}`;
  };

  /**
   * Fetches one image. `groupSignal` aborts when the caller aborts or a sibling request failed;
   * its reason is thrown then (the generator decides what the caller sees).
   */
  const fetchImage = async (
    url: string,
    size: { width: number; height: number },
    seed: number,
    groupSignal: AbortSignal,
  ): Promise<ProviderImage> => {
    const timeoutController = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      timeoutController.abort(new TimeoutAbort(`no complete image within ${downloadTimeoutMs} ms`));
    }, downloadTimeoutMs);
    const timeoutError = (cause: unknown) =>
      providerError('UPSTREAM_TIMEOUT', `upstream ${PROVIDER_ID} sent no complete image within ${downloadTimeoutMs} ms`, { cause });
    try {
      let response: Response;
      try {
        response = await fetchImplementation(url, {
          method: 'GET',
          headers: { Accept: 'image/*' },
          redirect: 'follow',
          signal: AbortSignal.any([groupSignal, timeoutController.signal]),
        });
      } catch (error) {
        if (groupSignal.aborted) throw groupSignal.reason;
        if (timedOut) throw timeoutError(error);
        throw providerError('UPSTREAM_ERROR', `cannot reach upstream ${PROVIDER_ID}: ${describeError(error) || 'network error'}`, {
          cause: error,
        });
      }

      if (!response.ok) {
        const failure = await readHttpFailure(response);
        if (groupSignal.aborted) throw groupSignal.reason;
        throw providerError(
          failure.code,
          `upstream ${PROVIDER_ID} answered ${failure.statusCode}${failure.upstreamMessage ? `: ${failure.upstreamMessage}` : ''}`,
          { statusCode: failure.statusCode, ...(failure.retryAfterMs !== undefined && { retryAfterMs: failure.retryAfterMs }) },
        );
      }

      const mimeType = mediaTypeOf(response.headers.get('content-type'));
      if (mimeType !== undefined && !mimeType.startsWith('image/') && mimeType !== 'application/octet-stream') {
        const message = extractErrorMessage(await readBoundedText(response.body, ERROR_BODY_LIMIT_BYTES));
        if (groupSignal.aborted) throw groupSignal.reason;
        throw providerError(
          'UPSTREAM_BAD_RESPONSE',
          `upstream ${PROVIDER_ID} answered ${response.status} with ${mimeType} instead of an image${message ? `: ${message}` : ''}`,
          { statusCode: response.status },
        );
      }
      const declaredLength = Number(response.headers.get('content-length') ?? Number.NaN);
      if (Number.isFinite(declaredLength) && declaredLength > maxImageBytes) {
        response.body?.cancel().catch(() => {});
        throw providerError('UPSTREAM_BAD_RESPONSE', `upstream ${PROVIDER_ID} sent an image larger than ${maxImageBytes} bytes`, {
          statusCode: response.status,
        });
      }

      let data: Uint8Array;
      try {
        data = await readBoundedBytes(response.body, maxImageBytes);
      } catch (error) {
        if (groupSignal.aborted) throw groupSignal.reason;
        if (error instanceof BodyTooLargeError) {
          throw providerError('UPSTREAM_BAD_RESPONSE', `upstream ${PROVIDER_ID} sent an image larger than ${maxImageBytes} bytes`, {
            statusCode: response.status,
          });
        }
        if (timedOut) throw timeoutError(error);
        throw providerError(
          'UPSTREAM_CONNECTION_LOST',
          `connection to upstream ${PROVIDER_ID} lost while reading an image: ${describeError(error) || 'network error'}`,
          { cause: error },
        );
      }
      if (data.byteLength === 0) {
        throw providerError('UPSTREAM_BAD_RESPONSE', `upstream ${PROVIDER_ID} answered ${response.status} with an empty body`, {
          statusCode: response.status,
        });
      }
      return { data, ...(mimeType !== undefined && { mimeType }), url, width: size.width, height: size.height, seed };
    } finally {
      clearTimeout(timer);
    }
  };

  type Outcome = { index: number; image: ProviderImage } | { index: number; error: unknown };

  async function* generateImages(request: ImageRequest, { signal }: StreamOptions): AsyncGenerator<ImageStreamPart> {
    signal.throwIfAborted();
    const size = resolveImageSize(request, POLLINATIONS_IMAGE_SIZE_RULES);
    const count = Math.max(1, Math.floor(request.n));
    const baseSeed = request.seed ?? Math.floor(random() * RANDOM_SEED_LIMIT);
    const groupController = new AbortController();
    const groupSignal = AbortSignal.any([signal, groupController.signal]);
    const pending = new Map<number, Promise<Outcome>>();
    for (let index = 0; index < count; index++) {
      const seed = baseSeed + index;
      const outcome = fetchImage(imageURL(request, size.width, size.height, seed), size, seed, groupSignal).then(
        (image): Outcome => ({ index, image }),
        (error: unknown): Outcome => ({ index, error }),
      );
      pending.set(index, outcome);
    }

    let completed = false;
    try {
      while (pending.size > 0) {
        const outcome = await Promise.race(pending.values());
        pending.delete(outcome.index);
        if (signal.aborted) throw signal.reason;
        if ('error' in outcome) throw outcome.error;
        yield { type: 'image', image: outcome.image };
      }
      completed = true;
      yield { type: 'finish' };
    } finally {
      // A failure, the caller's abort or a consumer that stopped: close every request still open.
      if (!completed) groupController.abort(new TimeoutAbort('image requests closed by the gateway'));
    }
  }

  return {
    id: PROVIDER_ID,
    label: 'Pollinations',
    capabilities: ['chat', 'image'],
    listModels,
    checkAvailability,
    streamChat: chat.streamChat,
    generateImages,
  };
}
