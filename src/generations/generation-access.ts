/**
 * What transports (GraphQL resolvers, REST routes) may do with generations. The generation service
 * offers it, and so does a caller's guarded view of the service (`security/guarded-generations.ts`:
 * the same calls, with the caller's limits on the starts and its own generations in the list).
 */
import type { GenerationEvent } from './generation-events.js';
import type { ChatCompletionInput, GenerationOrigin, ImageGenerationInput } from './generation-inputs.js';
import type { GenerationFilter, GenerationPage } from './generation-listing.js';
import type { ChatGenerationRecord, GenerationRecord, ImageGenerationRecord } from './generation-records.js';

/** The generation calls of transports; see the methods of `GenerationService` for what each does and throws. */
export interface GenerationAccess {
  startChat(input: ChatCompletionInput, origin?: GenerationOrigin): Promise<ChatGenerationRecord>;
  startImages(input: ImageGenerationInput, origin?: GenerationOrigin): Promise<ImageGenerationRecord>;
  startChatStream(input: ChatCompletionInput, origin?: GenerationOrigin): Promise<AsyncIterableIterator<GenerationEvent>>;
  startImageStream(input: ImageGenerationInput, origin?: GenerationOrigin): Promise<AsyncIterableIterator<GenerationEvent>>;
  listGenerations(filter: GenerationFilter): Promise<GenerationPage>;
  find(generationId: string): Promise<GenerationRecord | undefined>;
  cancel(generationId: string, reason?: string): Promise<GenerationRecord>;
  subscribe(generationId: string, after?: number, kind?: GenerationRecord['kind']): Promise<AsyncIterableIterator<GenerationEvent>>;
}
