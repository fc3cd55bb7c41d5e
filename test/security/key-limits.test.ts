/**
 * A virtual key's own limits on the real app (PGlite in memory, the real `stories260K` model and a
 * fake OpenAI-compatible upstream that reports usage): allowed models and providers (FORBIDDEN, and
 * fallback never tries a forbidden candidate), a token budget (BUDGET_EXCEEDED once spent, with the
 * period's reset), tokens per minute (RATE_LIMITED, the estimate settled with the real usage),
 * requests per minute and running generations overriding the server's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { budgetPeriodReset, budgetPeriodStart } from '../../src/security/budget-periods.js';
import { GenerationStore } from '../../src/storage/generation-store.js';
import { createApiKey, graphqlWithKey } from '../helpers/api-key-operations.js';
import { CHAT_COMPLETION_SUBSCRIPTION, type ChatEvent } from '../helpers/chat-operations.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const MASTER_KEY = 'master-key-0123456789abcdef';
const STATIC_KEY = 'static-key-0123456789';
const START_CHAT = 'mutation Start($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream({ tokenCount: 3 });
  started = await startApp({
    MASTER_KEY,
    API_KEYS: STATIC_KEY,
    DATABASE_URL: 'memory://',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model', 'endless'] }]),
  });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

const create = (input: Record<string, unknown>) => createApiKey(started.graphqlUrl, MASTER_KEY, input);
const startChat = (key: string, input: Record<string, unknown>) => graphqlWithKey(started.graphqlUrl, key, START_CHAT, { input });

/** A non-streamed chat over REST with `key`; the status, `Retry-After` and body. */
async function restChat(key: string, body: Record<string, unknown>) {
  const response = await postJson(started.url, '/v1/chat/completions', body, { headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as any };
}

/** The events of a chat streamed over graphql-ws with `key`. */
async function streamChat(key: string, input: Record<string, unknown>): Promise<ChatEvent[]> {
  const client = createWebSocketClient(started.webSocketUrl, { connectionParams: { authorization: `Bearer ${key}` } });
  try {
    return (await collectWebSocket<{ chatCompletion: ChatEvent }>(client, CHAT_COMPLETION_SUBSCRIPTION, { input })).map((result) => result.data!.chatCompletion);
  } finally {
    await client.dispose();
  }
}

describe('allowed models and providers', () => {
  it('refuses a model the key may not use with FORBIDDEN naming what it may use, before any upstream request', async () => {
    const { key } = await create({ name: 'stories only', limits: { allowedModels: ['stories260K'] } });
    const requestsBefore = upstream.chatRequests().length;
    const graphql = await startChat(key, { model: 'fake-model', messages: [{ role: 'USER', content: 'hi' }] });
    expect(graphql.status).toBe(403);
    expect(graphql.body.errors?.[0]).toMatchObject({
      message: 'This API key may not use fake:fake-model. It may use models stories260K.',
      extensions: { code: 'FORBIDDEN' },
    });
    const rest = await restChat(key, { model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(rest.status).toBe(403);
    expect(rest.body.error).toMatchObject({ code: 'FORBIDDEN', type: 'permission_error', message: expect.stringContaining('may use models stories260K') });
    expect(upstream.chatRequests()).toHaveLength(requestsBefore);
    expect((await restChat(key, { model: 'stories260K', messages: [{ role: 'user', content: 'Once' }], max_tokens: 4 })).status).toBe(200);
  });

  it('never falls back to a forbidden candidate', async () => {
    const { key } = await create({ name: 'fake only', limits: { allowedProviders: ['fake'] } });
    const input = { provider: 'fake llama-cpp', messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 4 };
    upstream.setScenario({ type: 'server-error' });
    try {
      // Without a restriction the failure of fake falls back to llama-cpp...
      const unrestricted = await streamChat(STATIC_KEY, input);
      expect(unrestricted.filter((event) => event.__typename === 'ChatCompletionStarted').map((event) => event.provider)).toEqual(['fake', 'llama-cpp']);
      // ...with it, llama-cpp is never tried.
      const restricted = await streamChat(key, input);
      expect(restricted.map((event) => event.__typename)).toEqual(['ChatCompletionStarted', 'GenerationFailed']);
      expect(restricted[0]!.provider).toBe('fake');
    } finally {
      upstream.setScenario(undefined);
    }
    const forbidden = await startChat(key, { model: 'stories260K', messages: [{ role: 'USER', content: 'hi' }] });
    expect(forbidden.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('It may use providers fake.'), extensions: { code: 'FORBIDDEN' } });
  });
});

describe('a token budget', () => {
  it('stops the key with BUDGET_EXCEEDED once spent, naming the reset; REST 429 with Retry-After', async () => {
    const budget = 40;
    const { key, apiKey } = await create({ name: 'budgeted', limits: { budgetTokens: budget, budgetPeriod: 'DAY' } });
    const body = { model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 8 };
    const estimate = Math.ceil('Once upon a time'.length / 4) + 8;
    const totals: number[] = [];
    let refusal: Awaited<ReturnType<typeof restChat>> | undefined;
    for (let attempt = 0; attempt < 10 && !refusal; attempt += 1) {
      const reply = await restChat(key, body);
      if (reply.status !== 200) refusal = reply;
      else {
        totals.push(reply.body.usage.total_tokens as number);
        await started.app.usageRecorder!.flush();
      }
    }
    const used = totals.reduce((sum, tokens) => sum + tokens, 0);
    expect(totals.length).toBeGreaterThan(0);
    expect(used - totals.at(-1)! + estimate).toBeLessThanOrEqual(budget); // the last start fit
    expect(used + estimate).toBeGreaterThan(budget); // the next does not
    const now = new Date();
    const reset = budgetPeriodReset('day', now)!;
    expect(refusal!.status).toBe(429);
    expect(refusal!.body.error).toMatchObject({ code: 'BUDGET_EXCEEDED', type: 'rate_limit_error', message: expect.stringContaining(`The budget resets at ${reset.toISOString()}.`) });
    expect(refusal!.body.error.message).toContain(`used ${used} of its ${budget} tokens this day (UTC)`);
    expect(Number(refusal!.retryAfter)).toBeGreaterThan(0);
    expect(Math.abs(Number(refusal!.retryAfter) - (reset.getTime() - now.getTime()) / 1000)).toBeLessThan(5);

    // The rows in the database hold exactly what the key used.
    const inDatabase = await new GenerationStore(started.app.database!.db).tokensSince(`key:${apiKey.id}`, budgetPeriodStart('day', now));
    expect(inDatabase).toBe(used);

    const graphql = await startChat(key, { model: 'stories260K', messages: [{ role: 'USER', content: 'Once upon a time' }], maxTokens: 8 });
    expect(graphql.status).toBe(429);
    expect(graphql.body.errors?.[0]?.extensions).toMatchObject({ code: 'BUDGET_EXCEEDED', resetsAt: reset.toISOString(), budgetTokens: budget, usedTokens: used });
  });
});

describe('tokens per minute', () => {
  it('counts the real usage in place of the estimate, and refuses past the limit with RATE_LIMITED and Retry-After', async () => {
    // Each request is estimated at 1 + 15 tokens and uses 1 + 3 (the fake counts words of the prompt and sends 3 tokens).
    const { key } = await create({ name: 'tokens per minute', limits: { tokensPerMinute: 20 } });
    const body = { model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 15 };
    const first = await restChat(key, body);
    expect(first.status).toBe(200);
    expect(first.body.usage.total_tokens).toBe(4);
    // 4 + 16 fits only because the first request's estimate (16) was replaced by its use (4).
    expect((await restChat(key, body)).status).toBe(200);
    const refused = await restChat(key, body);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringContaining('20 tokens per minute') });
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(60);

    const graphql = await startChat(key, { model: 'fake-model', messages: [{ role: 'USER', content: 'hi' }], maxTokens: 15 });
    expect(graphql.status).toBe(429);
    expect(graphql.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: expect.any(Number) });
    // A smaller request still fits the window: 8 + 1 + 5 <= 20.
    expect((await restChat(key, { ...body, max_tokens: 5 })).status).toBe(200);
  });
});

describe('requests per minute and running generations of a key', () => {
  it("override the server's defaults", async () => {
    const limited = await create({ name: 'two a minute', limits: { requestsPerMinute: 2 } });
    const input = { model: 'fake-model', messages: [{ role: 'USER', content: 'hi' }] };
    expect((await startChat(limited.key, input)).body.errors).toBeUndefined();
    expect((await startChat(limited.key, input)).body.errors).toBeUndefined();
    const third = await startChat(limited.key, input);
    expect(third.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('at most 2 generation starts per minute per API key'), extensions: { code: 'RATE_LIMITED' } });

    const single = await create({ name: 'one at a time', limits: { maxConcurrentGenerations: 1 } });
    const running = await startChat(single.key, { ...input, model: 'endless' });
    const id: string = running.body.data.startChatCompletion.id;
    const second = await startChat(single.key, input);
    expect(second.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('at most 1 at once per API key'), extensions: { code: 'RATE_LIMITED' } });
    await graphqlWithKey(started.graphqlUrl, single.key, 'mutation Cancel($id: ID!) { cancelGeneration(id: $id) { id } }', { id });
    expect((await startChat(single.key, input)).body.errors).toBeUndefined();
  });
});
