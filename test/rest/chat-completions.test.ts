/**
 * `POST /v1/chat/completions` end to end: the app on port 0, the official `openai` npm client and
 * plain `fetch` (as gpt4free's example clients send it), against a local server speaking OpenAI's
 * exact SSE format and against the real llama.cpp model `stories260K`.
 */
import OpenAI, { APIError, AuthenticationError, BadRequestError, InternalServerError, NotFoundError, RateLimitError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationEvent } from '../../src/generations/generation-events.js';
import { fakeTokens, startFakeOpenAIUpstream, unusedBaseURL, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectChatStream, dataLines, postJson, type ChatChunk } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let openai: OpenAI;

const FAKE_MODELS = [
  'fake-model',
  'stream?tokens=12',
  'length',
  'rate-limited?retryAfterSeconds=7',
  'server-error',
  'unauthorized',
  'not-found',
  'drop-connection?tokensBefore=3',
  'in-band-error?tokensBefore=2',
  'stall?tokensBefore=2',
];

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
  started = await startApp({
    // Failures in these tests must not switch the provider off for the tests that follow.
    BREAKER_ENABLED: 'false',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      { id: 'fake', label: 'Fake upstream', baseURL: upstream.baseURL, models: FAKE_MODELS, idleTimeoutMs: 20_000 },
      { id: 'fake-down', label: 'Nothing listens here', baseURL: await unusedBaseURL(), models: ['fake-model', 'server-error'] },
    ]),
  });
  openai = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

const messages = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'Tell me a story.' },
];

/** Follows a generation to its terminal event through the service the app runs. */
async function terminalEvent(generationId: string): Promise<GenerationEvent> {
  let last: GenerationEvent | undefined;
  for await (const event of await started.app.generations.subscribe(generationId)) last = event;
  return last!;
}

describe('the official openai client', () => {
  it('streams from the fake upstream: role in the first delta, the upstream text, a finish chunk with usage', async () => {
    const requestsBefore = upstream.chatRequests().length;
    const stream = await openai.chat.completions.create({
      model: 'fake:stream?tokens=12',
      messages,
      stream: true,
      temperature: 0.5,
      max_tokens: 100,
      stop: 'THE END',
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.slice(1).every((chunk) => chunk.choices[0]!.delta.role === undefined)).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]!.delta.content ?? '').join('')).toBe(fakeTokens(12).join(''));
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    expect(chunks[0]!.id).toMatch(/^chatcmpl-[0-9a-f-]{36}$/);
    for (const chunk of chunks) {
      expect(chunk).toMatchObject({ object: 'chat.completion.chunk', model: 'stream?tokens=12', provider: 'fake' });
      expect(chunk.created).toBeGreaterThan(1_600_000_000);
    }
    const last = chunks.at(-1)!;
    expect(last.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    expect(last.usage).toMatchObject({ completion_tokens: 12 });
    expect(last.usage!.total_tokens).toBe(last.usage!.prompt_tokens + last.usage!.completion_tokens);
    expect(chunks.slice(0, -1).every((chunk) => chunk.choices[0]!.finish_reason === null)).toBe(true);

    expect(upstream.chatRequests()[requestsBefore]!.body).toMatchObject({
      model: 'stream?tokens=12',
      messages,
      temperature: 0.5,
      max_tokens: 100,
      stop: ['THE END'],
    });
  });

  it('answers a non-streaming completion from the fake upstream', async () => {
    const completion = await openai.chat.completions.create({ model: 'fake:stream?tokens=12', messages });
    expect(completion).toMatchObject({
      object: 'chat.completion',
      model: 'stream?tokens=12',
      provider: 'fake',
      choices: [{ index: 0, message: { role: 'assistant', content: fakeTokens(12).join('') }, finish_reason: 'stop' }],
      usage: { completion_tokens: 12 },
    });
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.created).toBe(Math.floor(completion.created));
  });

  it('reports finish_reason "length"', async () => {
    const completion = await openai.chat.completions.create({ model: 'fake:length', messages });
    expect(completion.choices[0]!.finish_reason).toBe('length');
  });

  it('streams and completes with the real llama.cpp model stories260K', async () => {
    const stream = await openai.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Once upon a time' }],
      max_tokens: 24,
      stream: true,
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks[0]).toMatchObject({ provider: 'llama-cpp', model: 'stories260K' });
    const text = chunks.map((chunk) => chunk.choices[0]!.delta.content ?? '').join('');
    expect(text.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(chunks.at(-1)!.choices[0]!.finish_reason);
    const generation = started.app.generations.get(chunks[0]!.id.slice('chatcmpl-'.length));
    expect(generation).toMatchObject({ status: 'completed', text });

    const completion = await openai.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Once upon a time' }],
      max_tokens: 24,
    });
    expect(completion).toMatchObject({ provider: 'llama-cpp', model: 'stories260K' });
    expect(completion.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(completion.usage!.completion_tokens).toBeGreaterThan(0);
  });

  it('raises NotFoundError for an unknown model, with our code', async () => {
    const error = await openai.chat.completions.create({ model: 'no-such-model', messages }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND', type: 'invalid_request_error' });
    const streaming = await openai.chat.completions.create({ model: 'no-such-model', messages, stream: true }).catch((caught: unknown) => caught);
    expect(streaming).toBeInstanceOf(NotFoundError);
  });

  it('raises BadRequestError for bad input', async () => {
    const empty = await openai.chat.completions.create({ model: 'fake:fake-model', messages: [] }).catch((caught: unknown) => caught);
    expect(empty).toBeInstanceOf(BadRequestError);
    expect(empty).toMatchObject({ status: 400, code: 'BAD_USER_INPUT', param: 'messages' });
    const hot = await openai.chat.completions.create({ model: 'fake:fake-model', messages, temperature: 7 }).catch((caught: unknown) => caught);
    expect(hot).toBeInstanceOf(BadRequestError);
    expect(hot).toMatchObject({ param: 'temperature' });
  });

  it.each([
    ['rate-limited?retryAfterSeconds=7', RateLimitError, 429, 'RATE_LIMITED'],
    ['unauthorized', AuthenticationError, 401, 'UNAUTHORIZED'],
    ['not-found', NotFoundError, 404, 'UPSTREAM_NOT_FOUND'],
    ['server-error', InternalServerError, 502, 'UPSTREAM_ERROR'],
  ] as const)('an upstream failure before the first token (%s) raises %s', async (model, errorClass, status, code) => {
    for (const stream of [true, false]) {
      const error = await openai.chat.completions.create({ model: `fake:${model}`, messages, stream }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(errorClass);
      expect(error).toMatchObject({ status, code });
      expect((error as APIError).error).toMatchObject({ provider: 'fake' });
    }
  });

  it('raises an APIError while iterating when the upstream fails after the first token', async () => {
    const stream = await openai.chat.completions.create({ model: 'fake:in-band-error?tokensBefore=2', messages, stream: true });
    let text = '';
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ code: 'UPSTREAM_ERROR' });
    expect(text).toBe(fakeTokens(2).join(''));
  });
});

describe('plain fetch, as gpt4free clients send it', () => {
  it('streams {"model":"","provider":"fake",…,"stream":true} as data lines ending with [DONE]', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', {
      model: '',
      provider: 'fake',
      messages: [{ role: 'user', content: 'Tell me a story.' }],
      stream: true,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    const stream = await collectChatStream(response);
    expect(stream.error).toBeUndefined();
    expect(stream.done).toBe(true);
    expect(stream.trailing).toEqual([]);
    expect(stream.text).toBe(fakeTokens(8).join(''));
    expect(stream.chunks[0]).toMatchObject({ model: 'fake-model', provider: 'fake', choices: [{ delta: { role: 'assistant' } }] });
    expect(stream.chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
  });

  it('maps array contents and the developer role, and ignores fields it does not use', async () => {
    const requestsBefore = upstream.chatRequests().length;
    const response = await postJson(started.url, '/v1/chat/completions', {
      model: 'fake-model',
      provider: 'fake',
      messages: [
        { role: 'developer', content: [{ type: 'text', text: 'Be ' }, { type: 'text', text: 'brief.' }] },
        { role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
      ],
      presence_penalty: 0.1,
      frequency_penalty: 0.2,
      web_search: false,
      api_key: 'sk-ignored',
      max_completion_tokens: 33,
      something_new: { nested: true },
    });
    expect(response.status).toBe(200);
    // Text-only contents are joined; a content with an image reaches the upstream as a content array.
    expect(upstream.chatRequests()[requestsBefore]!.body).toMatchObject({
      max_tokens: 33,
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Hi' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
      ],
    });
  });

  it('sends a failure after the first token in-band, then [DONE]', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', {
      model: 'drop-connection?tokensBefore=3',
      provider: 'fake',
      messages: [{ role: 'user', content: 'Tell me a story.' }],
      stream: true,
    });
    expect(response.status).toBe(200);
    const stream = await collectChatStream(response);
    expect(stream.text).toBe(fakeTokens(3).join(''));
    expect(stream.error).toMatchObject({ code: 'UPSTREAM_CONNECTION_LOST', type: 'server_error', provider: 'fake' });
    expect(stream.error!.message).toEqual(expect.any(String));
    expect(stream.done).toBe(true);
    expect(stream.trailing).toEqual([]);
  });

  it('answers a failure before the first token with a real status and an OpenAI error body', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', {
      model: 'rate-limited?retryAfterSeconds=7',
      provider: 'fake',
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      error: { message: expect.stringContaining('429'), type: 'rate_limit_error', param: null, code: 'RATE_LIMITED', provider: 'fake' },
    });
  });

  it('writes each chunk as it comes: the first arrives while the upstream is still open', async () => {
    const requestsBefore = upstream.chatRequests().length;
    const controller = new AbortController();
    const response = await postJson(
      started.url,
      '/v1/chat/completions',
      { model: 'stall?tokensBefore=2', provider: 'fake', messages: [{ role: 'user', content: 'Hi' }], stream: true },
      { signal: controller.signal },
    );
    const lines = dataLines(response);
    const first = JSON.parse((await lines.next()).value as string) as ChatChunk;
    expect(first.choices[0]!.delta.role).toBe('assistant');
    const upstreamRequest = upstream.chatRequests()[requestsBefore]!;
    // The upstream stalls after two tokens and never ends on its own: nothing waited for its end.
    controller.abort();
    expect(await upstreamRequest.ended).toBe('client-closed');
  });
});

describe('client disconnects', () => {
  it('a streaming client that leaves cancels the generation and aborts the upstream request', async () => {
    const requestsBefore = upstream.chatRequests().length;
    const controller = new AbortController();
    const response = await postJson(
      started.url,
      '/v1/chat/completions',
      { model: 'fake:stall?tokensBefore=2', messages: [{ role: 'user', content: 'Hi' }], stream: true },
      { signal: controller.signal },
    );
    const first = JSON.parse((await dataLines(response).next()).value as string) as ChatChunk;
    const generationId = first.id.slice('chatcmpl-'.length);
    expect(started.app.generations.get(generationId)?.status).toBe('running');

    controller.abort();
    expect(await upstream.chatRequests()[requestsBefore]!.ended).toBe('client-closed');
    expect(await terminalEvent(generationId)).toMatchObject({ type: 'generation-cancelled', reason: 'client disconnected' });
    expect(started.app.generations.get(generationId)?.status).toBe('cancelled');
  });

  it('a non-streaming client that leaves cancels the generation and aborts the upstream request', async () => {
    const requestsBefore = upstream.chatRequests().length;
    const controller = new AbortController();
    const pending = postJson(
      started.url,
      '/v1/chat/completions',
      { model: 'fake:stall?tokensBefore=2', messages: [{ role: 'user', content: 'Hi' }] },
      { signal: controller.signal },
    ).catch((error: unknown) => error);
    const upstreamRequest = await upstream.waitForChatRequest(requestsBefore + 1);
    controller.abort();
    expect(await pending).toMatchObject({ name: 'AbortError' });
    expect(await upstreamRequest.ended).toBe('client-closed');
  });
});

describe('errors before anything starts', () => {
  const chat = (body: unknown) => postJson(started.url, '/v1/chat/completions', body);

  it.each([
    ['a number as model', { model: 5, messages }, 'model'],
    ['a number as content', { messages: [{ role: 'user', content: 3 }] }, 'messages[0].content'],
    ['no messages field', { model: 'fake-model' }, 'messages'],
    ['a string as stream', { messages, stream: 'yes' }, 'stream'],
    ['a tool message without tool_call_id', { messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id'],
    ['a function message (the legacy form)', { messages: [{ role: 'function', name: 'f', content: 'x' }] }, 'messages[0].role'],
    ['a null content', { messages: [{ role: 'user', content: null }] }, 'messages[0].content'],
    ['a missing content', { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user' }] }, 'messages[1].content'],
    ['an assistant\'s null content without tool_calls', { messages: [{ role: 'assistant', content: null }, { role: 'user', content: 'x' }] }, 'messages[0].content'],
    ['an unknown role', { messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
    ['max_tokens 0', { messages, max_tokens: 0 }, 'max_tokens'],
    ['n = 2', { messages, n: 2 }, 'n'],
  ])('400 for %s, naming the field', async (_name, body, param) => {
    const response = await chat(body);
    expect(response.status).toBe(400);
    const json = (await response.json()) as { error: Record<string, unknown> };
    expect(json.error).toMatchObject({ type: 'invalid_request_error', code: 'BAD_USER_INPUT', param });
    expect(json.error.message).toContain(param);
  });

  it('400 for a body that is not JSON or not an object', async () => {
    for (const body of ['{"messages":', '[1,2]', '']) {
      const response = await chat(body);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: 'BAD_USER_INPUT', type: 'invalid_request_error', param: null } });
    }
  });

  it('404 for an unknown model or provider', async () => {
    const model = await chat({ model: 'no-such-model', messages, stream: true });
    expect(model.status).toBe(404);
    expect(await model.json()).toMatchObject({ error: { code: 'MODEL_NOT_FOUND', type: 'invalid_request_error', param: 'model' } });
    const provider = await chat({ provider: 'no-such-provider', messages });
    expect(provider.status).toBe(404);
    expect(await provider.json()).toMatchObject({
      error: { code: 'PROVIDER_NOT_FOUND', param: 'provider', message: expect.stringContaining('no-such-provider') },
    });
  });

  it('413 for a body over 4 MiB, and the server keeps serving', async () => {
    const huge = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(4 * 1024 * 1024 + 10) }] });
    const response = await chat(huge);
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: 'REQUEST_TOO_LARGE', type: 'invalid_request_error' } });
    expect((await chat({ model: 'fake-model', provider: 'fake', messages })).status).toBe(200);
  });
});

// These rely on conversations and provider fallback in the generation service.
describe('conversations and fallback', () => {
  it('conversation_id: a follow-up with only the new message continues the stored conversation', async () => {
    const conversationId = `rest-conversation-${Date.now()}`;
    const first = await postJson(started.url, '/v1/chat/completions', {
      model: 'fake-model',
      provider: 'fake',
      conversation_id: conversationId,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello' },
      ],
    });
    expect(first.status).toBe(200);
    const firstReply = (await first.json()) as { conversation_id?: string; choices: Array<{ message: { content: string } }> };
    expect(firstReply.conversation_id).toBe(conversationId);

    const requestsBefore = upstream.chatRequests().length;
    const second = await postJson(started.url, '/v1/chat/completions', {
      model: 'fake-model',
      provider: 'fake',
      conversation_id: conversationId,
      messages: [{ role: 'user', content: 'And then?' }],
      stream: true,
    });
    expect(second.status).toBe(200);
    const stream = await collectChatStream(second);
    expect(stream.error).toBeUndefined();
    expect(stream.chunks[0]!.conversation_id).toBe(conversationId);
    expect((upstream.chatRequests()[requestsBefore]!.body as { messages: unknown }).messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: firstReply.choices[0]!.message.content },
      { role: 'user', content: 'And then?' },
    ]);
  });

  it('a bad conversation_id is a 400 naming conversation_id', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', { provider: 'fake', conversation_id: '../etc', messages });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 'BAD_USER_INPUT', param: 'conversation_id' } });
  });

  it('"provider": "fake-down fake" falls back to the second provider, streaming and not', async () => {
    const stream = await collectChatStream(
      await postJson(started.url, '/v1/chat/completions', { model: 'fake-model', provider: 'fake-down fake', messages, stream: true }),
    );
    expect(stream.error).toBeUndefined();
    expect(stream.text).toBe(fakeTokens(8).join(''));
    expect(stream.chunks.every((chunk) => chunk.provider === 'fake')).toBe(true);

    const completion = await postJson(started.url, '/v1/chat/completions', { model: 'fake-model', provider: 'fake-down fake', messages });
    expect(completion.status).toBe(200);
    expect(await completion.json()).toMatchObject({ provider: 'fake', choices: [{ message: { content: fakeTokens(8).join('') } }] });
  });

  it('every provider failing is a 502 ALL_PROVIDERS_FAILED naming each', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', { model: 'server-error', provider: 'fake-down fake', messages, stream: true });
    expect(response.status).toBe(502);
    const { error } = (await response.json()) as { error: { code: string; message: string; type: string } };
    expect(error).toMatchObject({ code: 'ALL_PROVIDERS_FAILED', type: 'server_error' });
    expect(error.message).toContain('fake-down');
    expect(error.message).toContain('fake:');
  });
});
