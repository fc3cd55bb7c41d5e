/**
 * Where and how to call Pollinations' image service (`docs/protocols.md` §4): the model list and
 * the one `GET` per image whose URL carries the whole request. No key, no special headers.
 */
import type { ImageRequest } from '../provider.js';

/** The endpoints of one Pollinations image service. */
export interface PollinationsEndpoints {
  /** `GET {imageBaseURL}/models`: the image models (the availability probe). */
  modelsURL: string;
  /**
   * `GET {imageBaseURL}/prompt/{encodeURIComponent(prompt)}?width=W&height=H&model=M&seed=S&nologo=true`
   * (plus `negative_prompt=` when non-empty): the URL of one image, `width`/`height` in pixels. It
   * holds no secret; requesting it again gives the same image.
   */
  imageURL(request: ImageRequest, width: number, height: number, seed: number): string;
}

/** The endpoints under `imageBaseURL` (a trailing `/` is ignored), e.g. `https://image.pollinations.ai`. */
export function resolvePollinationsEndpoints(imageBaseURL: string): PollinationsEndpoints {
  const baseURL = imageBaseURL.replace(/\/+$/, '');
  return {
    modelsURL: `${baseURL}/models`,
    imageURL: (request, width, height, seed) => {
      const parameters = new URLSearchParams({
        width: String(width),
        height: String(height),
        model: request.model,
        seed: String(seed),
        nologo: 'true',
      });
      if (request.negativePrompt !== undefined && request.negativePrompt !== '') parameters.set('negative_prompt', request.negativePrompt);
      return `${baseURL}/prompt/${encodeURIComponent(request.prompt)}?${parameters.toString()}`;
    },
  };
}
