/**
 * Generates an image over the typed client: progress is handed on as it arrives, and the images of
 * the `ImageGenerationCompleted` event are returned.
 */
import type { GatewayClient } from './gateway-client.js';
import { GenerateImageDocument } from './documents.js';
import type { GenerateImageSubscription, ImageGenerationInput } from './gql/graphql.js';

/** Any event of the image stream, as the GenerateImage operation selects it. */
export type ImageEvent = GenerateImageSubscription['imageGeneration'];

/** One generated image: its URL on the gateway (`/images/<sha256>.<ext>`), MIME type, size in pixels and seed. */
export type GeneratedImage = Extract<ImageEvent, { __typename: 'ImageGenerationCompleted' }>['images'][number];

/**
 * Runs the `imageGeneration` subscription until its terminal event.
 * @param onProgress called with each progress event's message and fraction done (0..1), where the provider reports them.
 * @returns the images.
 * @throws Error naming the code and message when the generation fails or is cancelled; the
 *   client's `GatewayRequestError` when the request is refused.
 */
export async function generateImage(
  client: GatewayClient,
  input: ImageGenerationInput,
  onProgress: (message: string | null | undefined, progress: number | null | undefined) => void = () => {},
): Promise<GeneratedImage[]> {
  for await (const { imageGeneration: event } of client.subscribe(GenerateImageDocument, { input })) {
    switch (event.__typename) {
      case 'ImageGenerationProgress':
        onProgress(event.message, event.progress);
        break;
      case 'ImageGenerationCompleted':
        return event.images;
      case 'GenerationFailed':
        throw new Error(`The image generation failed: ${event.error.code}: ${event.error.message}`);
      case 'GenerationCancelled':
        throw new Error(`The image generation was cancelled: ${event.reason ?? 'no reason given'}`);
    }
  }
  throw new Error('The image stream ended without a terminal event.');
}
