/**
 * The work of an image generation: its candidates tried in order (see provider-fallback.ts), the
 * provider's progress as events, its images checked (and downloaded when given by URL), then stored
 * or inlined once all are in.
 */
import type { CheckedImage, ImageStore } from '../images/image-store.js';
import type { ResolvedModel } from '../providers/provider-registry.js';
import { ProviderError, type ImageProvider, type ImageRequest, type ProviderImage } from '../providers/provider.js';
import type { GeneratedImage, UnnumberedGenerationEvent } from './generation-events.js';
import type { ImageResponseFormat } from './generation-inputs.js';
import type { ImageGenerationRecord } from './generation-records.js';
import { racedParts, type AbortRace, type GenerationRun, type GenerationWork } from './generation-run.js';
import { runWithFallback, type AttemptDetails, type FallbackOptions } from './provider-fallback.js';

/** What an image run needs beside its request. */
export interface ImageRunOptions extends FallbackOptions {
  /** Where image bytes are checked, stored and downloaded. */
  imageStore: ImageStore;
}

/**
 * The work of an image generation.
 * @param request the request for the first candidate (each attempt asks its candidate's own model).
 * @param responseFormat `url` (stored, served by this service) or `b64_json` (inline).
 */
export function imageWork(
  candidates: Array<ResolvedModel<ImageProvider>>,
  request: ImageRequest,
  responseFormat: ImageResponseFormat,
  options: ImageRunOptions,
): GenerationWork {
  return (run, race) =>
    runWithFallback(run, candidates, options, (candidate, attemptNumber, markContent, traceHeaders) =>
      runImages(
        run as GenerationRun & { record: ImageGenerationRecord },
        candidate,
        { ...request, model: candidate.model },
        responseFormat,
        { attemptNumber, markContent, ...(traceHeaders && { traceHeaders }) },
        race,
        options,
      ),
    );
}

/**
 * One attempt: collects the provider's images (downloading those given by URL), and only once all
 * are in and the generation is still live, stores them (format `url`) or inlines them (format
 * `b64_json`): a cancelled or failed generation leaves no file behind. Returns `image-generation-completed`.
 */
async function runImages(
  run: GenerationRun & { record: ImageGenerationRecord },
  candidate: ResolvedModel<ImageProvider>,
  request: ImageRequest,
  responseFormat: ImageResponseFormat,
  { attemptNumber, markContent, traceHeaders }: AttemptDetails,
  race: AbortRace,
  options: ImageRunOptions,
): Promise<UnnumberedGenerationEvent> {
  const { imageStore } = options;
  const { record, abort } = run;
  const { provider, model } = candidate;
  if (attemptNumber > 1) {
    record.provider = provider.id;
    record.model = model;
    await run.emit({ type: 'image-generation-started', provider: provider.id, model });
  }
  const collected: Array<{ image: ProviderImage; checked: CheckedImage }> = [];
  for await (const part of racedParts(provider.generateImages(request, abort.streamOptions(undefined, traceHeaders)), race)) {
    if (part.type === 'progress') {
      await run.emit({
        type: 'image-generation-progress',
        ...(part.message !== undefined && { message: part.message }),
        ...(part.progress !== undefined && { progress: part.progress }),
        ...(part.queuePosition !== undefined && { queuePosition: part.queuePosition }),
      });
    } else if (part.type === 'image') {
      markContent();
      const { image } = part;
      let checked: CheckedImage;
      if (image.data) checked = await imageStore.check(image.data, `the image from ${provider.id}`);
      else if (image.url) checked = await race(imageStore.download(image.url, abort.toAbortSignal()));
      else throw new ProviderError({ code: 'UPSTREAM_BAD_RESPONSE', provider: provider.id, message: 'an image came with neither bytes nor a URL' });
      collected.push({ image, checked });
    }
  }
  if (collected.length === 0) {
    throw new ProviderError({ code: 'UPSTREAM_BAD_RESPONSE', provider: provider.id, message: 'the provider finished without an image' });
  }
  abort.throwIfAborted();
  const images = await race(
    Promise.all(
      collected.map(async ({ image, checked }): Promise<GeneratedImage> => {
        const described: GeneratedImage = {
          mimeType: checked.mimeType,
          ...(image.width !== undefined && { width: image.width }),
          ...(image.height !== undefined && { height: image.height }),
          ...(image.seed !== undefined && { seed: image.seed }),
          ...(image.revisedPrompt !== undefined && { revisedPrompt: image.revisedPrompt }),
          ...(image.url !== undefined && { sourceUrl: image.url }),
        };
        if (responseFormat === 'b64_json') return { ...described, b64Json: Buffer.from(checked.bytes).toString('base64') };
        return { ...described, url: imageStore.publicUrl(await imageStore.save(checked)) };
      }),
    ),
  );
  record.images = images;
  return { type: 'image-generation-completed', images };
}
