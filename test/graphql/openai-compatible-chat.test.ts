/**
 * End to end through the GraphQL API to an OpenAI-compatible upstream: the app on port 0, the
 * real graphql-ws client, and a local `node:http` server speaking OpenAI's exact SSE format.
 */
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CANCEL_GENERATION,
  CHAT_COMPLETION_EVENTS_SUBSCRIPTION,
  CHAT_COMPLETION_SUBSCRIPTION,
  GENERATION_QUERY,
  START_CHAT_COMPLETION,
  expectWellFormedChatEvents,
  type ChatEvent,
} from '../helpers/chat-operations.js';
import { fakeTokens, startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const API_KEY = 'sk-test-0123456789abcdef';
let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let client: Client;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream({ apiKey: API_KEY });
  started = await startApp({
    // Each test below makes the one upstream fail on purpose; the breaker has its own tests.
    BREAKER_ENABLED: 'false',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      {
        id: 'fake',
        label: 'Fake upstream',
        baseURL: upstream.baseURL,
        apiKey: API_KEY,
        models: [
          'stream?tokens=12',
          'stream?tokens=12&singleWrite=1',
          'length',
          'rate-limited?retryAfterSeconds=7',
          'server-error',
          'malformed-json?tokensBefore=3',
          'drop-connection?tokensBefore=3',
          'stall?tokensBefore=2',
          'endless?gapMs=5',
          'unauthorized',
        ],
        idleTimeoutMs: 300,
      },
    ]),
  });
  client = createWebSocketClient(started.webSocketUrl);
});

afterAll(async () => {
  await client?.dispose();
  await started?.stop();
  await upstream?.close();
});

const chatInput = (model: string) => ({
  provider: 'fake',
  model,
  messages: [
    { role: 'SYSTEM', content: 'Be brief.' },
    { role: 'USER', content: 'Tell me a story.' },
  ],
  temperature: 0.5,
  maxTokens: 100,
});

async function stream(model: string): Promise<ChatEvent[]> {
  const results = await collectWebSocket(client, CHAT_COMPLETION_SUBSCRIPTION, { input: chatInput(model) });
  for (const result of results) expect(result.errors).toBeUndefined();
  return results.map((result) => result.data!.chatCompletion as ChatEvent);
}

async function generation(id: string) {
  const response = await graphqlRequest(started.graphqlUrl, GENERATION_QUERY, { id });
  expect(response.errors).toBeUndefined();
  return response.data.generation;
}

describe('OpenAI-compatible upstream through GraphQL', () => {
  it('streams the upstream tokens with finish reason and usage, sending the request the protocol expects', async () => {
    const requestsBefore = upstream.chatRequests().length;
    const events = await stream('stream?tokens=12');
    const text = expectWellFormedChatEvents(events);
    expect(text).toBe(fakeTokens(12).join(''));
    expect(events[0]).toMatchObject({ provider: 'fake', model: 'stream?tokens=12' });
    expect(events.at(-1)).toMatchObject({
      __typename: 'ChatCompletionCompleted',
      finishReason: 'STOP',
      usage: { completionTokens: 12 },
    });
    const usage = events.at(-1)!.usage!;
    expect(usage.totalTokens).toBe(usage.promptTokens! + usage.completionTokens!);

    const request = upstream.chatRequests()[requestsBefore]!;
    expect(request.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request.body).toMatchObject({
      model: 'stream?tokens=12',
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.5,
      max_tokens: 100,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Tell me a story.' },
      ],
    });
  });

  it('sends the first token at once when the upstream sends the whole answer in one write, then the rest as one delta', async () => {
    const events = await stream('stream?tokens=12&singleWrite=1');
    expect(expectWellFormedChatEvents(events)).toBe(fakeTokens(12).join(''));
    const deltas = events.filter((event) => event.__typename === 'ChatTokenDelta').map((event) => event.text);
    expect(deltas).toEqual([fakeTokens(1).join(''), fakeTokens(12).slice(1).join('')]);
  });

  it('maps finish_reason "length" to LENGTH', async () => {
    const events = await stream('length');
    expectWellFormedChatEvents(events);
    expect(events.at(-1)).toMatchObject({ __typename: 'ChatCompletionCompleted', finishReason: 'LENGTH' });
  });

  it.each([
    ['rate-limited?retryAfterSeconds=7', 'RATE_LIMITED', /429/],
    ['server-error', 'UPSTREAM_ERROR', /500/],
    ['unauthorized', 'UNAUTHORIZED', /401/],
  ])('fails %s before the stream with code %s', async (model, code, message) => {
    const events = await stream(model);
    expectWellFormedChatEvents(events);
    expect(events.map((event) => event.__typename)).toEqual(['ChatCompletionStarted', 'GenerationFailed']);
    const failed = events.at(-1)!;
    expect(failed.error).toMatchObject({ code, provider: 'fake' });
    expect(failed.error!.message).toMatch(message);
    expect(failed.error!.message).not.toContain(API_KEY);
    expect(await generation(failed.generationId)).toMatchObject({ status: 'FAILED', error: failed.error, text: '' });
  });

  it.each([
    ['malformed-json?tokensBefore=3', 'UPSTREAM_BAD_RESPONSE'],
    ['drop-connection?tokensBefore=3', 'UPSTREAM_CONNECTION_LOST'],
    ['stall?tokensBefore=2', 'UPSTREAM_TIMEOUT'],
  ])('keeps the text that arrived, then fails %s with code %s', async (model, code) => {
    const events = await stream(model);
    const text = expectWellFormedChatEvents(events);
    const tokensBefore = Number(new URLSearchParams(model.split('?')[1]).get('tokensBefore'));
    expect(text).toBe(fakeTokens(tokensBefore).join(''));
    const failed = events.at(-1)!;
    expect(failed).toMatchObject({ __typename: 'GenerationFailed', error: { code, provider: 'fake' } });
    expect(await generation(failed.generationId)).toMatchObject({ status: 'FAILED', text, error: { code } });
  });

  it('cancels the generation and aborts the upstream request when the chatCompletion subscription closes', async () => {
    const closesBefore = upstream.closedRequests();
    const firstDelta = new Promise<ChatEvent>((resolve, reject) => {
      const unsubscribe = client.subscribe<{ chatCompletion: ChatEvent }>(
        { query: CHAT_COMPLETION_SUBSCRIPTION, variables: { input: chatInput('endless?gapMs=5') } },
        {
          next: (result) => {
            const event = result.data?.chatCompletion;
            if (event?.__typename === 'ChatTokenDelta') {
              unsubscribe();
              resolve(event);
            }
          },
          error: reject,
          complete: () => {},
        },
      );
    });
    const { generationId } = await firstDelta;
    await upstream.waitForClientClose(closesBefore + 1);
    const events = (await collectWebSocket(client, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, { generationId })).map(
      (result) => result.data!.chatCompletionEvents as ChatEvent,
    );
    expectWellFormedChatEvents(events);
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationCancelled', reason: 'subscription closed' });
    expect(await generation(generationId)).toMatchObject({ status: 'CANCELLED' });
  });

  it('cancelGeneration aborts the upstream request and ends the stream with GenerationCancelled', async () => {
    const closesBefore = upstream.closedRequests();
    const requestsBefore = upstream.chatRequests().length;
    const start = await graphqlRequest(started.graphqlUrl, START_CHAT_COMPLETION, { input: chatInput('endless?gapMs=5') });
    expect(start.errors).toBeUndefined();
    const { id } = start.data.startChatCompletion;
    const following = collectWebSocket(client, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, { generationId: id });
    await upstream.waitForChatRequest(requestsBefore + 1);

    const cancelled = await graphqlRequest(started.graphqlUrl, CANCEL_GENERATION, { id });
    expect(cancelled.errors).toBeUndefined();
    expect(cancelled.data.cancelGeneration).toMatchObject({ id, status: 'CANCELLED' });
    expect(cancelled.data.cancelGeneration.finishedAt).toEqual(expect.any(String));
    await upstream.waitForClientClose(closesBefore + 1);

    const events = (await following).map((result) => result.data!.chatCompletionEvents as ChatEvent);
    expectWellFormedChatEvents(events);
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationCancelled', reason: 'cancelled by request' });

    // Cancelling again changes nothing.
    const again = await graphqlRequest(started.graphqlUrl, CANCEL_GENERATION, { id });
    expect(again.data.cancelGeneration).toMatchObject({ id, status: 'CANCELLED' });
  });

  it('lists the upstream in providers and models', async () => {
    const response = await graphqlRequest(
      started.graphqlUrl,
      '{ providers { id label available unavailableReason models { id provider capabilities } } models { id provider capabilities } }',
    );
    expect(response.errors).toBeUndefined();
    const fake = response.data.providers.find((provider: { id: string }) => provider.id === 'fake');
    expect(fake).toMatchObject({ label: 'Fake upstream', available: true, unavailableReason: null });
    expect(fake.models).toContainEqual({ id: 'length', provider: 'fake', capabilities: ['CHAT', 'TOOLS', 'VISION', 'JSON_SCHEMA', 'REASONING'] });
    expect(response.data.models).toContainEqual({ id: 'stories260K', provider: 'llama-cpp', capabilities: ['CHAT', 'JSON_SCHEMA'] });
    expect(response.data.models).toContainEqual({ id: 'server-error', provider: 'fake', capabilities: ['CHAT', 'TOOLS', 'VISION', 'JSON_SCHEMA', 'REASONING'] });
  });
});
