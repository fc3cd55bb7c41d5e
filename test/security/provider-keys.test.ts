/**
 * Per-request provider keys: REST `api_key` and the GraphQL input field `apiKey` reach the
 * upstream for that request only (instead of the configured key), go to one provider only (no
 * fallback hands them on), and never appear in records, events, error messages or logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/operations/logger.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { IMAGE_GENERATION_SUBSCRIPTION } from '../helpers/image-operations.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const REQUEST_KEY = 'sk-request-secret-0123456789';
const START_CHAT = `mutation Start($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }`;
const CHAT_SUBSCRIPTION = `subscription Chat($input: ChatCompletionInput!) { chatCompletion(input: $input) {
  __typename ... on GenerationFailed { error { code message provider } } ... on ChatCompletionCompleted { text } } }`;

let first: FakeOpenAIUpstream;
let second: FakeOpenAIUpstream;
let started: StartedApp;
const logLines: string[] = [];

beforeAll(async () => {
  first = await startFakeOpenAIUpstream({ tokenCount: 2, scenarios: { 'shared-model': { type: 'server-error', status: 503 } } });
  second = await startFakeOpenAIUpstream({ tokenCount: 2 });
  started = await startApp(
    {
      BREAKER_ENABLED: 'false',
      LOG_LEVEL: 'debug',
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
        { id: 'first', baseURL: first.baseURL, apiKey: 'configured-first', models: ['fake-model', 'unauthorized', 'shared-model'], imageModels: ['fake-image'] },
        { id: 'second', baseURL: second.baseURL, apiKey: 'configured-second', models: ['shared-model'] },
      ]),
    },
    { logger: createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } }) },
  );
});

afterAll(async () => {
  await started?.stop();
  await first?.close();
  await second?.close();
});

/** Everything the app keeps about a generation: its record and its events, as JSON. */
async function keptAbout(generationId: string): Promise<string> {
  const events = [];
  for await (const event of await started.app.generations.subscribe(generationId)) events.push(event);
  return JSON.stringify({ record: started.app.generations.get(generationId), events });
}

describe('REST api_key', () => {
  it('is sent to the upstream instead of the configured key, for that request only', async () => {
    const post = (body: Record<string, unknown>) =>
      fetch(`${started.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], ...body }),
      });
    const withKey = await post({ api_key: REQUEST_KEY });
    expect(withKey.status).toBe(200);
    const reply = (await withKey.json()) as { id: string };
    expect(first.chatRequests().at(-1)!.headers.authorization).toBe(`Bearer ${REQUEST_KEY}`);
    expect(await keptAbout(reply.id.replace(/^chatcmpl-/, ''))).not.toContain(REQUEST_KEY);

    expect((await post({})).status).toBe(200);
    expect(first.chatRequests().at(-1)!.headers.authorization).toBe('Bearer configured-first');
  });

  it('is redacted from the upstream\'s error even when the upstream echoes it', async () => {
    const response = await fetch(`${started.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'unauthorized', provider: 'first', messages: [{ role: 'user', content: 'hi' }], api_key: REQUEST_KEY }),
    });
    expect(response.status).toBe(401);
    const text = await response.text();
    expect(text).toMatch(/Incorrect API key provided: \*\*\*/);
    expect(text).not.toContain(REQUEST_KEY);
  });

  it('works for images too', async () => {
    const response = await fetch(`${started.url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-image', prompt: 'a fox', response_format: 'b64_json', api_key: REQUEST_KEY }),
    });
    expect(response.status).toBe(200);
    expect(first.imageRequests().at(-1)!.headers.authorization).toBe(`Bearer ${REQUEST_KEY}`);
  });
});

describe('GraphQL apiKey', () => {
  it('is sent to the upstream and kept nowhere (record, events)', async () => {
    const { data } = await graphqlRequest(started.graphqlUrl, START_CHAT, {
      input: { model: 'fake-model', messages: [{ role: 'USER', content: 'hi' }], apiKey: REQUEST_KEY },
    });
    const id = data.startChatCompletion.id as string;
    const kept = await keptAbout(id);
    expect(first.chatRequests().at(-1)!.headers.authorization).toBe(`Bearer ${REQUEST_KEY}`);
    expect(kept).not.toContain(REQUEST_KEY);
    expect(kept).toContain('chat-completion-completed');
  });

  it('is redacted from a GenerationFailed message over graphql-ws', async () => {
    const client = createWebSocketClient(started.webSocketUrl);
    const results = await collectWebSocket(client, CHAT_SUBSCRIPTION, {
      input: { model: 'unauthorized', provider: 'first', messages: [{ role: 'USER', content: 'hi' }], apiKey: REQUEST_KEY },
    });
    await client.dispose();
    expect(results.at(-1)?.data?.chatCompletion).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'UNAUTHORIZED', message: expect.stringMatching(/\*\*\*/) } });
    expect(JSON.stringify(results)).not.toContain(REQUEST_KEY);
  });

  it('goes to the first provider only: no fallback hands it to another upstream', async () => {
    const input = { model: 'shared-model', messages: [{ role: 'USER', content: 'hi' }] };
    const client = createWebSocketClient(started.webSocketUrl);
    // Without a key, the first upstream fails and the second serves the request.
    const withoutKey = await collectWebSocket(client, CHAT_SUBSCRIPTION, { input });
    expect(withoutKey.at(-1)?.data?.chatCompletion).toMatchObject({ __typename: 'ChatCompletionCompleted' });
    const secondCalls = second.chatRequests().length;
    expect(second.chatRequests().at(-1)!.headers.authorization).toBe('Bearer configured-second');
    // With a key, only the first is tried.
    const withKey = await collectWebSocket(client, CHAT_SUBSCRIPTION, { input: { ...input, apiKey: REQUEST_KEY } });
    await client.dispose();
    expect(withKey.at(-1)?.data?.chatCompletion).toMatchObject({ __typename: 'GenerationFailed', error: { provider: 'first' } });
    expect(second.chatRequests()).toHaveLength(secondCalls);
  });

  it('is accepted on image generations', async () => {
    const client = createWebSocketClient(started.webSocketUrl);
    const results = await collectWebSocket(client, IMAGE_GENERATION_SUBSCRIPTION, {
      input: { model: 'fake-image', prompt: 'a fox', responseFormat: 'B64_JSON', apiKey: REQUEST_KEY },
    });
    await client.dispose();
    expect(results.at(-1)?.data?.imageGeneration).toMatchObject({ __typename: 'ImageGenerationCompleted' });
    expect(first.imageRequests().at(-1)!.headers.authorization).toBe(`Bearer ${REQUEST_KEY}`);
    expect(JSON.stringify(results)).not.toContain(REQUEST_KEY);
  });
});

describe('logs', () => {
  it('never contain a per-request key (debug level, after every test above)', () => {
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('\n')).not.toContain(REQUEST_KEY);
  });
});
