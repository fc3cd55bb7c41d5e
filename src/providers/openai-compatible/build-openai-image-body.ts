/** The JSON body of `POST {baseURL}/images/generations` (`docs/protocols.md` §2) for a gateway image request. */
import { resolveImageSize, type ImageSizeRules } from '../image-size.js';
import type { ImageRequest } from '../provider.js';

/** Sizes sent to `/images/generations`: OpenAI's DALL·E 3 sizes for the ratios it knows, pixels. */
export const OPENAI_IMAGE_SIZE_RULES: ImageSizeRules = {
  defaultWidth: 1024,
  defaultHeight: 1024,
  aspectRatioSizes: { '1:1': [1024, 1024], '16:9': [1792, 1024], '9:16': [1024, 1792] },
};

/**
 * The request body, as JSON text: `{ model, prompt, n, size: "WxH", seed?, negative_prompt? }`,
 * `size` in pixels from {@link resolveImageSize} with {@link OPENAI_IMAGE_SIZE_RULES} (default
 * 1024x1024, 16:9 → 1792x1024, 9:16 → 1024x1792); `negative_prompt` only when non-empty.
 */
export function buildOpenAIImageBody(request: ImageRequest): string {
  const { width, height } = resolveImageSize(request, OPENAI_IMAGE_SIZE_RULES);
  const body: Record<string, unknown> = { model: request.model, prompt: request.prompt, n: request.n, size: `${width}x${height}` };
  if (request.seed !== undefined) body.seed = request.seed;
  if (request.negativePrompt !== undefined && request.negativePrompt !== '') body.negative_prompt = request.negativePrompt;
  return JSON.stringify(body);
}
