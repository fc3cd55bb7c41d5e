/**
 * Bad input gets a clear GraphQL error with `extensions.code` before anything starts, and
 * internal errors are masked. Over HTTP and over graphql-ws.
 */
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CANCEL_GENERATION,
  CHAT_COMPLETION_EVENTS_SUBSCRIPTION,
  CHAT_COMPLETION_SUBSCRIPTION,
  GENERATION_QUERY,
  START_CHAT_COMPLETION,
} from '../helpers/chat-operations.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

let started: StartedApp;
let client: Client;

beforeAll(async () => {
  started = await startApp();
  client = createWebSocketClient(started.webSocketUrl);
});

afterAll(async () => {
  await client?.dispose();
  await started?.stop();
});

const user = [{ role: 'USER', content: 'Once upon a time' }];

describe('bad input', () => {
  it.each([
    ['an unknown model', { messages: user, model: 'no-such-model' }, 'MODEL_NOT_FOUND', /no-such-model/],
    ['an unknown provider:model', { messages: user, model: 'llama-cpp:no-such-model' }, 'MODEL_NOT_FOUND', /no-such-model/],
    ['an unknown provider', { messages: user, provider: 'no-such-provider' }, 'PROVIDER_NOT_FOUND', /no-such-provider/],
    ['empty messages', { messages: [] }, 'BAD_USER_INPUT', /at least one message/],
    ['a negative maxTokens', { messages: user, maxTokens: -5 }, 'BAD_USER_INPUT', /maxTokens/],
    ['a temperature above 2', { messages: user, temperature: 3 }, 'BAD_USER_INPUT', /temperature/],
    ['a topP of 0', { messages: user, topP: 0 }, 'BAD_USER_INPUT', /topP/],
    ['an empty stop sequence', { messages: user, stop: [''] }, 'BAD_USER_INPUT', /stop/],
  ])('startChatCompletion with %s → %s, and no generation starts', async (_name, input, code, message) => {
    const sizeBefore = started.app.generations.size;
    const response = await graphqlRequest(started.graphqlUrl, START_CHAT_COMPLETION, { input });
    expect(response.data).toEqual({ startChatCompletion: null });
    expect(response.errors![0]!.path).toEqual(['startChatCompletion']);
    expect(response.errors).toHaveLength(1);
    expect(response.errors![0]!.extensions!.code).toBe(code);
    expect(response.errors![0]!.message).toMatch(message);
    expect(started.app.generations.size).toBe(sizeBefore);
  });

  it('rejects the same bad input on the chatCompletion subscription over graphql-ws', async () => {
    const sizeBefore = started.app.generations.size;
    await expect(
      collectWebSocket(client, CHAT_COMPLETION_SUBSCRIPTION, { input: { messages: user, model: 'no-such-model' } }),
    ).resolves.toEqual([expect.objectContaining({ errors: [expect.objectContaining({ extensions: { code: 'MODEL_NOT_FOUND' } })] })]);
    await expect(collectWebSocket(client, CHAT_COMPLETION_SUBSCRIPTION, { input: { messages: [] } })).resolves.toEqual([
      expect.objectContaining({ errors: [expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT' } })] }),
    ]);
    expect(started.app.generations.size).toBe(sizeBefore);
  });

  it('answers GENERATION_NOT_FOUND for an unknown id in chatCompletionEvents and cancelGeneration; generation is null', async () => {
    const results = await collectWebSocket(client, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, { generationId: 'no-such-id' });
    expect(results).toHaveLength(1);
    expect(results[0]!.errors![0]).toMatchObject({ extensions: { code: 'GENERATION_NOT_FOUND' } });
    expect(results[0]!.errors![0]!.message).toContain('no-such-id');

    const cancel = await graphqlRequest(started.graphqlUrl, CANCEL_GENERATION, { id: 'no-such-id' });
    expect(cancel.errors![0]).toMatchObject({ extensions: { code: 'GENERATION_NOT_FOUND' } });

    const query = await graphqlRequest(started.graphqlUrl, GENERATION_QUERY, { id: 'no-such-id' });
    expect(query).toEqual({ data: { generation: null } });
  });

  it('rejects a negative after with BAD_USER_INPUT', async () => {
    const start = await graphqlRequest(started.graphqlUrl, START_CHAT_COMPLETION, { input: { messages: user, maxTokens: 2 } });
    const results = await collectWebSocket(client, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, {
      generationId: start.data.startChatCompletion.id,
      after: -1,
    });
    expect(results[0]!.errors![0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
  });

  it('reports schema violations (a wrong role) as validation errors without running anything', async () => {
    const response = await graphqlRequest(started.graphqlUrl, START_CHAT_COMPLETION, {
      input: { messages: [{ role: 'ROBOT', content: 'hi' }] },
    });
    expect(response.data).toBeUndefined();
    expect(response.errors![0]!.message).toMatch(/ROBOT/);
  });

  it('sends validation errors over graphql-ws without the HTTP extension (status 400 means nothing on a WebSocket)', async () => {
    const aliases = Array.from({ length: 20 }, (_, index) => `a${index}: models { id }`).join(' ');
    for (const query of ['{ noSuchField }', `{ ${aliases} }`]) {
      const error = await collectWebSocket(client, query).catch((caught: unknown) => caught);
      expect(error).toEqual([expect.objectContaining({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })]);
    }
  });
});
