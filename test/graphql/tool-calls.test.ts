/**
 * Tool calls, reasoning, images and JSON schemas through the GraphQL API over graphql-ws, with
 * the app on port 0 and a local server speaking OpenAI's exact SSE format behind it
 * (`test/helpers/fake-openai-upstream.ts`); and the refusal of a feature no candidate model has.
 */
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATION_QUERY, START_CHAT_COMPLETION, expectWellFormedChatEvents, type ChatEvent } from '../helpers/chat-operations.js';
import { fakeReasoning, fakeTokens, fakeToolCalls, startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let client: Client;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream({
    scenarios: {
      weather: { type: 'tool-calls', callCount: 3, pieceSize: 3 },
      reasoner: { type: 'reasoning', reasoningCount: 7, tokenCount: 5, gapMs: 1 },
      echo: { type: 'echo' },
    },
  });
  started = await startApp({
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['weather', 'reasoner', 'echo'], idleTimeoutMs: 20_000 }]),
  });
  client = createWebSocketClient(started.webSocketUrl);
});

afterAll(async () => {
  await client?.dispose();
  await started?.stop();
  await upstream?.close();
});

const SUBSCRIPTION = `subscription Chat($input: ChatCompletionInput!) {
  chatCompletion(input: $input) {
    __typename
    ... on GenerationEvent { generationId sequence }
    ... on ChatCompletionStarted { provider model }
    ... on ChatTokenDelta { text }
    ... on ChatReasoningDelta { text }
    ... on ChatToolCallDelta { index id name argumentsDelta }
    ... on ChatCompletionCompleted { finishReason text reasoning toolCalls { id name arguments } }
    ... on GenerationFailed { error { code message provider } }
  }
}`;

/** One event as {@link SUBSCRIPTION} selects it. */
interface ToolChatEvent extends ChatEvent {
  index?: number;
  id?: string | null;
  name?: string | null;
  argumentsDelta?: string;
  reasoning?: string | null;
  toolCalls?: Array<{ id: string; name: string; arguments: string }> | null;
}

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'The weather in a city now.',
  parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] },
};

const question = [{ role: 'USER', content: 'What is the weather in Paris, Tokyo and Lima?' }];

async function subscribe(input: Record<string, unknown>): Promise<ToolChatEvent[]> {
  const results = await collectWebSocket(client, SUBSCRIPTION, { input: { provider: 'fake', ...input } });
  for (const result of results) expect(result.errors).toBeUndefined();
  return results.map((result) => result.data!.chatCompletion as ToolChatEvent);
}

/** The body the upstream received for the last chat request. */
const lastUpstreamBody = () => upstream.chatRequests().at(-1)!.body as Record<string, unknown>;

describe('tool calls over graphql-ws', () => {
  it('streams ChatToolCallDelta events whose arguments add up to ChatCompletionCompleted.toolCalls, finish TOOL_CALLS', async () => {
    const events = await subscribe({ model: 'weather', messages: question, tools: [WEATHER_TOOL], toolChoice: { mode: 'REQUIRED' }, parallelToolCalls: true });
    expect(expectWellFormedChatEvents(events)).toBe('');
    const completed = events.at(-1)!;
    const calls = fakeToolCalls(3);
    expect(completed).toMatchObject({ __typename: 'ChatCompletionCompleted', finishReason: 'TOOL_CALLS', text: '', reasoning: null });
    expect(completed.toolCalls).toEqual(calls);

    const deltas = events.filter((event) => event.__typename === 'ChatToolCallDelta');
    for (const [index, call] of calls.entries()) {
      const ofCall = deltas.filter((event) => event.index === index);
      expect(ofCall[0]).toMatchObject({ id: call.id, name: call.name });
      expect(ofCall.slice(1).every((event) => event.id === null && event.name === null)).toBe(true);
      expect(ofCall.map((event) => event.argumentsDelta).join('')).toBe(completed.toolCalls![index]!.arguments);
    }
    expect(lastUpstreamBody()).toMatchObject({
      tools: [{ type: 'function', function: WEATHER_TOOL }],
      tool_choice: 'required',
      parallel_tool_calls: true,
    });

    const generation = await graphqlRequest(started.graphqlUrl, `query($id: ID!) { generation(id: $id) { ... on ChatGeneration { finishReason toolCalls { id name arguments } } } }`, {
      id: completed.generationId,
    });
    expect(generation.data.generation).toEqual({ finishReason: 'TOOL_CALLS', toolCalls: calls });
  });

  it('streams ChatReasoningDelta events before the text; the reasoning is whole in ChatCompletionCompleted', async () => {
    const events = await subscribe({ model: 'reasoner', messages: question, reasoningEffort: 'HIGH' });
    expect(expectWellFormedChatEvents(events)).toBe(fakeTokens(5).join(''));
    const reasoning = events.filter((event) => event.__typename === 'ChatReasoningDelta');
    expect(reasoning.map((event) => event.text).join('')).toBe(fakeReasoning(7).join(''));
    expect(events.at(-1)).toMatchObject({ finishReason: 'STOP', reasoning: fakeReasoning(7).join(''), toolCalls: null });
    const lastReasoning = events.findLastIndex((event) => event.__typename === 'ChatReasoningDelta');
    const firstText = events.findIndex((event) => event.__typename === 'ChatTokenDelta');
    expect(lastReasoning).toBeLessThan(firstText);
    expect(lastUpstreamBody().reasoning_effort).toBe('high');
  });

  it('hands a tool-result turn, image parts and a JSON schema to the upstream in OpenAI shapes', async () => {
    const schema = { type: 'object', properties: { summary: { type: 'string' } }, required: ['summary'] };
    const events = await subscribe({
      model: 'echo',
      messages: [
        { role: 'USER', parts: [{ type: 'TEXT', text: 'Compare with this:' }, { type: 'IMAGE_URL', imageUrl: 'https://example.com/sky.png', detail: 'LOW' }] },
        { role: 'ASSISTANT', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
        { role: 'TOOL', toolCallId: 'call_1', content: '{"celsius":21}' },
      ],
      tools: [WEATHER_TOOL],
      toolChoice: { name: 'get_weather' },
      responseFormat: { type: 'JSON_SCHEMA', name: 'summary', jsonSchema: schema, strict: true },
    });
    expect(events.at(-1)!.__typename).toBe('ChatCompletionCompleted');
    const expected = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare with this:' },
            { type: 'image_url', image_url: { url: 'https://example.com/sky.png', detail: 'low' } },
          ],
        },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"celsius":21}' },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      response_format: { type: 'json_schema', json_schema: { name: 'summary', schema, strict: true } },
    };
    expect(lastUpstreamBody()).toMatchObject(expected);
    // The echo scenario answers the body it received: the subscriber reads what the upstream got.
    expect(JSON.parse(events.at(-1)!.text!)).toMatchObject(expected);
  });
});

describe('a feature no candidate model has', () => {
  const newestGeneration = async () => (await started.app.generations.listGenerations({ first: 1 })).records[0]?.id;

  it.each([
    ['tools', { tools: [WEATHER_TOOL], messages: question }],
    ['vision', { messages: [{ role: 'USER', parts: [{ type: 'IMAGE_URL', imageUrl: 'https://example.com/sky.png' }] }] }],
  ])('refuses %s for llama-cpp:stories260K with UNSUPPORTED_INPUT before anything runs', async (feature, input) => {
    const requestsBefore = upstream.chatRequests().length;
    const newestBefore = await newestGeneration();
    const variables = { input: { model: 'llama-cpp:stories260K', ...input } };

    const mutation = await graphqlRequest(started.graphqlUrl, START_CHAT_COMPLETION, variables);
    expect(mutation.data?.startChatCompletion).toBeNull();
    expect(mutation.errors).toHaveLength(1);
    expect(mutation.errors![0]!.extensions?.code).toBe('UNSUPPORTED_INPUT');
    expect(mutation.errors![0]!.message).toContain(feature);

    const subscription = await collectWebSocket(client, SUBSCRIPTION, variables);
    expect(subscription).toHaveLength(1);
    expect(subscription[0]!.errors![0]!.extensions?.code).toBe('UNSUPPORTED_INPUT');

    expect(await newestGeneration()).toBe(newestBefore);
    expect(upstream.chatRequests()).toHaveLength(requestsBefore);
  });

  it('still serves the same model a request that needs none of them', async () => {
    const start = await graphqlRequest(started.graphqlUrl, START_CHAT_COMPLETION, {
      input: { model: 'llama-cpp:stories260K', messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 4 },
    });
    expect(start.errors).toBeUndefined();
    const generation = await graphqlRequest(started.graphqlUrl, GENERATION_QUERY, { id: start.data.startChatCompletion.id });
    expect(generation.data.generation).toMatchObject({ provider: 'llama-cpp', model: 'stories260K' });
  });
});
