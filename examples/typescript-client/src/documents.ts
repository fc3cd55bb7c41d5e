/**
 * The operations this example sends, each written once with the generated `graphql()` function.
 * Code Generator turns each into a typed document (`TypedDocumentNode<Result, Variables>`) whose
 * result and variables types follow from `schema.graphql`; after changing an operation, run
 * `npx graphql-codegen --config codegen.ts` again.
 *
 * Every event implements the `GenerationEvent` interface, so `generationId` and `sequence` are
 * selected once for all of them; `__typename` tells the events apart.
 */
import { graphql } from './gql/index.js';

/** Starts a chat generation and streams its events until a terminal one; closing the subscription cancels it. */
export const StreamChatDocument = graphql(`
  subscription StreamChat($input: ChatCompletionInput!) {
    chatCompletion(input: $input) {
      __typename
      ... on GenerationEvent { generationId sequence }
      ... on ChatCompletionStarted { provider model }
      ... on ChatTokenDelta { text }
      ... on ChatCompletionCompleted { finishReason text usage { promptTokens completionTokens totalTokens } }
      ... on ProviderAttemptFailed { provider error { code message } }
      ... on GenerationFailed { error { code message provider } }
      ... on GenerationCancelled { reason }
    }
  }
`);

/** Starts an image generation and streams its events until the images arrive (or it fails). */
export const GenerateImageDocument = graphql(`
  subscription GenerateImage($input: ImageGenerationInput!) {
    imageGeneration(input: $input) {
      __typename
      ... on GenerationEvent { generationId sequence }
      ... on ImageGenerationStarted { provider model }
      ... on ImageGenerationProgress { message progress queuePosition }
      ... on ImageGenerationCompleted { images { url mimeType width height seed } }
      ... on ProviderAttemptFailed { provider error { code message } }
      ... on GenerationFailed { error { code message provider } }
      ... on GenerationCancelled { reason }
    }
  }
`);
