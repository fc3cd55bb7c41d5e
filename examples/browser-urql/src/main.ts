/**
 * A page that streams a chat from the gateway with urql. urql's `subscriptionExchange` hands every
 * operation to a graphql-ws client (urql's documented pattern for GraphQL over WebSocket), so the
 * page needs nothing but a WebSocket to the gateway — browsers apply no CORS to WebSockets, so the
 * page may be served from any origin without `CORS_ORIGINS`.
 *
 * The page's URL may name the gateway and the model: `?gateway=ws://127.0.0.1:1337/graphql&model=llama-cpp:stories260K`
 * (defaults: that gateway URL, the gateway's default model). While it works, `<body data-state>`
 * is `streaming`, then `completed` or `failed`.
 */
import { Client, subscriptionExchange } from '@urql/core';
import { createClient as createWebSocketClient } from 'graphql-ws';
import { StreamChatDocument } from './documents.js';

const parameters = new URLSearchParams(location.search);
const gatewayUrl = parameters.get('gateway') ?? 'ws://127.0.0.1:1337/graphql';
const model = parameters.get('model');

// A gateway with authentication on also needs `connectionParams: { authorization: 'Bearer <key>' }`;
// a key in a public page is everyone's, so give such a page a virtual key with tight limits.
const webSocketClient = createWebSocketClient({
  url: gatewayUrl,
  // A generation is not started again behind the user's back: a lost connection fails the chat.
  retryAttempts: 0,
});

const client = new Client({
  url: gatewayUrl.replace(/^ws/, 'http'),
  exchanges: [
    subscriptionExchange({
      // Queries and mutations would go over the WebSocket too: one connection, no HTTP requests.
      enableAllOperations: true,
      forwardSubscription(request) {
        const operation = { ...request, query: request.query ?? '' };
        return {
          subscribe: (sink) => ({ unsubscribe: webSocketClient.subscribe(operation, sink) }),
        };
      },
    }),
  ],
});

const form = document.querySelector<HTMLFormElement>('#chat')!;
const promptInput = document.querySelector<HTMLInputElement>('#prompt')!;
const sendButton = document.querySelector<HTMLButtonElement>('#send')!;
const status = document.querySelector<HTMLElement>('#status')!;
const story = document.querySelector<HTMLElement>('#story')!;

/** Shows where the chat is, on the page and in `<body data-state>`. */
function show(state: 'streaming' | 'completed' | 'failed', message: string): void {
  document.body.dataset.state = state;
  status.textContent = message;
  sendButton.disabled = state === 'streaming';
}

/** Streams the answer to `prompt` into the page, one `ChatTokenDelta` at a time. */
function streamChat(prompt: string): void {
  story.textContent = '';
  show('streaming', 'Starting…');
  const input = { messages: [{ role: 'USER' as const, content: prompt }], maxTokens: 128, ...(model && { model }) };
  const { unsubscribe } = client.subscription(StreamChatDocument, { input }).subscribe((result) => {
    if (result.error) {
      show('failed', result.error.message);
      return;
    }
    const event = result.data?.chatCompletion;
    switch (event?.__typename) {
      case 'ChatCompletionStarted':
        show('streaming', `Streaming from ${event.provider}:${event.model}…`);
        break;
      case 'ChatTokenDelta':
        story.append(event.text);
        break;
      case 'ChatCompletionCompleted':
        show('completed', `Completed: ${event.finishReason}, ${event.usage?.completionTokens ?? '?'} tokens.`);
        break;
      case 'GenerationFailed':
        show('failed', `Failed: ${event.error.code}: ${event.error.message}`);
        break;
      case 'GenerationCancelled':
        show('failed', `Cancelled: ${event.reason ?? 'no reason given'}`);
        break;
    }
  });
  // Leaving the page closes the subscription, which cancels the generation on the gateway.
  addEventListener('pagehide', unsubscribe, { once: true });
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  streamChat(promptInput.value);
});
document.body.dataset.state = 'ready';
