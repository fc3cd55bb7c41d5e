/**
 * The `hf-space` image provider: Gradio image Spaces on Hugging Face (FLUX.1-schnell and the like)
 * spoken to over Gradio's two-step "call" API, `docs/protocols.md` §3:
 *
 * 1. `POST {baseURL}/call/{endpoint}` with `{"data":[…]}` (and `Authorization: Bearer <token>`
 *    when a token is configured) answers `{"event_id":"…"}`.
 * 2. `GET {baseURL}/call/{endpoint}/{event_id}` answers `text/event-stream` frames
 *    `event: <type>\ndata: <json>\n\n` where the type is `generating` (progress, data may be a
 *    partial output or null), `heartbeat` (data null), `complete` (data is the output list, the
 *    image is a Gradio file object `{path, url, size, orig_name, mime_type, is_stream, meta}`) or
 *    `error` (data is a message or null). The stream may end without `complete` (a queue hiccup):
 *    it is then read again, a bounded number of times and within a total time.
 *
 * Each configured space is one image model. The provider hands out the image's URL on the space;
 * it never downloads the bytes (the generation service does). This file is the wiring of the
 * folder's parts:
 *
 * - where and how to call: `gradio-endpoints.ts`; wire shapes: `gradio-api.ts`;
 * - the requests of a generation with their timeouts: `gradio-exchange.ts`;
 * - what is sent: `build-space-data.ts`; what comes back: `read-gradio-result.ts` (SSE),
 *   `map-gradio-progress.ts`, `convert-gradio-output.ts`;
 * - one call: `run-gradio-call.ts`; the `n` calls of a generation: `generate-space-images.ts`.
 */
import { cacheAvailability, probeTimeoutFor, probeUnavailability } from '../cached-availability.js';
import { createProviderErrors, describeError } from '../http-errors.js';
import type { Availability, ImageProvider, ImageRequest, ImageStreamPart, ModelDescriptor, ProviderError, StreamOptions } from '../provider.js';
import { generateSpaceImages } from './generate-space-images.js';
import { gradioHeadersFor, resolveGradioEndpoints } from './gradio-endpoints.js';
import type { HuggingFaceSpace } from './hugging-face-space.js';

/** Settings of {@link createHuggingFaceSpaceProvider}. Durations in ms. */
export interface HuggingFaceSpaceProviderOptions {
  /** The spaces served, one image model each (`Config.huggingFaceSpaces`); `baseURL` without a trailing `/`. */
  spaces: HuggingFaceSpace[];
  /** Hugging Face token sent as `Authorization: Bearer …` to every space; never logged or put in errors. */
  token?: string;
  /** Whole time one generation (all `n` images, every read) may take, ms (`Config.huggingFaceSpaceTimeoutMs`). */
  timeoutMs: number;
  /** Reads of a result stream that ends without `complete` before giving up, at least 1 (`Config.huggingFaceSpaceMaxReads`). */
  maxReads: number;
  /** Time allowed for the response headers of each request, ms; default 10 000. */
  connectTimeoutMs?: number;
}

/** Injectable dependencies of {@link createHuggingFaceSpaceProvider}. */
export interface HuggingFaceSpaceProviderDependencies {
  /** The fetch implementation to use; defaults to the global `fetch` (Node's undici). */
  fetch?: typeof fetch;
}

const PROVIDER_ID = 'hf-space';
const PROVIDER_LABEL = 'Hugging Face Spaces';
/** Default time allowed for response headers, ms. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Creates the `hf-space` provider (`docs/protocols.md` §3): id `hf-space`, label
 * `Hugging Face Spaces`, capabilities `['image']`, one image model per space
 * (`{ id: space.model, capabilities: ['image'] }`).
 *
 * - `listModels()` lists the configured spaces; never throws.
 * - `checkAvailability()` sends `GET {baseURL}/config` to every space (Gradio serves its config
 *   there) with a timeout of `min(connectTimeoutMs, 5000)` ms, and reuses the answer for 30 000 ms.
 *   Available when at least one space answers 2xx; otherwise `reason` names each failing space and
 *   why, e.g. `flux-1-schnell: GET https://…/config failed: connect ECONNREFUSED 127.0.0.1:9`.
 *   Never throws; never contains the token.
 * - `generateImages(request, { signal })` runs `request.n` calls in parallel, each
 *   `POST {baseURL}/call/{endpoint}` then `GET {baseURL}/call/{endpoint}/{event_id}`, and yields
 *   `progress` parts (one per `generating` event; consecutive identical ones are collapsed), each
 *   `image` part as soon as its call completes (`url` on the space, `mimeType`, `width`/`height`
 *   in pixels as sent, `seed` from the output's `seedIndex` when it is a number), then `finish`.
 *   The size is `resolveImageSize` with the space's defaults, rounded down to a multiple of 8 and at
 *   least 32; steps default to `space.defaultSteps`; no seed → seed 0 with randomize true.
 *   It throws {@link ProviderError}:
 *   `UNAUTHORIZED` (401), `FORBIDDEN` (403), `UPSTREAM_NOT_FOUND` (404, or a model no space serves),
 *   `RATE_LIMITED` (429, `retryAfterMs` from `Retry-After`), `UPSTREAM_BAD_REQUEST` (other 4xx),
 *   `UPSTREAM_ERROR` (5xx, an `error` event — with its message or "the space reported an error" —,
 *   or the space cannot be reached, with the cause), `UPSTREAM_TIMEOUT` (no response headers within
 *   `connectTimeoutMs` ms, 408/504, or no result within `timeoutMs` ms in all),
 *   `UPSTREAM_BAD_RESPONSE` (a reply of the wrong shape), `UPSTREAM_CONNECTION_LOST` (every one of
 *   `maxReads` reads ended without `complete`). When one call fails the others are aborted.
 *   When `signal` aborts, every request in flight is aborted (its connection closes) and the
 *   iterator throws `signal.reason`, never a ProviderError. Error messages never contain the token.
 * - `close()` aborts the generations in flight (they fail with `PROVIDER_UNAVAILABLE`).
 *
 * @param options the spaces, the optional token, `timeoutMs`, `maxReads` and `connectTimeoutMs` (ms).
 * @param dependencies.fetch a fetch implementation to use instead of the global one.
 */
export function createHuggingFaceSpaceProvider(
  options: HuggingFaceSpaceProviderOptions,
  dependencies: HuggingFaceSpaceProviderDependencies = {},
): ImageProvider {
  const fetchImplementation = dependencies.fetch ?? globalThis.fetch;
  const spaces = [...options.spaces];
  const token = options.token && options.token.length > 0 ? options.token : undefined;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const probeTimeoutMs = probeTimeoutFor(connectTimeoutMs);
  const errors = createProviderErrors(PROVIDER_ID, token);
  const imageSettings = {
    fetch: fetchImplementation,
    token,
    errors,
    connectTimeoutMs,
    timeoutMs: options.timeoutMs,
    maxReads: Math.max(1, Math.floor(options.maxReads)),
    /** Controllers of the generations in flight, aborted by `close()`. */
    activeRuns: new Set<AbortController>(),
  };

  const listModels = async (): Promise<ModelDescriptor[]> => spaces.map((space) => ({ id: space.model, capabilities: ['image'] }));

  /** `GET {baseURL}/config` of one space: undefined when it answers 2xx, else why not. Never throws. */
  const probeSpace = (space: HuggingFaceSpace): Promise<string | undefined> =>
    probeUnavailability(fetchImplementation, resolveGradioEndpoints(space).configURL, {
      headers: gradioHeadersFor('application/json', token),
      timeoutMs: probeTimeoutMs,
      isUnavailable: (status) => status < 200 || status > 299,
    });

  const probeAvailability = async (): Promise<Availability> => {
    if (spaces.length === 0) return { available: false, reason: 'no Hugging Face Spaces are configured' };
    const failures = await Promise.all(spaces.map(probeSpace));
    if (failures.some((failure) => failure === undefined)) return { available: true };
    const reason = spaces.map((space, index) => `${space.model}: ${failures[index]}`).join('; ');
    return { available: false, reason: errors.redact(reason) };
  };

  async function* generateImages(request: ImageRequest, streamOptions: StreamOptions): AsyncGenerator<ImageStreamPart> {
    streamOptions.signal.throwIfAborted();
    const space = spaces.find((candidate) => candidate.model === request.model);
    if (!space) throw errors.error('UPSTREAM_NOT_FOUND', `no Hugging Face Space is configured for model "${request.model}"`);
    yield* generateSpaceImages(imageSettings, space, request, streamOptions);
  }

  return {
    id: PROVIDER_ID,
    label: PROVIDER_LABEL,
    capabilities: ['image'],
    listModels,
    checkAvailability: cacheAvailability(probeAvailability, (error) => errors.redact(describeError(error) || 'availability check failed')),
    generateImages,
    close: async () => {
      for (const controller of imageSettings.activeRuns) {
        controller.abort(errors.error('PROVIDER_UNAVAILABLE', 'the Hugging Face Spaces provider was closed'));
      }
    },
  };
}
