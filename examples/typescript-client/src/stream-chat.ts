/**
 * Streams a chat completion over the typed client: the text of each `ChatTokenDelta` is handed on
 * as it arrives, and the `ChatCompletionCompleted` event is returned. Each event's type is narrowed
 * by its `__typename`, so `event.text` exists only where the schema says it does.
 */
import type { GatewayClient } from './gateway-client.js';
import { StreamChatDocument } from './documents.js';
import type { ChatCompletionInput, StreamChatSubscription } from './gql/graphql.js';

/** Any event of the chat stream, as the StreamChat operation selects it. */
export type ChatEvent = StreamChatSubscription['chatCompletion'];

/** The terminal event of a chat that completed: its finish reason, whole text and token usage. */
export type ChatCompletion = Extract<ChatEvent, { __typename: 'ChatCompletionCompleted' }>;

/** What a chat stream reports while it runs. */
export interface ChatCallbacks {
  /** The text that arrived (one or more tokens), in order; their concatenation is `ChatCompletion.text`. */
  onText(text: string): void;
  /** Which provider and model run the generation (again after a fallback to the next provider). */
  onStarted?(provider: string, model: string): void;
}

/**
 * Runs the `chatCompletion` subscription until its terminal event.
 * @returns the completed event.
 * @throws Error naming the code and message when the generation fails or is cancelled; the
 *   client's `GatewayRequestError` when the request is refused.
 */
export async function streamChat(client: GatewayClient, input: ChatCompletionInput, callbacks: ChatCallbacks): Promise<ChatCompletion> {
  for await (const { chatCompletion: event } of client.subscribe(StreamChatDocument, { input })) {
    switch (event.__typename) {
      case 'ChatCompletionStarted':
        callbacks.onStarted?.(event.provider, event.model);
        break;
      case 'ChatTokenDelta':
        callbacks.onText(event.text);
        break;
      case 'ChatCompletionCompleted':
        return event;
      case 'GenerationFailed':
        throw new Error(`The chat failed: ${event.error.code}: ${event.error.message}`);
      case 'GenerationCancelled':
        throw new Error(`The chat was cancelled: ${event.reason ?? 'no reason given'}`);
      // ProviderAttemptFailed (the next provider is tried), reasoning and tool-call deltas: not shown here.
    }
  }
  throw new Error('The chat stream ended without a terminal event.');
}
