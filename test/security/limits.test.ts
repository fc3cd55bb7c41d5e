/**
 * The per-key limits end to end: the rate limit on generation starts (one budget for GraphQL over
 * HTTP, graphql-ws and REST), the cap on running generations (with the fake upstream's `endless`
 * stream), the request size limits and the body size limit; plus the limiter's window on its own.
 */
import OpenAI, { RateLimitError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryRateLimitStore, RateLimiter } from '../../src/security/rate-limiter.js';
import { RunningGenerationLimiter } from '../../src/security/running-generation-limiter.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, type GraphQLResponse } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const START_CHAT = `mutation Start($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id status } }`;
const START_IMAGE = `mutation StartImage($input: ImageGenerationInput!) { startImageGeneration(input: $input) { id } }`;
const CANCEL = `mutation Cancel($id: ID!) { cancelGeneration(id: $id) { id status } }`;
const CHAT_SUBSCRIPTION = `subscription Chat($input: ChatCompletionInput!) { chatCompletion(input: $input) { __typename } }`;
const chatInput = (content = 'hi', model = 'fake-model') => ({ model, messages: [{ role: 'USER', content }] });

/** POSTs an operation (with `Authorization: Bearer key` when a key is given). */
async function graphql(url: string, query: string, variables: Record<string, unknown>, key?: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(key && { authorization: `Bearer ${key}` }),
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as GraphQLResponse };
}

describe('the rate limiter on its own', () => {
  it('allows maxPerWindow starts in any window, does not count refusals, and says exactly when the next one fits', async () => {
    let now = 1_000_000;
    const limiter = new RateLimiter({ maxPerWindow: 2, windowMs: 60_000, now: () => now });
    expect(await limiter.consume('a')).toEqual({ allowed: true });
    now += 10_000;
    expect(await limiter.consume('a')).toEqual({ allowed: true });
    now += 10_000;
    expect(await limiter.consume('a')).toEqual({ allowed: false, retryAfterMs: 40_000 });
    expect(await limiter.consume('a')).toEqual({ allowed: false, retryAfterMs: 40_000 }); // the refusal was not counted
    expect(await limiter.consume('b')).toEqual({ allowed: true }); // another caller, another budget
    now += 40_000;
    expect(await limiter.consume('a')).toEqual({ allowed: true });
    expect(new RateLimiter({ maxPerWindow: 0, windowMs: 60_000 }).enabled).toBe(false);
  });

  it('forgets callers once their window is over', async () => {
    let now = 0;
    const store = new MemoryRateLimitStore(() => now);
    const limiter = new RateLimiter({ maxPerWindow: 5, windowMs: 1_000, store, now: () => now });
    for (let caller = 0; caller < 100; caller += 1) await limiter.consume(`ip:${caller}`);
    expect(store.size).toBe(100);
    now += 5_000;
    await limiter.consume('late');
    expect(store.size).toBe(1);
  });
});

describe('the running-generation limiter on its own', () => {
  it('counts slots until their generation ends or they are released', () => {
    const limiter = new RunningGenerationLimiter(2);
    let firstRunning = true;
    const first = limiter.reserve('a')!;
    first.holdWhile(() => firstRunning);
    const second = limiter.reserve('a')!;
    expect(limiter.reserve('a')).toBeUndefined();
    expect(limiter.reserve('b')).toBeDefined();
    firstRunning = false;
    expect(limiter.running('a')).toBe(1);
    second.release();
    second.release();
    expect(limiter.running('a')).toBe(0);
  });
});

describe('rate limit on generation starts', () => {
  let upstream: FakeOpenAIUpstream;
  let started: StartedApp;
  let openai: (key: string) => OpenAI;

  beforeAll(async () => {
    upstream = await startFakeOpenAIUpstream({ tokenCount: 2 });
    started = await startApp({
      API_KEYS: 'alice,bob,dave',
      RATE_LIMIT_PER_MINUTE: '3',
      MAX_CONCURRENT_GENERATIONS_PER_KEY: '0',
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'], imageModels: ['fake-image'] }]),
    });
    openai = (key) => new OpenAI({ baseURL: `${started.url}/v1`, apiKey: key, maxRetries: 0 });
  });

  afterAll(async () => {
    await started?.stop();
    await upstream?.close();
  });

  it('shares one budget per key between GraphQL and REST: the 4th start gets RATE_LIMITED / 429 with Retry-After', async () => {
    for (let index = 0; index < 2; index += 1) {
      const { status, body } = await graphql(started.graphqlUrl, START_CHAT, { input: chatInput() }, 'alice');
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
    }
    await openai('alice').chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    const upstreamCalls = upstream.chatRequests().length;

    const refused = await graphql(started.graphqlUrl, START_CHAT, { input: chatInput() }, 'alice');
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(60);
    expect(refused.body.errors).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/^Rate limit exceeded: at most 3 generation starts per minute per API key; try again in \d+ s\.$/),
        extensions: { code: 'RATE_LIMITED', retryAfterSeconds: Number(refused.retryAfter) },
      }),
    ]);

    const restError = await openai('alice')
      .chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] })
      .catch((caught: unknown) => caught);
    expect(restError).toBeInstanceOf(RateLimitError);
    expect(restError).toMatchObject({ status: 429, code: 'RATE_LIMITED', type: 'rate_limit_error' });
    expect(Number((restError as RateLimitError).headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const imageError = await openai('alice').images.generate({ model: 'fake-image', prompt: 'a fox' }).catch((caught: unknown) => caught);
    expect(imageError).toBeInstanceOf(RateLimitError);

    const webSocket = createWebSocketClient(started.webSocketUrl, { connectionParams: { authorization: 'Bearer alice' } });
    const overWebSocket = await collectWebSocket(webSocket, CHAT_SUBSCRIPTION, { input: chatInput() });
    expect(overWebSocket).toEqual([
      {
        errors: [
          expect.objectContaining({
            message: expect.stringMatching(/^Rate limit exceeded/),
            extensions: { code: 'RATE_LIMITED', retryAfterSeconds: expect.any(Number) }, // Yoga's `http` extension stays out
          }),
        ],
      },
    ]);
    await webSocket.dispose();

    expect(upstream.chatRequests()).toHaveLength(upstreamCalls); // refused starts never reach a provider
    // Queries and other mutations are not limited.
    expect((await graphql(started.graphqlUrl, '{ models { id } }', {}, 'alice')).status).toBe(200);
  });

  it('gives every key its own budget', async () => {
    for (let index = 0; index < 3; index += 1) {
      expect((await graphql(started.graphqlUrl, START_IMAGE, { input: { model: 'fake-image', prompt: 'a fox' } }, 'bob')).status).toBe(200);
    }
    expect((await graphql(started.graphqlUrl, START_IMAGE, { input: { model: 'fake-image', prompt: 'a fox' } }, 'bob')).status).toBe(429);
    expect((await graphql(started.graphqlUrl, START_CHAT, { input: chatInput() }, 'dave')).status).toBe(200);
  });

  it('limits the start-and-stream subscriptions over graphql-ws too', async () => {
    const webSocket = createWebSocketClient(started.webSocketUrl, { connectionParams: { authorization: 'Bearer dave' } });
    expect((await collectWebSocket(webSocket, CHAT_SUBSCRIPTION, { input: chatInput() })).at(-1)).toEqual({
      data: { chatCompletion: { __typename: 'ChatCompletionCompleted' } },
    });
    await collectWebSocket(webSocket, CHAT_SUBSCRIPTION, { input: chatInput() });
    const refused = await collectWebSocket(webSocket, CHAT_SUBSCRIPTION, { input: chatInput() });
    expect(refused).toEqual([{ errors: [expect.objectContaining({ message: expect.stringMatching(/^Rate limit exceeded/) })] }]);
    await webSocket.dispose();
  });
});

describe('cap on running generations', () => {
  let upstream: FakeOpenAIUpstream;
  let started: StartedApp;

  beforeAll(async () => {
    upstream = await startFakeOpenAIUpstream({ defaultScenario: { type: 'endless', gapMs: 20 } });
    started = await startApp({
      API_KEYS: 'carol,erin',
      RATE_LIMIT_PER_MINUTE: '0',
      MAX_CONCURRENT_GENERATIONS_PER_KEY: '2',
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'] }]),
    });
  });

  afterAll(async () => {
    await started?.stop();
    await upstream?.close();
  });

  const start = (key: string, model?: string) => graphql(started.graphqlUrl, START_CHAT, { input: chatInput('hi', model) }, key);

  it('refuses a third running generation with RATE_LIMITED / 429, and admits one again once one ends', async () => {
    const first = await start('carol');
    const second = await start('carol');
    expect([first.body.data?.startChatCompletion.status, second.body.data?.startChatCompletion.status]).toEqual(['RUNNING', 'RUNNING']);

    const refused = await start('carol');
    expect(refused.status).toBe(429);
    expect(refused.body.errors?.[0]).toMatchObject({
      message: 'Too many running generations: at most 2 at once per API key; wait for one to end or cancel one.',
      extensions: { code: 'RATE_LIMITED' },
    });
    const rest = await fetch(`${started.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer carol' },
      body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(rest.status).toBe(429);
    expect(await rest.json()).toMatchObject({ error: { code: 'RATE_LIMITED', type: 'rate_limit_error', message: expect.stringMatching(/^Too many running generations/) } });

    // Another key is not affected.
    const other = await start('erin');
    expect(other.status).toBe(200);

    await graphql(started.graphqlUrl, CANCEL, { id: first.body.data.startChatCompletion.id }, 'carol');
    expect((await start('carol')).status).toBe(200);
    expect((await start('carol')).status).toBe(429);
  });

  it('frees the slot of a start that fails (unknown model) at once', async () => {
    for (let index = 0; index < 3; index += 1) {
      const { body } = await start('erin', 'no-such-model');
      expect(body.errors?.[0]?.extensions?.code).toBe('MODEL_NOT_FOUND');
    }
  });

  it('holds a slot for a start-and-stream subscription until it is closed', async () => {
    // erin has one running generation from the previous test.
    const webSocket = createWebSocketClient(started.webSocketUrl, { connectionParams: { authorization: 'Bearer erin' } });
    const events: string[] = [];
    let unsubscribe = () => {};
    const firstEvent = new Promise<void>((resolve) => {
      unsubscribe = webSocket.subscribe(
        { query: CHAT_SUBSCRIPTION, variables: { input: chatInput() } },
        {
          next: (result) => {
            events.push((result.data as { chatCompletion: { __typename: string } }).chatCompletion.__typename);
            resolve();
          },
          error: () => {},
          complete: () => {},
        },
      );
    });
    await firstEvent;
    expect((await start('erin')).status).toBe(429);
    unsubscribe();
    await expect.poll(async () => (await start('erin')).status, { timeout: 5_000 }).toBe(200);
    await webSocket.dispose();
  });
});

describe('size limits, and limits by IP address when authentication is off', () => {
  let upstream: FakeOpenAIUpstream;
  let started: StartedApp;

  beforeAll(async () => {
    upstream = await startFakeOpenAIUpstream({ tokenCount: 2 });
    started = await startApp({
      RATE_LIMIT_PER_MINUTE: '2',
      MAX_MESSAGES: '2',
      MAX_MESSAGE_CHARACTERS: '50',
      MAX_PROMPT_CHARACTERS: '20',
      MAX_REQUEST_BODY_BYTES: '2000',
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'], imageModels: ['fake-image'] }]),
    });
  });

  afterAll(async () => {
    await started?.stop();
    await upstream?.close();
  });

  it('refuses too many messages, a too long message and a too long prompt with BAD_USER_INPUT (not counted against the rate limit)', async () => {
    const tooMany = await graphql(started.graphqlUrl, START_CHAT, {
      input: { model: 'fake-model', messages: [1, 2, 3].map((index) => ({ role: 'USER', content: `m${index}` })) },
    });
    expect(tooMany.body.errors?.[0]).toMatchObject({ message: 'messages: at most 2 messages per request (got 3)', extensions: { code: 'BAD_USER_INPUT' } });

    const tooLong = await graphql(started.graphqlUrl, START_CHAT, { input: chatInput('x'.repeat(51)) });
    expect(tooLong.body.errors?.[0]).toMatchObject({ message: 'messages.0.content: content must be at most 50 characters', extensions: { code: 'BAD_USER_INPUT' } });

    const rest = await fetch(`${started.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'ok' }, { role: 'user', content: 'x'.repeat(51) }] }),
    });
    expect(rest.status).toBe(400);
    expect(await rest.json()).toMatchObject({ error: { code: 'BAD_USER_INPUT', param: 'messages[1].content' } });

    const prompt = await graphql(started.graphqlUrl, START_IMAGE, { input: { model: 'fake-image', prompt: 'p'.repeat(21) } });
    expect(prompt.body.errors?.[0]).toMatchObject({ message: 'prompt: prompt must be at most 20 characters', extensions: { code: 'BAD_USER_INPUT' } });
    expect(upstream.requests.filter((request) => request.method === 'POST')).toHaveLength(0);
  });

  it('rate-limits by IP address when no keys are configured', async () => {
    expect((await graphql(started.graphqlUrl, START_CHAT, { input: chatInput() })).status).toBe(200);
    expect((await graphql(started.graphqlUrl, START_CHAT, { input: chatInput() })).status).toBe(200);
    const refused = await graphql(started.graphqlUrl, START_CHAT, { input: chatInput() });
    expect(refused.status).toBe(429);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
  });

  it('answers 413 REQUEST_TOO_LARGE for a GraphQL body over MAX_REQUEST_BODY_BYTES, declared or chunked, and REST too', async () => {
    const big = JSON.stringify({ query: `{ models { id } } # ${'x'.repeat(2100)}` });
    const declared = await fetch(started.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toEqual({ errors: [{ message: 'The request body is larger than 2000 bytes.', extensions: { code: 'REQUEST_TOO_LARGE' } }] });

    const encoded = new TextEncoder().encode(big);
    const chunked = await fetch(started.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(encoded.subarray(0, 1000));
          controller.enqueue(encoded.subarray(1000));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);

    const rest = await fetch(`${started.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'x'.repeat(2100) }] }),
    });
    expect(rest.status).toBe(413);
    expect(await rest.json()).toMatchObject({ error: { code: 'REQUEST_TOO_LARGE' } });

    // A body just under the limit, sent in pieces, reaches Yoga whole.
    const small = new TextEncoder().encode(JSON.stringify({ query: `{ models { id } } # ${'x'.repeat(1500)}` }));
    const fine = await fetch(started.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(small.subarray(0, 700));
          controller.enqueue(small.subarray(700));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(fine.status).toBe(200);
    expect(((await fine.json()) as GraphQLResponse).data?.models).toContainEqual({ id: 'fake-model' });
  });
});
