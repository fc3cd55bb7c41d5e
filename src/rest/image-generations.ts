/**
 * `POST /v1/images/generations` and `POST /v1/images/generate` (`docs/protocols.md` §1):
 * the gpt4free/OpenAI images API over the generation service.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { GeneratedImage, ImageGenerationEvent } from '../generations/generation-events.js';
import type { ImageGenerationInput } from '../generations/generation-inputs.js';
import type { ImageGenerationRecord } from '../generations/generation-records.js';
import type { RestApiDependencies } from './rest-dependencies.js';
import { followGeneration } from './generation-follower.js';
import { RestError, sendJson, unixSeconds } from './rest-http.js';

/**
 * The request body. Unknown fields (`quality`, `style`, `user`, …) are dropped. `api_key` is the
 * provider's key for this request only (never stored or logged).
 * `size` is `"WxH"` in pixels (`"auto"` = the provider's default); `width`/`height` win over it.
 * Ranges are the generation service's to check.
 */
export const imageGenerationRequestSchema = z.object({
  prompt: z.string(),
  model: z.string().nullish(),
  provider: z.string().nullish(),
  n: z.number().nullish(),
  size: z.string().nullish(),
  width: z.number().nullish(),
  height: z.number().nullish(),
  seed: z.number().nullish(),
  response_format: z.enum(['url', 'b64_json'], { error: 'response_format must be "url" or "b64_json"' }).nullish(),
  num_inference_steps: z.number().nullish(),
  negative_prompt: z.string().nullish(),
  aspect_ratio: z.string().nullish(),
  api_key: z.string().nullish(),
});

/** A validated image request body. */
export type ImageGenerationRequest = z.output<typeof imageGenerationRequestSchema>;

/**
 * `"1024x768"` → `{ width: 1024, height: 768 }`; `"auto"`, `""` and null → undefined.
 * @throws RestError 400 for anything else.
 */
export function parseImageSize(size: string | null | undefined): { width: number; height: number } | undefined {
  if (size == null || size === '' || size === 'auto') return undefined;
  const match = /^\s*(\d+)\s*[xX×]\s*(\d+)\s*$/.exec(size);
  if (!match) throw new RestError('BAD_USER_INPUT', `size: must be "WIDTHxHEIGHT" in pixels, e.g. "1024x1024", not "${size}"`, { param: 'size' });
  return { width: Number(match[1]), height: Number(match[2]) };
}

/** The service input for a validated request; `response_format` null or absent means `url` (stored by this server). */
export function toImageInput(body: ImageGenerationRequest): ImageGenerationInput {
  const size = parseImageSize(body.size);
  const width = body.width ?? size?.width;
  const height = body.height ?? size?.height;
  return {
    prompt: body.prompt,
    ...(body.model && { model: body.model }),
    ...(body.provider?.trim() && { provider: body.provider.trim() }),
    ...(body.n != null && { n: body.n }),
    ...(width != null && { width }),
    ...(height != null && { height }),
    ...(body.aspect_ratio && { aspectRatio: body.aspect_ratio }),
    ...(body.seed != null && { seed: body.seed }),
    ...(body.num_inference_steps != null && { numInferenceSteps: body.num_inference_steps }),
    ...(body.negative_prompt != null && { negativePrompt: body.negative_prompt }),
    responseFormat: body.response_format ?? 'url',
    ...(body.api_key && { apiKey: body.api_key }),
  };
}

/** One entry of `data`: `{ url }` or `{ b64_json }`, with `revised_prompt` when the provider gave one. */
export function toOpenAIImage(image: GeneratedImage): { url?: string; b64_json?: string; revised_prompt?: string } {
  return {
    ...(image.b64Json !== undefined ? { b64_json: image.b64Json } : { url: image.url }),
    ...(image.revisedPrompt !== undefined && { revised_prompt: image.revisedPrompt }),
  };
}

/**
 * Handles `POST /v1/images/generations` (and `/v1/images/generate`): starts the generation, waits
 * for its end and answers `200 {"created"(unix s),"model","provider","data":[{"url"}|{"b64_json"}, "revised_prompt"?]}`.
 * Errors: 400 bad body, 404 unknown model or provider, 413 body too large, 429/502/503/504
 * provider failures (see `httpStatusForCode`), 503 when cancelled by someone else. A client that
 * leaves before the end cancels the generation (`client disconnected`). The shared flow is
 * {@link followGeneration}'s.
 */
export function handleImageGenerations(dependencies: RestApiDependencies, request: IncomingMessage, response: ServerResponse): Promise<void> {
  return followGeneration<ImageGenerationRequest, ImageGenerationRecord, ImageGenerationEvent>(dependencies, request, response, {
    schema: imageGenerationRequestSchema,
    kind: 'image',
    start: (generations, body) => generations.startImages(toImageInput(body)),
    answer: (_body, record, writer) => (event) => {
      if (event.type !== 'image-generation-completed') return false; // started, progress
      sendJson(writer.response, 200, {
        created: unixSeconds(record.createdAt),
        model: record.model,
        provider: record.provider,
        data: event.images.map(toOpenAIImage),
      });
      return true;
    },
  });
}
