/**
 * The operation this page sends, written with the generated `graphql()` function: Code Generator
 * turns it into a typed document whose result and variables types follow from `schema.graphql`.
 */
import { graphql } from './gql/index.js';

/** Starts a chat generation and streams its events until a terminal one; closing the subscription cancels it. */
export const StreamChatDocument = graphql(`
  subscription StreamChat($input: ChatCompletionInput!) {
    chatCompletion(input: $input) {
      __typename
      ... on ChatCompletionStarted { provider model }
      ... on ChatTokenDelta { text }
      ... on ChatCompletionCompleted { finishReason text usage { completionTokens } }
      ... on GenerationFailed { error { code message } }
      ... on GenerationCancelled { reason }
    }
  }
`);
