/**
 * Every generation ends and every token limit is bounded, end to end: `MAX_TOKENS_LIMIT` refuses
 * larger requests over GraphQL and REST, `DEFAULT_MAX_TOKENS` reaches the upstream, a generation
 * past `GENERATION_TIMEOUT_MS` fails with `GENERATION_TIMEOUT`, a prompt that does not fit the
 * context gets OpenAI's `context_length_exceeded` (from the local model and from an upstream),
 * and gpt4free's client (no `max_tokens`, a kept conversation) finishes two turns on llama-cpp.
 */
import OpenAI, { BadRequestError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_COMPLETION_SUBSCRIPTION, START_CHAT_COMPLETION, expectWellFormedChatEvents, type ChatEvent } from '../helpers/chat-operations.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { collectChatStream, postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let openai: OpenAI;

const CONTEXT_LENGTH_EXCEEDED_MODEL = 'http-error?status=400&code=context_length_exceeded';

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
  started = await startApp({
    BREAKER_ENABLED: 'false',
    MAX_TOKENS_LIMIT: '4096',
    DEFAULT_MAX_TOKENS: '300',
    GENERATION_TIMEOUT_MS: '400',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      { id: 'fake', baseURL: upstream.baseURL, models: ['fake-model', 'endless?gapMs=5', CONTEXT_LENGTH_EXCEEDED_MODEL] },
    ]),
  });
  openai = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

const hello = [{ role: 'USER', content: 'Hello' }];

describe('MAX_TOKENS_LIMIT and DEFAULT_MAX_TOKENS', () => {
  it('refuses a GraphQL maxTokens above the limit with BAD_USER_INPUT naming it, and starts nothing', async () => {
    const before = started.app.generations.size;
    const response = await graphqlRequest(started.graphqlUrl, START_CHAT_COMPLETION, {
      input: { model: 'fake:fake-model', messages: hello, maxTokens: 2147483647 },
    });
    expect(response.errors?.[0]).toMatchObject({
      message: 'maxTokens: must be at most 4096 (MAX_TOKENS_LIMIT of this server)',
      extensions: { code: 'BAD_USER_INPUT' },
    });
    expect(started.app.generations.size).toBe(before);
  });

  it('answers REST max_tokens 1e12 with 400 and param max_tokens (the openai client raises BadRequestError)', async () => {
    const error = await openai.chat.completions
      .create({ model: 'fake:fake-model', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 1e12 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).error).toMatchObject({ param: 'max_tokens', code: 'BAD_USER_INPUT' });
    expect((error as BadRequestError).message).toContain('max_tokens: must be at most 4096');
  });

  it('sends DEFAULT_MAX_TOKENS to the upstream when the request sets none, and the request\'s own otherwise', async () => {
    const requestsBefore = upstream.chatRequests().length;
    await openai.chat.completions.create({ model: 'fake:fake-model', messages: [{ role: 'user', content: 'Hello' }] });
    await openai.chat.completions.create({ model: 'fake:fake-model', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 7 });
    const bodies = upstream.chatRequests().slice(requestsBefore).map((request) => request.body as { max_tokens?: number });
    expect(bodies.map((body) => body.max_tokens)).toEqual([300, 7]);
  });
});

describe('GENERATION_TIMEOUT_MS', () => {
  it('fails an endless generation with GENERATION_TIMEOUT over graphql-ws, keeping the text that streamed', async () => {
    const client = createWebSocketClient(started.webSocketUrl);
    try {
      const results = await collectWebSocket<{ chatCompletion: ChatEvent }>(client, CHAT_COMPLETION_SUBSCRIPTION, {
        input: { model: 'fake:endless?gapMs=5', messages: hello },
      });
      const events = results.map((result) => result.data!.chatCompletion);
      const text = expectWellFormedChatEvents(events);
      expect(text.length).toBeGreaterThan(0);
      expect(events.at(-1)).toMatchObject({
        __typename: 'GenerationFailed',
        error: { code: 'GENERATION_TIMEOUT', message: 'The generation ran longer than 400 ms (GENERATION_TIMEOUT_MS) and was stopped.' },
      });
      const record = started.app.generations.get(events[0]!.generationId);
      expect(record).toMatchObject({ status: 'failed', text });
    } finally {
      await client.dispose();
    }
    // The upstream request was aborted with it.
    await upstream.waitForClientClose();
  });

  it('ends an endless REST stream in-band with GENERATION_TIMEOUT after its text', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', {
      model: 'fake:endless?gapMs=5',
      messages: [{ role: 'user', content: 'Hello' }],
      stream: true,
    });
    expect(response.status).toBe(200);
    const collected = await collectChatStream(response);
    expect(collected.text.length).toBeGreaterThan(0);
    expect(collected.error).toMatchObject({ code: 'GENERATION_TIMEOUT' });
    expect(collected.done).toBe(true);
  });
});

describe('context length', () => {
  it('passes on an upstream\'s 400 context_length_exceeded with the same code', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', {
      model: `fake:${CONTEXT_LENGTH_EXCEEDED_MODEL}`,
      messages: [{ role: 'user', content: 'Hello' }],
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: unknown }).error).toMatchObject({ code: 'context_length_exceeded', param: 'messages', provider: 'fake' });
  });
});

describe('on llama-cpp', () => {
  let local: StartedApp;
  beforeAll(async () => {
    local = await startApp({ LLAMA_CONTEXT_SIZE: '512' });
  });
  afterAll(async () => {
    await local?.stop();
  });

  it('answers a prompt longer than the local model\'s context with 400 context_length_exceeded (REST) and CONTEXT_LENGTH_EXCEEDED (GraphQL)', async () => {
    const long = 'the cat sat on the mat. '.repeat(400);
    const error = await localClient().chat.completions
      .create({ model: 'llama-cpp:stories260K', messages: [{ role: 'user', content: long }], stream: true })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).error).toMatchObject({ code: 'context_length_exceeded', param: 'messages', provider: 'llama-cpp' });
    expect((error as BadRequestError).message).toMatch(/context holds 512 tokens, and the messages take \d+/);

    const client = createWebSocketClient(local.webSocketUrl);
    try {
      const results = await collectWebSocket<{ chatCompletion: ChatEvent }>(client, CHAT_COMPLETION_SUBSCRIPTION, {
        input: { model: 'llama-cpp:stories260K', messages: [{ role: 'USER', content: long }] },
      });
      expect(results.at(-1)!.data!.chatCompletion).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'CONTEXT_LENGTH_EXCEEDED', provider: 'llama-cpp' } });
    } finally {
      await client.dispose();
    }
  });

  it('finishes two turns of gpt4free\'s chat client (a kept conversation, no max_tokens; the first fills the context)', async () => {
    const turn = async (content: string) => {
      const response = await postJson(local.url, '/v1/chat/completions', {
        model: '',
        provider: 'llama-cpp',
        messages: [{ role: 'user', content }],
        stream: true,
        conversation_id: 'seed-client-conversation',
      });
      expect(response.status).toBe(200);
      return collectChatStream(response);
    };
    const first = await turn('Once upon a time');
    expect(first.error).toBeUndefined();
    expect(first.done).toBe(true);
    expect(first.chunks.at(-1)!.choices[0]!.finish_reason).toBe('length');
    // No limit from the client: the reply ran until the context was full.
    expect(first.chunks.at(-1)!.usage!.prompt_tokens + first.chunks.at(-1)!.usage!.completion_tokens).toBeGreaterThan(400);
    const second = await turn('The dog ran away.');
    expect(second.error).toBeUndefined();
    expect(second.done).toBe(true);
    expect(second.text.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(second.chunks.at(-1)!.choices[0]!.finish_reason);
  });

  function localClient(): OpenAI {
    return new OpenAI({ baseURL: `${local.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }
});
