/**
 * Real GraphQL clients for tests: `fetch` for queries and mutations, the `graphql-ws` client over
 * a real WebSocket, and `fetch` + `eventsource-parser` for subscriptions over SSE.
 */
import { createParser } from 'eventsource-parser';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** A GraphQL response as the wire carries it. */
export interface GraphQLResponse<Data = any> {
  data?: Data | null;
  errors?: Array<{ message: string; path?: unknown[]; extensions?: { code?: string; [key: string]: unknown } }>;
}

/** POSTs one operation to `url` and returns the parsed body. */
export async function graphqlRequest<Data = any>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GraphQLResponse<Data>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse<Data>;
}

/** A graphql-ws client over a real WebSocket that fails fast instead of retrying. */
export function createWebSocketClient(url: string, options: { connectionParams?: Record<string, unknown> } = {}): Client {
  return createClient({
    url,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    ...(options.connectionParams && { connectionParams: options.connectionParams }),
  });
}

/**
 * Subscribes over graphql-ws and collects every result until the server completes the operation.
 * @param parameters more Subscribe payload fields (e.g. `documentId` with an empty `query`).
 */
export async function collectWebSocket<Data = any>(
  client: Client,
  query: string,
  variables?: Record<string, unknown>,
  parameters?: Record<string, unknown>,
): Promise<Array<GraphQLResponse<Data>>> {
  const results: Array<GraphQLResponse<Data>> = [];
  for await (const result of client.iterate({ query, ...(variables && { variables }), ...parameters })) {
    results.push(result as GraphQLResponse<Data>);
  }
  return results;
}

/**
 * Subscribes over SSE (Yoga's distinct-connections mode) and collects every `next` payload until
 * the `complete` event. Comment lines (keep-alive pings) are skipped by the parser.
 * @param query the operation's text; undefined sends none (a persisted operation named in `options.parameters`).
 * @param options `parameters`: more request parameters (e.g. `documentId`).
 */
export async function collectServerSentEvents<Data = any>(
  url: string,
  query: string | undefined,
  variables?: Record<string, unknown>,
  options: { signal?: AbortSignal; onResult?: (result: GraphQLResponse<Data>) => void; parameters?: Record<string, unknown> } = {},
): Promise<Array<GraphQLResponse<Data>>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables, ...options.parameters }),
    ...(options.signal && { signal: options.signal }),
  });
  if (!response.ok || !response.body) throw new Error(`SSE request failed with ${response.status}: ${await response.text()}`);
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
    throw new Error(`expected text/event-stream, got ${response.headers.get('content-type')}`);
  }
  const results: Array<GraphQLResponse<Data>> = [];
  let completed = false;
  const parser = createParser({
    onEvent(event) {
      if (event.event === 'complete') {
        completed = true;
        return;
      }
      if (event.event === 'next' || event.event === undefined) {
        const result = JSON.parse(event.data) as GraphQLResponse<Data>;
        results.push(result);
        options.onResult?.(result);
      }
    },
  });
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  while (!completed) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.feed(decoder.decode(value, { stream: true }));
  }
  await reader.cancel().catch(() => {});
  if (!completed) throw new Error('SSE stream ended without a complete event');
  return results;
}
