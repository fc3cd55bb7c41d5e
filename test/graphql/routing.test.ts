/**
 * Model resolution, provider fallback, the circuit breaker and conversations, through the GraphQL
 * API against two fake OpenAI-compatible upstreams ("alpha" and "beta") over real HTTP.
 */
import type { Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_COMPLETION_SUBSCRIPTION, expectWellFormedChatEvents, type ChatEvent } from '../helpers/chat-operations.js';
import { fakeTokens, startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const SELECTION_WITH_ATTEMPTS = CHAT_COMPLETION_SUBSCRIPTION.replace(
  '... on GenerationCancelled { reason }',
  '... on GenerationCancelled { reason }\n  ... on ProviderAttemptFailed { provider error { code message provider } }\n  ... on ChatCompletionCompleted { conversationId }',
);

let alpha: FakeOpenAIUpstream;
let beta: FakeOpenAIUpstream;

async function startRoutingApp(settings: Record<string, string> = {}): Promise<{ started: StartedApp; client: Client }> {
  const started = await startApp({
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      { id: 'alpha', baseURL: alpha.baseURL, models: ['shared-model', 'alpha-only'] },
      { id: 'beta', baseURL: beta.baseURL, models: ['shared-model', 'beta-only'] },
    ]),
    MODEL_ALIASES: JSON.stringify({ fast: 'beta:shared-model', everywhere: ['alpha:alpha-only', 'beta:beta-only'] }),
    ...settings,
  });
  return { started, client: createWebSocketClient(started.webSocketUrl) };
}

async function chat(client: Client, input: Record<string, unknown>): Promise<ChatEvent[]> {
  const results = await collectWebSocket(client, SELECTION_WITH_ATTEMPTS, {
    input: { messages: [{ role: 'USER', content: 'Tell me a story.' }], ...input },
  });
  for (const result of results) expect(result.errors).toBeUndefined();
  return results.map((result) => result.data!.chatCompletion as ChatEvent & { conversationId?: string | null });
}

beforeAll(async () => {
  [alpha, beta] = await Promise.all([startFakeOpenAIUpstream({ tokenCount: 5 }), startFakeOpenAIUpstream({ tokenCount: 6 })]);
});

afterEach(() => {
  alpha.setScenario(undefined);
  beta.setScenario(undefined);
});

afterAll(async () => {
  await Promise.all([alpha?.close(), beta?.close()]);
});

describe('model resolution', () => {
  let started: StartedApp;
  let client: Client;
  beforeAll(async () => ({ started, client } = await startRoutingApp({ BREAKER_ENABLED: 'false' })));
  afterAll(async () => {
    await client?.dispose();
    await started?.stop();
  });

  it.each([
    ['a model both serve (first in order)', { model: 'shared-model' }, 'alpha', 'shared-model'],
    ['provider:model', { model: 'beta:shared-model' }, 'beta', 'shared-model'],
    ['an alias', { model: 'fast' }, 'beta', 'shared-model'],
    ['a model only one serves', { model: 'beta-only' }, 'beta', 'beta-only'],
    ['a provider id as the model', { model: 'beta' }, 'beta', 'shared-model'],
    ['a provider and a model', { provider: 'beta', model: 'shared-model' }, 'beta', 'shared-model'],
    ['a provider list (first serving the model)', { providers: ['alpha', 'beta'], model: 'beta-only' }, 'beta', 'beta-only'],
    ['space-separated providers', { provider: 'beta alpha', model: 'shared-model' }, 'beta', 'shared-model'],
  ])('%s', async (_name, input, provider, model) => {
    const events = await chat(client, input);
    expectWellFormedChatEvents(events);
    expect(events[0]).toMatchObject({ __typename: 'ChatCompletionStarted', provider, model });
    expect(events.at(-1)!.__typename).toBe('ChatCompletionCompleted');
  });

  it.each([
    ['an unknown model', { model: 'nobody-has-this' }, 'MODEL_NOT_FOUND'],
    ['an unknown provider:model', { model: 'alpha:beta-only' }, 'MODEL_NOT_FOUND'],
    ['an unknown provider in a list', { provider: 'alpha nobody' }, 'PROVIDER_NOT_FOUND'],
    ['a model none of the named providers serve', { provider: 'alpha', model: 'beta-only' }, 'MODEL_NOT_FOUND'],
  ])('%s → %s', async (_name, input, code) => {
    const response = await graphqlRequest(started.graphqlUrl, 'mutation($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }', {
      input: { messages: [{ role: 'USER', content: 'hi' }], ...input },
    });
    expect(response.errors![0]!.extensions!.code).toBe(code);
  });
});

describe('fallback', () => {
  let started: StartedApp;
  let client: Client;
  beforeAll(async () => ({ started, client } = await startRoutingApp({ BREAKER_ENABLED: 'false' })));
  afterAll(async () => {
    await client?.dispose();
    await started?.stop();
  });

  it('moves on when the first provider fails before content: one ProviderAttemptFailed, then the second streams', async () => {
    alpha.setScenario({ type: 'server-error' });
    const betaRequests = beta.chatRequests().length;
    const events = await chat(client, { provider: 'alpha beta', model: 'shared-model' });
    const text = expectWellFormedChatEvents(events);
    expect(events.map((event) => event.__typename).slice(0, 3)).toEqual(['ChatCompletionStarted', 'ProviderAttemptFailed', 'ChatCompletionStarted']);
    expect(events[1]).toMatchObject({ provider: 'alpha', error: { code: 'UPSTREAM_ERROR', provider: 'alpha' } });
    expect(events[2]).toMatchObject({ provider: 'beta', model: 'shared-model' });
    expect(text).toBe(fakeTokens(6).join(''));
    expect(beta.chatRequests().length).toBe(betaRequests + 1);
    const generation = await graphqlRequest(started.graphqlUrl, 'query($id: ID!) { generation(id: $id) { status provider } }', {
      id: events[0]!.generationId,
    });
    expect(generation.data.generation).toEqual({ status: 'COMPLETED', provider: 'beta' });
  });

  it('does not switch after content began: failing after 3 tokens fails the generation and the second provider is never called', async () => {
    alpha.setScenario({ type: 'drop-connection', tokensBefore: 3 });
    const betaRequests = beta.chatRequests().length;
    const events = await chat(client, { model: 'shared-model' });
    const text = expectWellFormedChatEvents(events);
    expect(text).toBe(fakeTokens(3).join(''));
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'UPSTREAM_CONNECTION_LOST', provider: 'alpha' } });
    expect(events.some((event) => event.__typename === 'ProviderAttemptFailed')).toBe(false);
    expect(beta.chatRequests().length).toBe(betaRequests);
  });

  it('all candidates failing gives ALL_PROVIDERS_FAILED naming each provider and its failure', async () => {
    alpha.setScenario({ type: 'server-error', message: 'alpha is down' });
    beta.setScenario({ type: 'rate-limited', message: 'beta is busy' });
    const events = await chat(client, { model: 'shared-model' });
    expectWellFormedChatEvents(events);
    const failed = events.at(-1)!;
    expect(failed).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'ALL_PROVIDERS_FAILED', provider: null } });
    expect(failed.error!.message).toMatch(/alpha: UPSTREAM_ERROR: .*alpha is down/);
    expect(failed.error!.message).toMatch(/beta: RATE_LIMITED: .*beta is busy/);
  });

  it('a single candidate keeps its own error code', async () => {
    alpha.setScenario({ type: 'unauthorized' });
    const events = await chat(client, { model: 'alpha-only' });
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'UNAUTHORIZED', provider: 'alpha' } });
  });
});

describe('circuit breaker', () => {
  let started: StartedApp;
  let client: Client;
  beforeAll(async () => ({ started, client } = await startRoutingApp({ BREAKER_FAILURE_THRESHOLD: '2', BREAKER_COOLDOWN_MS: '600000' })));
  afterAll(async () => {
    await client?.dispose();
    await started?.stop();
  });

  it('opens after repeated failures, shows the reason in providers, and skips the provider without calling it', async () => {
    alpha.setScenario({ type: 'server-error' });
    await chat(client, { model: 'shared-model' });
    await chat(client, { model: 'shared-model' });
    const providers = await graphqlRequest(started.graphqlUrl, '{ providers { id available unavailableReason } }');
    const alphaEntry = providers.data.providers.find((provider: { id: string }) => provider.id === 'alpha');
    expect(alphaEntry.available).toBe(false);
    expect(alphaEntry.unavailableReason).toMatch(/circuit open after 2 failure\(s\) in a row .*UPSTREAM_ERROR/);

    const alphaRequests = alpha.chatRequests().length;
    const events = await chat(client, { model: 'shared-model' });
    expect(alpha.chatRequests().length).toBe(alphaRequests);
    expect(events[1]).toMatchObject({ __typename: 'ProviderAttemptFailed', provider: 'alpha', error: { code: 'PROVIDER_UNAVAILABLE' } });
    expect(events.at(-1)!.__typename).toBe('ChatCompletionCompleted');
  });

  it('honours Retry-After from a 429', async () => {
    beta.setScenario({ type: 'rate-limited', retryAfter: 120 });
    await chat(client, { model: 'beta-only' });
    const providers = await graphqlRequest(started.graphqlUrl, '{ providers { id available unavailableReason } }');
    const betaEntry = providers.data.providers.find((provider: { id: string }) => provider.id === 'beta');
    expect(betaEntry.available).toBe(false);
    const retryAt = Date.parse(/retried after (\S+)$/.exec(betaEntry.unavailableReason)![1]!);
    expect(retryAt - Date.now()).toBeGreaterThan(100_000);
  });
});

describe('conversations', () => {
  let started: StartedApp;
  let client: Client;
  beforeAll(async () => ({ started, client } = await startRoutingApp({ CONVERSATION_MAX_MESSAGES: '5', CONVERSATION_MAX_CHARACTERS: '5000' })));
  afterAll(async () => {
    await client?.dispose();
    await started?.stop();
  });

  const turn = (conversationId: string, content: string) =>
    chat(client, { model: 'alpha-only', conversationId, messages: [{ role: 'USER', content }] });

  it('continues a conversation: the provider receives the whole history and the server keeps it', async () => {
    const first = await turn('story-1', 'My name is Ada.');
    expect(first.at(-1)).toMatchObject({ __typename: 'ChatCompletionCompleted', conversationId: 'story-1' });
    const answer = first.at(-1)!.text!;
    await turn('story-1', 'What is my name?');
    const request = alpha.chatRequests().at(-1)!;
    expect((request.body as { messages: unknown[] }).messages).toEqual([
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: answer },
      { role: 'user', content: 'What is my name?' },
    ]);
    const conversation = await graphqlRequest(
      started.graphqlUrl,
      'query($id: ID!) { conversation(id: $id) { id messages { role content provider model } createdAt updatedAt } }',
      { id: 'story-1' },
    );
    expect(conversation.data.conversation.messages).toEqual([
      { role: 'USER', content: 'My name is Ada.', provider: null, model: null },
      { role: 'ASSISTANT', content: answer, provider: 'alpha', model: 'alpha-only' },
      { role: 'USER', content: 'What is my name?', provider: null, model: null },
      { role: 'ASSISTANT', content: answer, provider: 'alpha', model: 'alpha-only' },
    ]);
    const generation = await graphqlRequest(started.graphqlUrl, 'query($id: ID!) { generation(id: $id) { ... on ChatGeneration { conversationId } } }', {
      id: first[0]!.generationId,
    });
    expect(generation.data.generation.conversationId).toBe('story-1');
  });

  it('takes a request that repeats the history as it is (OpenAI clients send everything)', async () => {
    const first = await turn('story-2', 'Hello');
    const answer = first.at(-1)!.text!;
    await chat(client, {
      model: 'alpha-only',
      conversationId: 'story-2',
      messages: [
        { role: 'USER', content: 'Hello' },
        { role: 'ASSISTANT', content: answer },
        { role: 'USER', content: 'Again' },
      ],
    });
    expect((alpha.chatRequests().at(-1)!.body as { messages: unknown[] }).messages).toHaveLength(3);
  });

  it('drops the oldest turns beyond the limit and refuses a message that alone exceeds it', async () => {
    for (const content of ['one', 'two', 'three']) await turn('story-3', content);
    const conversation = await graphqlRequest(started.graphqlUrl, 'query { conversation(id: "story-3") { messages { role content } } }');
    expect(conversation.data.conversation.messages).toHaveLength(5);
    expect(conversation.data.conversation.messages[0]).toEqual({ role: 'ASSISTANT', content: expect.any(String) });
    const tooLong = await graphqlRequest(started.graphqlUrl, 'mutation($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }', {
      input: { model: 'alpha-only', conversationId: 'story-3', messages: [{ role: 'USER', content: 'x'.repeat(5001) }] },
    });
    expect(tooLong.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
  });

  it('deletes a conversation', async () => {
    await turn('story-4', 'Hi');
    const deleted = await graphqlRequest(started.graphqlUrl, 'mutation { deleteConversation(id: "story-4") }');
    expect(deleted.data).toEqual({ deleteConversation: true });
    const again = await graphqlRequest(started.graphqlUrl, 'mutation { deleteConversation(id: "story-4") }');
    expect(again.data).toEqual({ deleteConversation: false });
    const gone = await graphqlRequest(started.graphqlUrl, 'query { conversation(id: "story-4") { id } }');
    expect(gone.data).toEqual({ conversation: null });
  });

  it('rejects a malformed conversation id', async () => {
    const response = await graphqlRequest(started.graphqlUrl, 'mutation($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }', {
      input: { model: 'alpha-only', conversationId: '../../etc', messages: [{ role: 'USER', content: 'hi' }] },
    });
    expect(response.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
  });
});
