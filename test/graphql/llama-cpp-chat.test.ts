/**
 * End to end with the real model (`stories260K.gguf`): the app on port 0, graphql-ws over a real
 * socket, SSE over fetch, and the `llama-cpp` provider running llama.cpp in process.
 */
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHAT_COMPLETION_EVENTS_SUBSCRIPTION,
  CHAT_COMPLETION_SUBSCRIPTION,
  GENERATION_QUERY,
  START_CHAT_COMPLETION,
  expectWellFormedChatEvents,
  type ChatEvent,
} from '../helpers/chat-operations.js';
import { collectServerSentEvents, collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

let started: StartedApp;
let client: Client;

beforeAll(async () => {
  started = await startApp({ LLAMA_SEQUENCES: '2' });
  client = createWebSocketClient(started.webSocketUrl);
});

afterAll(async () => {
  await client?.dispose();
  await started?.stop();
});

async function streamOverWebSocket(input: Record<string, unknown>): Promise<ChatEvent[]> {
  const results = await collectWebSocket<{ chatCompletion: ChatEvent }>(client, CHAT_COMPLETION_SUBSCRIPTION, { input });
  for (const result of results) expect(result.errors).toBeUndefined();
  return results.map((result) => result.data!.chatCompletion);
}

const storyInput = (content: string, maxTokens = 48) => ({
  messages: [{ role: 'USER', content }],
  maxTokens,
  temperature: 0,
});

describe('llama-cpp chat over GraphQL', () => {
  it('streams a story over graphql-ws with contiguous sequences and a completed text equal to the deltas', async () => {
    const events = await streamOverWebSocket({ messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 40 });
    const text = expectWellFormedChatEvents(events);
    expect(events[0]).toMatchObject({ __typename: 'ChatCompletionStarted', provider: 'llama-cpp', model: 'stories260K' });
    expect(events.filter((event) => event.__typename === 'ChatTokenDelta').length).toBeGreaterThan(1);
    expect(text).toMatch(/[a-z]{3,}/);
    const completed = events.at(-1)!;
    expect(completed.__typename).toBe('ChatCompletionCompleted');
    expect(['LENGTH', 'STOP']).toContain(completed.finishReason);
    expect(completed.usage!.completionTokens).toBeGreaterThan(0);
    expect(completed.usage!.completionTokens).toBeLessThanOrEqual(40);
    expect(completed.usage!.promptTokens).toBeGreaterThan(0);
    expect(completed.usage!.totalTokens).toBe(completed.usage!.promptTokens! + completed.usage!.completionTokens!);

    const generation = await graphqlRequest(started.graphqlUrl, GENERATION_QUERY, { id: completed.generationId });
    expect(generation.errors).toBeUndefined();
    expect(generation.data.generation).toMatchObject({
      __typename: 'ChatGeneration',
      id: completed.generationId,
      status: 'COMPLETED',
      provider: 'llama-cpp',
      model: 'stories260K',
      text,
      finishReason: completed.finishReason,
      usage: completed.usage,
      error: null,
    });
    expect(Date.parse(generation.data.generation.finishedAt)).toBeGreaterThanOrEqual(Date.parse(generation.data.generation.createdAt));
  });

  it('hits maxTokens with finish reason LENGTH', async () => {
    const events = await streamOverWebSocket({ messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 3 });
    expectWellFormedChatEvents(events);
    expect(events.at(-1)).toMatchObject({ finishReason: 'LENGTH', usage: { completionTokens: 3 } });
  });

  it('starts with a mutation, follows with chatCompletionEvents, replays late subscribers, and honours after', async () => {
    const start = await graphqlRequest(started.graphqlUrl, START_CHAT_COMPLETION, { input: storyInput('The dog', 32) });
    expect(start.errors).toBeUndefined();
    const generation = start.data.startChatCompletion;
    expect(generation).toMatchObject({ status: 'RUNNING', provider: 'llama-cpp', model: 'stories260K' });

    const live = (await collectWebSocket(client, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, { generationId: generation.id })).map(
      (result) => result.data!.chatCompletionEvents as ChatEvent,
    );
    const text = expectWellFormedChatEvents(live);
    expect(live.at(-1)!.__typename).toBe('ChatCompletionCompleted');

    // The generation is over: a late subscriber gets the same events, then completion.
    const replay = (await collectWebSocket(client, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, { generationId: generation.id })).map(
      (result) => result.data!.chatCompletionEvents as ChatEvent,
    );
    expect(replay).toEqual(live);

    const after = 2;
    const resumed = (
      await collectWebSocket(client, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, { generationId: generation.id, after })
    ).map((result) => result.data!.chatCompletionEvents as ChatEvent);
    expect(resumed).toEqual(live.slice(after));
    expectWellFormedChatEvents(resumed, after + 1);

    const pastTheEnd = await collectWebSocket(client, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, {
      generationId: generation.id,
      after: live.length,
    });
    expect(pastTheEnd).toEqual([]);
    expect(text.length).toBeGreaterThan(0);
  });

  it('streams over SSE with the same events as over graphql-ws', async () => {
    const input = storyInput('Lily went to the park', 24);
    const overWebSocket = await streamOverWebSocket(input);
    const results = await collectServerSentEvents(started.graphqlUrl, CHAT_COMPLETION_SUBSCRIPTION, { input });
    for (const result of results) expect(result.errors).toBeUndefined();
    const overServerSentEvents = results.map((result) => result.data.chatCompletion as ChatEvent);
    const text = expectWellFormedChatEvents(overServerSentEvents);
    expect(text).toBe(expectWellFormedChatEvents(overWebSocket));
  });

  it('runs concurrent generations on one model without mixing their output', async () => {
    const prompts = ['Tom had a red ball', 'The cat sat', 'Once upon a time', 'Sue liked to sing', 'A big bird'];
    const solo: string[] = [];
    for (const prompt of prompts) solo.push(expectWellFormedChatEvents(await streamOverWebSocket(storyInput(prompt))));
    // Five at once on two sequences: three wait in the queue; greedy sampling makes each text reproducible.
    const together = await Promise.all(prompts.map((prompt) => streamOverWebSocket(storyInput(prompt))));
    expect(together.map((events) => expectWellFormedChatEvents(events))).toEqual(solo);
    expect(new Set(together.map((events) => events[0]!.generationId)).size).toBe(prompts.length);
  });
});
