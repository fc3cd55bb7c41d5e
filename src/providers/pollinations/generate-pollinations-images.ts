/**
 * Image generation on Pollinations (`docs/protocols.md` §4): `request.n` image requests at once,
 * each with its own seed, yielded as they complete.
 */
import { TimeoutAbort } from '../http-errors.js';
import { resolveImageSize, type ImageSizeRules } from '../image-size.js';
import type { ImageRequest, ImageStreamPart, ProviderImage, StreamOptions } from '../provider.js';
import { fetchPollinationsImage, type PollinationsImageSettings } from './fetch-pollinations-image.js';
import type { PollinationsEndpoints } from './pollinations-endpoints.js';

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

/** What {@link generatePollinationsImages} needs of the provider. */
export interface PollinationsGenerationSettings {
  image: PollinationsImageSettings;
  endpoints: PollinationsEndpoints;
  /** A source of numbers in [0, 1) for random base seeds. */
  random: () => number;
}

type Outcome = { index: number; image: ProviderImage } | { index: number; error: unknown };

/**
 * Sends `request.n` image requests at once ({@link fetchPollinationsImage}), `W`×`H` in pixels
 * from {@link resolveImageSize} with {@link POLLINATIONS_IMAGE_SIZE_RULES}. Seeds: `request.seed`,
 * `seed + 1`, … when a seed is given, else a random base seed in [0, 10⁹) plus the index, so the
 * `n` images differ. Yields one `image` part as each request completes (so in completion order),
 * then one `finish` part.
 * @throws the first failure of a request (the others are then aborted). When `signal` aborts,
 *   every request in flight is aborted (its connection closes) and the iterator throws
 *   `signal.reason`; a consumer that stops iterating early aborts them too.
 */
export async function* generatePollinationsImages(
  settings: PollinationsGenerationSettings,
  request: ImageRequest,
  { signal, traceHeaders }: StreamOptions,
): AsyncGenerator<ImageStreamPart> {
  signal.throwIfAborted();
  const size = resolveImageSize(request, POLLINATIONS_IMAGE_SIZE_RULES);
  const count = Math.max(1, Math.floor(request.n));
  const random = settings.random;
  const baseSeed = request.seed ?? Math.floor(random() * RANDOM_SEED_LIMIT);
  const groupController = new AbortController();
  const groupSignal = AbortSignal.any([signal, groupController.signal]);
  const pending = new Map<number, Promise<Outcome>>();
  for (let index = 0; index < count; index++) {
    const seed = baseSeed + index;
    const url = settings.endpoints.imageURL(request, size.width, size.height, seed);
    const outcome = fetchPollinationsImage(settings.image, url, size, seed, groupSignal, traceHeaders).then(
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
