/** The GraphQL operations the image tests send. */

/** Selection of every image event field. */
export const IMAGE_EVENT_SELECTION = `
  __typename
  ... on GenerationEvent { generationId sequence }
  ... on ImageGenerationStarted { provider model }
  ... on ImageGenerationProgress { message progress queuePosition }
  ... on ImageGenerationCompleted { images { url b64Json mimeType width height seed revisedPrompt sourceUrl } }
  ... on GenerationFailed { error { code message provider } }
  ... on GenerationCancelled { reason }
`;

export const IMAGE_GENERATION_SUBSCRIPTION = `subscription Image($input: ImageGenerationInput!) {
  imageGeneration(input: $input) { ${IMAGE_EVENT_SELECTION} }
}`;

export const IMAGE_GENERATION_EVENTS_SUBSCRIPTION = `subscription ImageEvents($generationId: ID!, $after: Int) {
  imageGenerationEvents(generationId: $generationId, after: $after) { ${IMAGE_EVENT_SELECTION} }
}`;

export const START_IMAGE_GENERATION = `mutation StartImage($input: ImageGenerationInput!) {
  startImageGeneration(input: $input) { id status provider model prompt images { url } }
}`;

export const IMAGE_GENERATION_QUERY = `query ImageGeneration($id: ID!) {
  generation(id: $id) {
    __typename id status provider model
    ... on ImageGeneration { prompt images { url b64Json mimeType width height seed sourceUrl } error { code message provider } }
  }
}`;

/** One generated image as selected above. */
export interface ImageResult {
  url: string | null;
  b64Json: string | null;
  mimeType: string;
  width: number | null;
  height: number | null;
  seed: number | null;
  revisedPrompt: string | null;
  sourceUrl: string | null;
}

/** One image event as selected above. */
export interface ImageEvent {
  __typename: string;
  generationId: string;
  sequence: number;
  provider?: string;
  model?: string;
  message?: string | null;
  progress?: number | null;
  images?: ImageResult[];
  error?: { code: string; message: string; provider: string | null };
  reason?: string | null;
}
