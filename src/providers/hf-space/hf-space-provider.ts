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
 * it never downloads the bytes (the generation service does).
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { z } from 'zod';
import type { HuggingFaceSpaceConfig } from '../../config.js';
import { cacheAvailability, probeTimeoutFor, probeUnavailability } from '../cached-availability.js';
import {
  codeForStatus,
  describeError,
  ERROR_BODY_LIMIT_BYTES,
  extractErrorMessage,
  parseRetryAfterMs,
  readBoundedText,
  shortenMessage,
} from '../http-errors.js';
import { resolveImageSize } from '../image-size.js';
import {
  ProviderError,
  type Availability,
  type ImageProvider,
  type ImageRequest,
  type ImageStreamPart,
  type ModelDescriptor,
  type ProviderErrorCode,
  type ProviderImage,
  type StreamOptions,
} from '../provider.js';

/** Settings of {@link createHuggingFaceSpaceProvider}. Durations in ms. */
export interface HuggingFaceSpaceProviderOptions {
  /** The spaces served, one image model each (`Config.huggingFaceSpaces`); `baseURL` without a trailing `/`. */
  spaces: HuggingFaceSpaceConfig[];
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
/** Largest SSE event the parser buffers before giving up, characters. */
const SSE_MAX_BUFFER_CHARS = 16 * 1024 * 1024;
/** Images are sent with sides rounded down to a multiple of this (protocols.md §3). */
const SIDE_MULTIPLE = 8;

// ---------------------------------------------------------------------------------------------
// Schemas.

/** Step 1's answer: `{"event_id":"…"}`; other fields pass. */
const callStartedSchema = z.looseObject({ event_id: z.string().min(1) });

/** A Gradio `FileData` object; `url` may be missing (then `path` is served under `/gradio_api/file=`). */
const fileDataSchema = z
  .looseObject({
    path: z.string().nullish(),
    url: z.string().nullish(),
    size: z.number().nullish(),
    orig_name: z.string().nullish(),
    mime_type: z.string().nullish(),
    is_stream: z.boolean().nullish(),
    meta: z.looseObject({ _type: z.string().optional() }).nullish(),
  })
  .refine((file) => Boolean(file.url) || Boolean(file.path), { message: 'a file object needs a url or a path' });

/** The image output: a `FileData` object, or (older spaces) a bare URL or path string. */
const imageOutputSchema = z.union([fileDataSchema, z.string().min(1)]);

/** The `complete` data: the output list. */
const outputListSchema = z.array(z.unknown());

/** `JSON.parse`, or `undefined` for text that is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The values the `{placeholder}` items of a space's `inputs` stand for. */
export interface SpaceInputValues {
  prompt: string;
  negativePrompt: string;
  /** The seed asked for, or 0 when none was. */
  seed: number;
  /** True when no seed was asked for (the space picks one). */
  randomizeSeed: boolean;
  /** Pixels, already rounded down to a multiple of 8 and at least 32. */
  width: number;
  height: number;
  /** Inference steps. */
  steps: number;
}

/**
 * The `data` list of `POST /call/{endpoint}`: each string item of `inputs` that is exactly one
 * placeholder (`"{prompt}"`, `"{negativePrompt}"`, `"{seed}"`, `"{randomizeSeed}"`, `"{width}"`,
 * `"{height}"`, `"{steps}"`) becomes its value, keeping the value's type (`"{width}"` → `1024`);
 * every other item (numbers, other strings, nested values) passes unchanged.
 */
export function buildSpaceData(inputs: readonly unknown[], values: SpaceInputValues): unknown[] {
  return inputs.map((item) => {
    if (typeof item !== 'string') return item;
    const match = /^\{([A-Za-z]+)\}$/.exec(item);
    const key = match?.[1];
    return key !== undefined && Object.hasOwn(values, key) ? values[key as keyof SpaceInputValues] : item;
  });
}

/** Progress fields read from a `generating` event's data when it carries them (it usually does not). */
function progressFrom(data: unknown): { progress?: number; queuePosition?: number } {
  const found: { progress?: number; queuePosition?: number } = {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return found;
  const record = data as Record<string, unknown>;
  const fraction = (value: unknown): number | undefined =>
    typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1 ? value : undefined;
  let progress = fraction(record.progress);
  if (progress === undefined && Array.isArray(record.progress_data)) {
    // Gradio's progress tracker: `[{index, length, unit, progress, desc}]`.
    const first = record.progress_data[0] as Record<string, unknown> | undefined;
    if (first && typeof first === 'object') {
      progress = fraction(first.progress);
      if (progress === undefined && typeof first.index === 'number' && typeof first.length === 'number' && first.length > 0) {
        progress = fraction(first.index / first.length);
      }
    }
  }
  if (progress !== undefined) found.progress = progress;
  const rank = record.rank ?? record.queue_position;
  if (typeof rank === 'number' && Number.isInteger(rank) && rank >= 0) found.queuePosition = rank;
  return found;
}

/** Marks an abort we caused ourselves (timeouts, a failed sibling call, the consumer leaving). */
class InternalAbort extends Error {
  override readonly name = 'InternalAbort';
}

// ---------------------------------------------------------------------------------------------

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
  const spaces = options.spaces.map((space) => ({ ...space, baseURL: space.baseURL.replace(/\/+$/, '') }));
  const token = options.token && options.token.length > 0 ? options.token : undefined;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const probeTimeoutMs = probeTimeoutFor(connectTimeoutMs);
  const maxReads = Math.max(1, Math.floor(options.maxReads));
  const timeoutMs = options.timeoutMs;
  /** Controllers of the generations in flight, aborted by `close()`. */
  const activeRuns = new Set<AbortController>();

  /** Replaces the token wherever it appears; every message we produce goes through here. */
  const redact = (text: string): string => (token ? text.split(token).join('***') : text);

  const providerError = (
    code: ProviderErrorCode,
    message: string,
    extra: { statusCode?: number; retryAfterMs?: number; cause?: unknown } = {},
  ): ProviderError => new ProviderError({ code, provider: PROVIDER_ID, message: redact(message), ...extra });

  const headersFor = (accept: string): Record<string, string> => {
    const headers: Record<string, string> = { Accept: accept };
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  };

  // ---- models and availability ---------------------------------------------------------------

  const listModels = async (): Promise<ModelDescriptor[]> => spaces.map((space) => ({ id: space.model, capabilities: ['image'] }));

  /** `GET {baseURL}/config` of one space: undefined when it answers 2xx, else why not. Never throws. */
  const probeSpace = (space: HuggingFaceSpaceConfig): Promise<string | undefined> =>
    probeUnavailability(fetchImplementation, `${space.baseURL}/config`, {
      headers: headersFor('application/json'),
      timeoutMs: probeTimeoutMs,
      isUnavailable: (status) => status < 200 || status > 299,
    });

  const probeAvailability = async (): Promise<Availability> => {
    if (spaces.length === 0) return { available: false, reason: 'no Hugging Face Spaces are configured' };
    const failures = await Promise.all(spaces.map(probeSpace));
    if (failures.some((failure) => failure === undefined)) return { available: true };
    const reason = spaces.map((space, index) => `${space.model}: ${failures[index]}`).join('; ');
    return { available: false, reason: redact(reason) };
  };

  const checkAvailability = cacheAvailability(probeAvailability, (error) => redact(describeError(error) || 'availability check failed'));

  // ---- generation ----------------------------------------------------------------------------

  async function* generateImages(request: ImageRequest, { signal }: StreamOptions): AsyncGenerator<ImageStreamPart> {
    signal.throwIfAborted();
    const space = spaces.find((candidate) => candidate.model === request.model);
    if (!space) {
      throw providerError('UPSTREAM_NOT_FOUND', `no Hugging Face Space is configured for model "${request.model}"`);
    }

    const { width, height } = resolveImageSize(request, {
      defaultWidth: space.defaultWidth,
      defaultHeight: space.defaultHeight,
      multipleOf: SIDE_MULTIPLE,
    });
    const data = buildSpaceData(space.inputs, {
      prompt: request.prompt,
      negativePrompt: request.negativePrompt ?? '',
      seed: request.seed ?? 0,
      randomizeSeed: request.seed === undefined,
      width,
      height,
      steps: request.numInferenceSteps ?? space.defaultSteps,
    });
    const body = JSON.stringify({ data });
    const callURL = `${space.baseURL}/call/${space.endpoint}`;
    const count = Math.max(1, Math.floor(request.n ?? 1));

    // One controller for the whole run: the total timeout, a failed call, the consumer leaving
    // and close() abort it; every request listens to it and to the caller's signal.
    const runController = new AbortController();
    const runSignal = AbortSignal.any([signal, runController.signal]);
    activeRuns.add(runController);
    let timedOut = false;
    const timeoutError = providerError('UPSTREAM_TIMEOUT', `space ${space.model} produced no result within ${timeoutMs} ms`);
    const totalTimer = setTimeout(() => {
      timedOut = true;
      runController.abort(new InternalAbort(`no result within ${timeoutMs} ms`));
    }, timeoutMs);

    /** What a call throws once the run was aborted: the caller's reason, the timeout, or the run's reason. */
    const abortOutcome = (): unknown => {
      if (signal.aborted) return signal.reason;
      if (timedOut) return timeoutError;
      return runSignal.reason;
    };

    /**
     * One request with the connect timeout on its response headers; the run's signal aborts it too.
     * The returned `abort` closes the request (and its connection) when the body is left unread.
     * @throws the run's abort outcome, or ProviderError `UPSTREAM_TIMEOUT` / `UPSTREAM_ERROR`.
     */
    const send = async (url: string, init: RequestInit): Promise<{ response: Response; abort: () => void }> => {
      const requestController = new AbortController();
      let connectTimedOut = false;
      const connectTimer = setTimeout(() => {
        connectTimedOut = true;
        requestController.abort(new InternalAbort(`no response headers within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      try {
        const response = await fetchImplementation(url, { ...init, signal: AbortSignal.any([runSignal, requestController.signal]) });
        return { response, abort: () => requestController.abort(new InternalAbort('request closed by the gateway')) };
      } catch (error) {
        if (runSignal.aborted) throw abortOutcome();
        if (connectTimedOut) {
          throw providerError('UPSTREAM_TIMEOUT', `space ${space.model} sent no response headers within ${connectTimeoutMs} ms (${init.method} ${url})`, {
            cause: error,
          });
        }
        throw providerError('UPSTREAM_ERROR', `cannot reach space ${space.model}: ${init.method} ${url} failed: ${describeError(error) || 'network error'}`, {
          cause: error,
        });
      } finally {
        clearTimeout(connectTimer);
      }
    };

    /** Reads a small body; turns a broken read into the run's abort outcome or `UPSTREAM_CONNECTION_LOST`. */
    const readSmallBody = async (response: Response, what: string): Promise<string> => {
      try {
        return await readBoundedText(response.body, ERROR_BODY_LIMIT_BYTES, { rethrow: true });
      } catch (error) {
        if (runSignal.aborted) throw abortOutcome();
        throw providerError('UPSTREAM_CONNECTION_LOST', `connection to space ${space.model} lost while reading ${what}: ${describeError(error)}`, {
          cause: error,
        });
      }
    };

    /** The ProviderError for a non-2xx answer, with the space's own message. */
    const statusError = async (response: Response, what: string): Promise<ProviderError> => {
      let bodyText = '';
      try {
        bodyText = await readBoundedText(response.body, ERROR_BODY_LIMIT_BYTES, { rethrow: true });
      } catch {
        if (runSignal.aborted) throw abortOutcome();
        // a broken error body still gives us the status
      }
      const status = response.status;
      const message = extractErrorMessage(bodyText) || response.statusText;
      const retryAfterMs = parseRetryAfterMs(response.headers);
      return providerError(codeForStatus(status), `space ${space.model} answered ${status} to ${what}${message ? `: ${message}` : ''}`, {
        statusCode: status,
        ...(retryAfterMs !== undefined && { retryAfterMs }),
      });
    };

    /** Step 1: `POST /call/{endpoint}` → the event id. */
    const startCall = async (): Promise<string> => {
      const what = `POST ${callURL}`;
      const { response } = await send(callURL, {
        method: 'POST',
        headers: { ...headersFor('application/json'), 'Content-Type': 'application/json' },
        body,
      });
      if (!response.ok) throw await statusError(response, what);
      const text = await readSmallBody(response, 'the event id');
      const parsed = callStartedSchema.safeParse(parseJson(text));
      if (!parsed.success) {
        throw providerError('UPSTREAM_BAD_RESPONSE', `space ${space.model} answered ${what} without an event_id: ${shortenMessage(text.trim()) || '(empty body)'}`, {
          statusCode: response.status,
        });
      }
      return parsed.data.event_id;
    };

    type ReadOutcome = { kind: 'image'; image: ProviderImage } | { kind: 'ended'; why: string };

    /** The image part of a `complete` event's data. */
    const imageFromOutput = (dataText: string): ProviderImage => {
      const output = outputListSchema.safeParse(parseJson(dataText));
      if (!output.success) {
        throw providerError('UPSTREAM_BAD_RESPONSE', `space ${space.model} sent a complete event whose data is not a list: ${shortenMessage(dataText)}`);
      }
      const file = imageOutputSchema.safeParse(output.data[space.imageIndex]);
      if (!file.success) {
        const issue = file.error.issues[0];
        const where = issue ? `${issue.path.join('.') || 'file'}: ${issue.message}` : 'unexpected shape';
        throw providerError(
          'UPSTREAM_BAD_RESPONSE',
          `space ${space.model} sent no image file object at output index ${space.imageIndex} (${where})`,
        );
      }
      let url: string;
      let mimeType: string | undefined;
      const fileData = file.data;
      if (typeof fileData === 'string') {
        url = /^https?:\/\//i.test(fileData) ? fileData : `${space.baseURL}/gradio_api/file=${fileData}`;
      } else {
        mimeType = fileData.mime_type ?? undefined;
        url = fileData.url
          ? new URL(fileData.url, `${space.baseURL}/`).href
          : `${space.baseURL}/gradio_api/file=${fileData.path}`;
      }
      const seed = space.seedIndex === undefined ? undefined : output.data[space.seedIndex];
      return {
        url,
        ...(mimeType !== undefined && { mimeType }),
        width,
        height,
        ...(typeof seed === 'number' && Number.isFinite(seed) && { seed }),
      };
    };

    /** Step 2, one read: `GET /call/{endpoint}/{event_id}` until `complete`, `error` or the end of the stream. */
    const readResult = async (eventId: string, emit: (part: ImageStreamPart) => void): Promise<ReadOutcome> => {
      const resultURL = `${callURL}/${encodeURIComponent(eventId)}`;
      const { response, abort } = await send(resultURL, { method: 'GET', headers: headersFor('text/event-stream') });
      let bodyFinished = false;
      try {
        if (!response.ok) {
          bodyFinished = true;
          throw await statusError(response, `GET ${resultURL}`);
        }
        if (!response.body) return { kind: 'ended', why: `answered ${response.status} with no body` };

        let outcome: { kind: 'image'; image: ProviderImage } | undefined;
        let failure: ProviderError | undefined;
        const handleEvent = (event: EventSourceMessage): void => {
          if (outcome || failure) return;
          try {
            switch (event.event) {
              case 'generating':
                emit({ type: 'progress', message: 'generating', ...progressFrom(parseJson(event.data)) });
                return;
              case 'complete':
                outcome = { kind: 'image', image: imageFromOutput(event.data) };
                return;
              case 'error': {
                const parsed = parseJson(event.data);
                let message: string | undefined;
                if (typeof parsed === 'string') message = parsed;
                else if (parsed !== null && typeof parsed === 'object') message = extractErrorMessage(JSON.stringify(parsed)) || undefined;
                else if (parsed === undefined && event.data.trim() !== '') message = event.data.trim();
                failure = providerError('UPSTREAM_ERROR', `space ${space.model} failed: ${shortenMessage(message?.trim() || 'the space reported an error')}`);
                return;
              }
              default:
                // `heartbeat`, and events this provider does not know (e.g. queue notices): ignored.
                return;
            }
          } catch (error) {
            failure = error instanceof ProviderError ? error : providerError('UPSTREAM_BAD_RESPONSE', `space ${space.model}: ${describeError(error)}`);
          }
        };
        const parser = createParser({
          onEvent: handleEvent,
          onError: (error) => {
            if (error.type === 'max-buffer-size-exceeded' && !failure) {
              failure = providerError('UPSTREAM_BAD_RESPONSE', `space ${space.model} sent an event larger than ${SSE_MAX_BUFFER_CHARS} characters`);
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
              if (runSignal.aborted) throw abortOutcome();
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
    };

    /** One whole call: POST, then up to `maxReads` reads of the result stream. */
    const runCall = async (emit: (part: ImageStreamPart) => void): Promise<void> => {
      const eventId = await startCall();
      let lastWhy = '';
      for (let read = 1; read <= maxReads; read++) {
        if (runSignal.aborted) throw abortOutcome();
        const outcome = await readResult(eventId, emit);
        if (outcome.kind === 'image') {
          emit({ type: 'image', image: outcome.image });
          return;
        }
        lastWhy = outcome.why;
      }
      throw providerError(
        'UPSTREAM_CONNECTION_LOST',
        `space ${space.model}: stream ended without a result after ${maxReads} reads (${lastWhy})`,
      );
    };

    // ---- run the calls in parallel and yield their parts as they come -------------------------
    const queue: ImageStreamPart[] = [];
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const resolve = wake;
      wake = undefined;
      resolve?.();
    };
    let running = count;
    let failure: { error: unknown } | undefined;
    signal.addEventListener('abort', notify);
    runController.signal.addEventListener('abort', notify);

    const tasks = Array.from({ length: count }, () =>
      runCall((part) => {
        queue.push(part);
        notify();
      }).then(
        () => {
          running -= 1;
          // Every image is done: the total timeout no longer applies (the consumer may be slow).
          if (running === 0) clearTimeout(totalTimer);
          notify();
        },
        (error: unknown) => {
          running -= 1;
          if (running === 0) clearTimeout(totalTimer);
          failure ??= { error };
          runController.abort(new InternalAbort('another image of this generation failed'));
          notify();
        },
      ),
    );

    let finished = false;
    try {
      let lastProgress: string | undefined;
      for (;;) {
        while (queue.length > 0 && !failure && !signal.aborted && !timedOut) {
          const part = queue.shift()!;
          if (part.type === 'progress') {
            const key = JSON.stringify(part);
            if (key === lastProgress) continue;
            lastProgress = key;
          } else {
            lastProgress = undefined;
          }
          yield part;
        }
        if (signal.aborted) throw signal.reason;
        if (timedOut) throw timeoutError;
        if (failure) throw failure.error;
        if (running === 0 && queue.length === 0) break;
        if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      }
      finished = true;
      yield { type: 'finish' };
    } finally {
      clearTimeout(totalTimer);
      signal.removeEventListener('abort', notify);
      runController.signal.removeEventListener('abort', notify);
      if (!finished || running > 0) runController.abort(new InternalAbort('generation closed by the gateway'));
      await Promise.allSettled(tasks);
      activeRuns.delete(runController);
    }
  }

  const close = async (): Promise<void> => {
    for (const controller of activeRuns) {
      controller.abort(providerError('PROVIDER_UNAVAILABLE', 'the Hugging Face Spaces provider was closed'));
    }
  };

  return {
    id: PROVIDER_ID,
    label: PROVIDER_LABEL,
    capabilities: ['image'],
    listModels,
    checkAvailability,
    generateImages,
    close,
  };
}
