/**
 * Image sizes: the aspect ratios the API accepts, and how a request's `width`/`height` or
 * `aspectRatio` becomes the pixel size a provider sends upstream.
 */

/** Aspect ratios accepted in `ImageGenerationInput.aspectRatio`, as `[width, height]` parts. */
export const ASPECT_RATIOS: Readonly<Record<string, readonly [number, number]>> = {
  '1:1': [1, 1],
  '16:9': [16, 9],
  '9:16': [9, 16],
  '4:3': [4, 3],
  '3:4': [3, 4],
  '3:2': [3, 2],
  '2:3': [2, 3],
  '21:9': [21, 9],
  '9:21': [9, 21],
};

/** Smallest and largest side accepted from clients, pixels. */
export const MIN_IMAGE_SIDE = 32;
export const MAX_IMAGE_SIDE = 2048;

/** How a provider sizes images. */
export interface ImageSizeRules {
  /** Size when the request gives neither size nor ratio, pixels. */
  defaultWidth: number;
  defaultHeight: number;
  /** Sizes the provider prefers for some ratios (e.g. Pollinations' 16:9 → 832×480). */
  aspectRatioSizes?: Readonly<Record<string, readonly [number, number]>>;
  /** Round each side down to a multiple of this (e.g. 8 for diffusion models); default 1. */
  multipleOf?: number;
}

/**
 * The pixel size to send upstream.
 * - `width`/`height` given: used (a missing side takes the default), rounded down to `multipleOf`,
 *   at least {@link MIN_IMAGE_SIDE} (`docs/protocols.md` §3: "rounded down to a
 *   multiple of 8 and raised to at least 32").
 * - else `aspectRatio` given: the provider's size for that ratio, or the ratio at about the default area.
 * - else the default size.
 * Ratios are validated by the generation service; an unknown one here falls back to the default.
 */
export function resolveImageSize(
  request: { width?: number; height?: number; aspectRatio?: string },
  rules: ImageSizeRules,
): { width: number; height: number } {
  const multiple = Math.max(1, rules.multipleOf ?? 1);
  const fit = (side: number) => Math.max(MIN_IMAGE_SIDE, Math.floor(side / multiple) * multiple);
  if (request.width !== undefined || request.height !== undefined) {
    return { width: fit(request.width ?? rules.defaultWidth), height: fit(request.height ?? rules.defaultHeight) };
  }
  const ratio = request.aspectRatio ? ASPECT_RATIOS[request.aspectRatio] : undefined;
  if (request.aspectRatio && ratio) {
    const preferred = rules.aspectRatioSizes?.[request.aspectRatio];
    if (preferred) return { width: fit(preferred[0]), height: fit(preferred[1]) };
    const area = rules.defaultWidth * rules.defaultHeight;
    const height = Math.sqrt((area * ratio[1]) / ratio[0]);
    return { width: fit(Math.min(MAX_IMAGE_SIDE, height * (ratio[0] / ratio[1]))), height: fit(Math.min(MAX_IMAGE_SIDE, height)) };
  }
  return { width: fit(rules.defaultWidth), height: fit(rules.defaultHeight) };
}
