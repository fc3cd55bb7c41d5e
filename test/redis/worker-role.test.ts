/**
 * Roles `api` and `worker` on one real Redis (127.0.0.1:6379, database 15), with a queue prefix of
 * their own: the api instance runs in the test process, the worker is a child process
 * (`node --import tsx src/main.ts`, `ROLE=worker`). A chat started on the api instance runs on the
 * worker (llama.cpp `stories260K`) and streams from the api instance; a worker killed mid-generation
 * ends the generation with `WORKER_LOST`, and no event is repeated.
 */
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHAT_COMPLETION_EVENTS_SUBSCRIPTION,
  GENERATION_QUERY,
  START_CHAT_COMPLETION,
  expectWellFormedChatEvents,
  type ChatEvent,
} from '../helpers/chat-operations.js';
import { startAppProcess, type AppProcess } from '../helpers/app-process.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { ConfigError, loadConfig } from '../../src/config.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
const QUEUE_PREFIX = `test-worker-role-${process.pid}-${Date.now()}`;
let upstream: FakeOpenAIUpstream;
let api: StartedApp;
let client: Client;
/** The worker instance in a child process (its BullMQ workers run once it logged that it listens). */
let worker: AppProcess;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
  const settings = {
    REDIS_URL,
    // Instances on one Redis share the callers' start budget (one per address without keys): keep it out of these tests.
    RATE_LIMIT_PER_MINUTE: '0',
    QUEUE_PREFIX,
    WORKER_LOCK_MS: '1000',
    SUBSCRIPTION_RECHECK_MS: '300',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['endless?gapMs=20'] }]),
  };
  [api, worker] = await Promise.all([startApp({ ...settings, ROLE: 'api' }), startAppProcess({ ...settings, ROLE: 'worker' })]);
  client = createWebSocketClient(api.webSocketUrl);
}, 60_000);

afterAll(async () => {
  await worker?.kill();
  await client?.dispose();
  await api?.stop();
  await upstream?.close();
});

describe('roles api and worker', () => {
  it('runs on the worker a chat started on the api instance, streamed from the api instance', async () => {
    const start = await graphqlRequest(api.graphqlUrl, START_CHAT_COMPLETION, {
      input: { provider: 'llama-cpp', model: 'stories260K', maxTokens: 30, messages: [{ role: 'USER', content: 'Once upon a time' }] },
    });
    expect(start.errors).toBeUndefined();
    const id = start.data.startChatCompletion.id as string;
    const events = (await collectWebSocket(client, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, { generationId: id })).map(
      (result) => result.data!.chatCompletionEvents as ChatEvent,
    );
    const text = expectWellFormedChatEvents(events);
    expect(events[0]).toMatchObject({ provider: 'llama-cpp', model: 'stories260K' });
    expect(events.at(-1)!.__typename).toBe('ChatCompletionCompleted');
    expect(text.length).toBeGreaterThan(0);
    const record = await graphqlRequest(api.graphqlUrl, GENERATION_QUERY, { id });
    expect(record.data.generation).toMatchObject({ id, status: 'COMPLETED', provider: 'llama-cpp', text });
  }, 60_000);

  it('ends the generation with WORKER_LOST when the worker dies mid-generation', async () => {
    const start = await graphqlRequest(api.graphqlUrl, START_CHAT_COMPLETION, {
      input: { provider: 'fake', model: 'endless?gapMs=20', messages: [{ role: 'USER', content: 'go' }] },
    });
    expect(start.errors).toBeUndefined();
    const id = start.data.startChatCompletion.id as string;
    const events = await new Promise<ChatEvent[]>((resolve, reject) => {
      const seen: ChatEvent[] = [];
      client.subscribe<{ chatCompletionEvents: ChatEvent }>(
        { query: CHAT_COMPLETION_EVENTS_SUBSCRIPTION, variables: { generationId: id } },
        {
          next: (result) => {
            const event = result.data!.chatCompletionEvents;
            seen.push(event);
            if (event.sequence === 5) void worker.kill();
          },
          error: reject,
          complete: () => resolve(seen),
        },
      );
    });
    await worker.exited;
    expectWellFormedChatEvents(events);
    expect(events.length).toBeGreaterThan(5);
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'WORKER_LOST', provider: 'fake' } });
    const record = await graphqlRequest(api.graphqlUrl, GENERATION_QUERY, { id });
    expect(record.data.generation).toMatchObject({ id, status: 'FAILED', error: { code: 'WORKER_LOST' } });
  }, 60_000);
});

describe('worker role settings', () => {
  it('defaults to role all, and roles api and worker need REDIS_URL', () => {
    expect(loadConfig({})).toMatchObject({ role: 'all', workerConcurrency: 4, workerLockMs: 30_000 });
    expect(() => loadConfig({ ROLE: 'worker' })).toThrow(ConfigError);
    expect(() => loadConfig({ ROLE: 'api' })).toThrow(/ROLE: api needs REDIS_URL/);
    expect(() => loadConfig({ ROLE: 'both', REDIS_URL })).toThrow(/ROLE must be all, api or worker/);
  });

  it('reads per-provider concurrency', () => {
    const config = loadConfig({ ROLE: 'worker', REDIS_URL, WORKER_CONCURRENCY: '2', WORKER_CONCURRENCY_LLAMA_CPP: '1' });
    expect(config.workerConcurrency).toBe(2);
    expect(config.workerConcurrencyByProvider['llama-cpp']).toBe(1);
    expect(() => loadConfig({ WORKER_CONCURRENCY_FAKE: '0' })).toThrow(/WORKER_CONCURRENCY_FAKE/);
  });
});
