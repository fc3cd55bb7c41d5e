/**
 * Image generation on a Gradio Space (`docs/protocols.md` §3): `request.n` Gradio calls run in
 * parallel under one total timeout, their parts yielded as they come.
 */
import type { ProviderErrors } from '../http-errors.js';
import { resolveImageSize } from '../image-size.js';
import type { ImageRequest, ImageStreamPart, StreamOptions } from '../provider.js';
import { buildSpaceData } from './build-space-data.js';
import { resolveGradioEndpoints } from './gradio-endpoints.js';
import { createGradioExchange, InternalAbort } from './gradio-exchange.js';
import type { HuggingFaceSpace } from './hugging-face-space.js';
import { runGradioCall } from './run-gradio-call.js';

/** Images are sent with sides rounded down to a multiple of this (protocols.md §3). */
const SIDE_MULTIPLE = 8;

/** What {@link generateSpaceImages} needs of the provider. Durations in ms. */
export interface SpaceImageSettings {
  /** The fetch implementation to use. */
  fetch: typeof fetch;
  /** The Hugging Face token, sent as `Authorization: Bearer …`; none when undefined. */
  token: string | undefined;
  /** The provider's errors (messages redacted). */
  errors: ProviderErrors;
  /** Time allowed for the response headers of each request, ms. */
  connectTimeoutMs: number;
  /** Whole time one generation (all `n` images, every read) may take, ms. */
  timeoutMs: number;
  /** Reads of a result stream that ends without `complete` before giving up, at least 1. */
  maxReads: number;
  /** The controllers of the generations in flight: a run adds its own while it runs (the provider's `close()` aborts them). */
  activeRuns: Set<AbortController>;
}

/**
 * Generates `request.n` images on `space`, one Gradio call each, in parallel ({@link runGradioCall}),
 * and yields `progress` parts (consecutive identical ones collapsed), each `image` part as soon as
 * its call completes, then `finish`. The size is `resolveImageSize` with the space's defaults,
 * rounded down to a multiple of 8 and at least 32; steps default to `space.defaultSteps`; no seed →
 * seed 0 with randomize true.
 * @throws ProviderError `UPSTREAM_TIMEOUT` when the run takes longer than `timeoutMs` ms in all, else
 *   the first failure of a call (the other calls are then aborted). When `signal` aborts, every
 *   request in flight is aborted (its connection closes) and the iterator throws `signal.reason`;
 *   when the run's controller is aborted from outside (the provider's `close()`), with its reason.
 */
export async function* generateSpaceImages(
  settings: SpaceImageSettings,
  space: HuggingFaceSpace,
  request: ImageRequest,
  { signal, traceHeaders }: StreamOptions,
): AsyncGenerator<ImageStreamPart> {
  const { errors, timeoutMs } = settings;
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
  const count = Math.max(1, Math.floor(request.n ?? 1));

  // One controller for the whole run: the total timeout, a failed call, the consumer leaving
  // and close() abort it; every request listens to it and to the caller's signal.
  const runController = new AbortController();
  const runSignal = AbortSignal.any([signal, runController.signal]);
  settings.activeRuns.add(runController);
  let timedOut = false;
  const timeoutError = errors.error('UPSTREAM_TIMEOUT', `space ${space.model} produced no result within ${timeoutMs} ms`);
  const totalTimer = setTimeout(() => {
    timedOut = true;
    runController.abort(new InternalAbort(`no result within ${timeoutMs} ms`));
  }, timeoutMs);

  const exchange = createGradioExchange({
    fetch: settings.fetch,
    spaceModel: space.model,
    connectTimeoutMs: settings.connectTimeoutMs,
    errors,
    runSignal,
    ...(traceHeaders && { traceHeaders }),
    abortOutcome: () => {
      if (signal.aborted) return signal.reason;
      if (timedOut) return timeoutError;
      return runSignal.reason;
    },
  });
  const callContext = {
    exchange,
    endpoints: resolveGradioEndpoints(space),
    token: settings.token,
    space,
    width,
    height,
    errors,
    body: JSON.stringify({ data }),
    maxReads: settings.maxReads,
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
    runGradioCall(callContext, (part) => {
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
    settings.activeRuns.delete(runController);
  }
}
