/**
 * Owner leases on one real Redis (127.0.0.1:6379, database 15): an instance in role `all` runs as a
 * child process (`node --import tsx src/main.ts`) and two instances run in the test process. When the
 * child is killed (SIGKILL) mid-generation, subscribers on the other instances get every event once,
 * then `GenerationFailed` with `INSTANCE_LOST` (one terminal event in the stream, whoever wrote it),
 * within about GENERATION_LEASE_MS + SUBSCRIPTION_RECHECK_MS; `generation(id)` then says FAILED,
 * also for a generation nobody followed. A generation on a live instance that runs for several
 * leases, silent for many re-checks at a time, is never declared lost.
 */
import type { Client } from 'graphql-ws';
import { Redis } from 'ioredis';
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
import { GENERATION_OWNER_PREFIX } from '../../src/scale-out/generation-leases.js';
import { EVENT_STREAM_PREFIX } from '../../src/scale-out/redis-event-log.js';
import { GENERATION_RECORD_PREFIX } from '../../src/scale-out/redis-generation-records.js';
import { loadConfig } from '../../src/config.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
const LEASE_MS = 1_000;
const RECHECK_MS = 300;
const SLOW_MODEL = 'stream?tokens=4&gapMs=1200';
let upstream: FakeOpenAIUpstream;
let redis: Redis;
/** The role-`all` instance in a child process, killed mid-stream by a test. */
let child: AppProcess;
let childGraphqlUrl: string;
let second: StartedApp;
let third: StartedApp;
let clientOfSecond: Client;
let clientOfThird: Client;
const generationIds: string[] = [];

/** Starts a chat on `graphqlUrl` with the fake provider; returns its id. */
async function startChat(graphqlUrl: string, model: string): Promise<string> {
  const start = await graphqlRequest(graphqlUrl, START_CHAT_COMPLETION, {
    input: { provider: 'fake', model, messages: [{ role: 'USER', content: 'go' }] },
  });
  expect(start.errors).toBeUndefined();
  const id = start.data.startChatCompletion.id as string;
  generationIds.push(id);
  return id;
}

/** Follows a generation over graphql-ws, calling `onEvent` for each event; resolves with all of them and when the last arrived. */
function follow(client: Client, generationId: string, onEvent: (event: ChatEvent) => void = () => {}): Promise<{ events: ChatEvent[]; endedAt: number }> {
  return new Promise((resolve, reject) => {
    const events: ChatEvent[] = [];
    let endedAt = 0;
    client.subscribe<{ chatCompletionEvents: ChatEvent }>(
      { query: CHAT_COMPLETION_EVENTS_SUBSCRIPTION, variables: { generationId } },
      {
        next: (result) => {
          if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
          const event = result.data!.chatCompletionEvents;
          events.push(event);
          endedAt = performance.now();
          onEvent(event);
        },
        error: reject,
        complete: () => resolve({ events, endedAt }),
      },
    );
  });
}

/** The events in the generation's Redis stream, as stored. */
async function storedEvents(generationId: string): Promise<Array<{ type: string; sequence: number; error?: { code: string } }>> {
  const entries = await redis.xrange(EVENT_STREAM_PREFIX + generationId, '-', '+');
  return entries.map(([, fields]) => JSON.parse(fields[1]!));
}

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
  redis = new Redis(REDIS_URL);
  const settings = {
    REDIS_URL,
    // Instances on one Redis share the callers' start budget (one per address without keys): keep it out of these tests.
    RATE_LIMIT_PER_MINUTE: '0',
    SUBSCRIPTION_RECHECK_MS: String(RECHECK_MS),
    GENERATION_LEASE_MS: String(LEASE_MS),
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['endless?gapMs=20', SLOW_MODEL] }]),
  };
  [child, second, third] = await Promise.all([startAppProcess({ ...settings, ROLE: 'all' }), startApp(settings), startApp(settings)]);
  childGraphqlUrl = child.graphqlUrl;
  clientOfSecond = createWebSocketClient(second.webSocketUrl);
  clientOfThird = createWebSocketClient(third.webSocketUrl);
}, 60_000);

afterAll(async () => {
  await child?.kill();
  await Promise.all([clientOfSecond?.dispose(), clientOfThird?.dispose()]);
  await Promise.all([second?.stop(), third?.stop()]);
  await upstream?.close();
  if (redis) {
    const keys = generationIds.flatMap((id) => [EVENT_STREAM_PREFIX + id, GENERATION_RECORD_PREFIX + id, GENERATION_OWNER_PREFIX + id]);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
});

describe('owner leases', () => {
  it('never declares lost a generation whose instance renews its lease, though it runs for several leases', async () => {
    const id = await startChat(childGraphqlUrl, SLOW_MODEL);
    const startedAt = performance.now();
    // Between tokens (1.2 s apart) the subscribers wait, and re-check the record and the lease every 300 ms.
    const following = Promise.all([follow(clientOfSecond, id), follow(clientOfThird, id)]);
    const ttl = await redis.pttl(GENERATION_OWNER_PREFIX + id);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(LEASE_MS);
    expect(await redis.get(GENERATION_OWNER_PREFIX + id)).toMatch(/\S/);
    const onB = await graphqlRequest(second.graphqlUrl, GENERATION_QUERY, { id });
    expect(onB.data.generation).toMatchObject({ id, status: 'RUNNING' });

    const [{ events }, { events: onThird }] = await following;
    expect(performance.now() - startedAt).toBeGreaterThan(3 * LEASE_MS);
    const text = expectWellFormedChatEvents(events);
    expect(events.at(-1)).toMatchObject({ __typename: 'ChatCompletionCompleted', text });
    expect(onThird).toEqual(events);
    const record = await graphqlRequest(third.graphqlUrl, GENERATION_QUERY, { id });
    expect(record.data.generation).toMatchObject({ id, status: 'COMPLETED', text });
    // The lease goes once the generation ended.
    await expect.poll(() => redis.exists(GENERATION_OWNER_PREFIX + id)).toBe(0);
  }, 30_000);

  it('ends with INSTANCE_LOST, exactly once, the generations of an instance killed mid-stream', async () => {
    const followed = await startChat(childGraphqlUrl, 'endless?gapMs=20');
    const unfollowed = await startChat(childGraphqlUrl, 'endless?gapMs=20');
    let killedAt = 0;
    const kill = (event: ChatEvent) => {
      if (event.sequence === 5 && killedAt === 0) {
        killedAt = performance.now();
        void child.kill();
      }
    };
    const [onSecond, onThird] = await Promise.all([follow(clientOfSecond, followed, kill), follow(clientOfThird, followed)]);
    await child.exited;

    const text = expectWellFormedChatEvents(onSecond.events);
    expect(onSecond.events.length).toBeGreaterThan(5);
    const terminal = onSecond.events.at(-1)!;
    expect(terminal).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'INSTANCE_LOST', provider: 'fake' } });
    expect(terminal.error!.message).toBe(
      `The instance running this generation stopped responding (no lease renewal for ${LEASE_MS} ms); it is not restarted, so no output is repeated.`,
    );
    expect(onThird.events).toEqual(onSecond.events);
    // The lease lapses at most LEASE_MS after the kill, and a waiting subscriber looks every RECHECK_MS (plus slack for a busy machine).
    expect(onSecond.endedAt - killedAt).toBeLessThan(LEASE_MS + RECHECK_MS + 1_500);

    // Both instances looked; the stream took one terminal event.
    const stored = await storedEvents(followed);
    expect(stored.map((event) => event.sequence)).toEqual(onSecond.events.map((event) => event.sequence));
    expect(stored.filter((event) => event.type === 'generation-failed')).toHaveLength(1);

    const record = await graphqlRequest(second.graphqlUrl, GENERATION_QUERY, { id: followed });
    expect(record.data.generation).toMatchObject({ id: followed, status: 'FAILED', text, error: { code: 'INSTANCE_LOST', provider: 'fake' } });
    expect(record.data.generation.finishedAt).toEqual(expect.any(String));

    // Nobody followed the other one: a lookup finds it RUNNING without a lease and ends it.
    await expect.poll(() => redis.exists(GENERATION_OWNER_PREFIX + unfollowed)).toBe(0);
    const lookedUp = await graphqlRequest(third.graphqlUrl, GENERATION_QUERY, { id: unfollowed });
    expect(lookedUp.data.generation).toMatchObject({ id: unfollowed, status: 'FAILED', error: { code: 'INSTANCE_LOST' } });
    const replayed = (await collectWebSocket(clientOfSecond, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, { generationId: unfollowed })).map(
      (result) => result.data!.chatCompletionEvents as ChatEvent,
    );
    const unfollowedText = expectWellFormedChatEvents(replayed);
    expect(replayed.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'INSTANCE_LOST' } });
    expect(lookedUp.data.generation.text).toBe(unfollowedText);
  }, 30_000);
});

describe('lease settings', () => {
  it('defaults to 10 s and refuses leases shorter than 300 ms', () => {
    expect(loadConfig({}).generationLeaseMs).toBe(10_000);
    expect(loadConfig({ GENERATION_LEASE_MS: '2500' }).generationLeaseMs).toBe(2_500);
    expect(() => loadConfig({ GENERATION_LEASE_MS: '100' })).toThrow(/GENERATION_LEASE_MS must be at least 300/);
  });
});
