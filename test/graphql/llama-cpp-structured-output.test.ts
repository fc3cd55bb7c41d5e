/**
 * Structured output and tool calls over GraphQL (graphql-ws over a real socket) with the real test
 * models: the ChatML model (`chat/stories260K-chatml`) answers in JSON matching the request's schema
 * and makes a forced tool call; the model without a chat template declares no TOOLS capability, so
 * a request with tools is refused before it starts.
 */
import { join } from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CHAT_EVENT_SELECTION, expectWellFormedChatEvents, type ChatEvent } from '../helpers/chat-operations.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { SHARED_MODELS_DIR, startApp, type StartedApp } from '../helpers/start-app.js';

const CHAT_SUBSCRIPTION = `subscription Chat($input: ChatCompletionInput!) {
  chatCompletion(input: $input) {
    ${CHAT_EVENT_SELECTION}
    ... on ChatToolCallDelta { index id name argumentsDelta }
    ... on ChatCompletionCompleted { toolCalls { id name arguments } }
  }
}`;

const MODELS_QUERY = '{ models { id provider capabilities } }';

type Event = ChatEvent & { index?: number; id?: string; name?: string; argumentsDelta?: string; toolCalls?: Array<{ id: string; name: string; arguments: string }> | null };

/** Whether `value` is valid against the JSON Schema `schema` (zod 4's `z.fromJSONSchema` validates it). */
const matchesSchema = (schema: object, value: unknown): boolean => z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]).safeParse(value).success;

const PET_SCHEMA = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1, maxLength: 30 }, legs: { type: 'integer' }, kind: { enum: ['cat', 'dog', 'bird'] }, colors: { type: 'array', items: { type: 'string', maxLength: 12 }, maxItems: 3 } },
  required: ['name', 'legs', 'kind', 'colors'],
  additionalProperties: false,
};

let chatApp: StartedApp;
let plainApp: StartedApp;
let chatClient: Client;
let plainClient: Client;

beforeAll(async () => {
  // A context large enough for the tool documentation node-llama-cpp writes into the prompt.
  [chatApp, plainApp] = await Promise.all([startApp({ MODELS_DIR: join(SHARED_MODELS_DIR, 'chat'), LLAMA_CONTEXT_SIZE: '2048' }), startApp()]);
  chatClient = createWebSocketClient(chatApp.webSocketUrl);
  plainClient = createWebSocketClient(plainApp.webSocketUrl);
});

afterAll(async () => {
  await Promise.all([chatClient?.dispose(), plainClient?.dispose()]);
  await Promise.all([chatApp?.stop(), plainApp?.stop()]);
});

async function stream(client: Client, input: Record<string, unknown>): Promise<Event[]> {
  const results = await collectWebSocket<{ chatCompletion: Event }>(client, CHAT_SUBSCRIPTION, { input });
  for (const result of results) expect(result.errors).toBeUndefined();
  return results.map((result) => result.data!.chatCompletion);
}

const question = (content: string) => [{ role: 'USER', content }];

describe('llama-cpp structured output over GraphQL', () => {
  it('lists JSON_SCHEMA for both models and TOOLS only for the model with a chat template', async () => {
    const chatModels = await graphqlRequest(chatApp.graphqlUrl, MODELS_QUERY);
    expect(chatModels.data.models).toContainEqual({ id: 'stories260K-chatml', provider: 'llama-cpp', capabilities: ['CHAT', 'JSON_SCHEMA', 'TOOLS'] });
    const plainModels = await graphqlRequest(plainApp.graphqlUrl, MODELS_QUERY);
    expect(plainModels.data.models).toContainEqual({ id: 'stories260K', provider: 'llama-cpp', capabilities: ['CHAT', 'JSON_SCHEMA'] });
  });

  it('streams a reply held to the JSON schema: the completed text parses and matches', async () => {
    const events = await stream(chatClient, {
      messages: question('Describe a pet.'),
      maxTokens: 300,
      temperature: 0,
      responseFormat: { type: 'JSON_SCHEMA', name: 'pet', jsonSchema: PET_SCHEMA },
    });
    const text = expectWellFormedChatEvents(events);
    expect(events.at(-1)).toMatchObject({ __typename: 'ChatCompletionCompleted', finishReason: 'STOP', text });
    expect(matchesSchema(PET_SCHEMA, JSON.parse(text))).toBe(true);
  });

  it('the model without a chat template answers to the schema too (its plain completion held by the grammar)', async () => {
    const events = await stream(plainClient, { messages: question('Once upon a time'), maxTokens: 300, temperature: 0, responseFormat: { type: 'JSON_SCHEMA', jsonSchema: PET_SCHEMA } });
    const text = expectWellFormedChatEvents(events);
    expect(matchesSchema(PET_SCHEMA, JSON.parse(text))).toBe(true);
  });

  it('fails a generation whose schema the grammar cannot enforce with UNSUPPORTED_INPUT naming the keyword', async () => {
    const events = await stream(chatClient, {
      messages: question('Hi'),
      responseFormat: { type: 'JSON_SCHEMA', jsonSchema: { type: 'object', properties: { when: { type: 'string', format: 'email' } } } },
    });
    expectWellFormedChatEvents(events);
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'UNSUPPORTED_INPUT', provider: 'llama-cpp' } });
    expect(events.at(-1)!.error!.message).toMatch(/the format "email" .* at #\/properties\/when/);
  });
});

describe('llama-cpp tool calls over GraphQL', () => {
  const tools = [{ name: 'get_weather', description: 'Get the weather in a city', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 } }, required: ['city'] } }];

  it('streams a forced call as one ChatToolCallDelta, then completes with TOOL_CALLS and the call', async () => {
    const events = await stream(chatClient, { messages: question('What is the weather in Paris?'), tools, toolChoice: { name: 'get_weather' }, maxTokens: 100, temperature: 0 });
    expectWellFormedChatEvents(events);
    const deltas = events.filter((event) => event.__typename === 'ChatToolCallDelta');
    expect(deltas).toHaveLength(1);
    expect(deltas[0]).toMatchObject({ index: 0, id: expect.stringMatching(/^call_/), name: 'get_weather' });
    expect(matchesSchema(tools[0]!.parameters, JSON.parse(deltas[0]!.argumentsDelta!))).toBe(true);
    expect(events.at(-1)).toMatchObject({
      __typename: 'ChatCompletionCompleted',
      finishReason: 'TOOL_CALLS',
      toolCalls: [{ id: deltas[0]!.id, name: 'get_weather', arguments: deltas[0]!.argumentsDelta }],
    });
  });

  it('refuses tools for the model without a chat template before starting (it lacks TOOLS)', async () => {
    const results = await collectWebSocket(plainClient, CHAT_SUBSCRIPTION, { input: { messages: question('Weather?'), tools } });
    expect(results).toHaveLength(1);
    expect(results[0]!.errors?.[0]).toMatchObject({ extensions: { code: 'UNSUPPORTED_INPUT' } });
    expect(results[0]!.errors![0]!.message).toMatch(/llama-cpp:stories260K lacks tools/);
  });
});
