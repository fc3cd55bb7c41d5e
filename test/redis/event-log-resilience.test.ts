/**
 * The event log under Redis trouble, with real instances on the real Redis (127.0.0.1:6379, db 15):
 * - events gone from the stream (XTRIM, DEL) end a subscriber with `EVENTS_EXPIRED`, never a skip
 *   or a hang, over graphql-ws and SSE;
 * - an instance whose Redis goes away (a TCP proxy in front of Redis that the test closes, then
 *   reopens) ends its running generation with `EVENT_LOG_UNAVAILABLE`, fails new work fast, says so
 *   on `/readyz` (`/healthz` stays 200), keeps serving what needs no Redis, and recovers: the generation's end is written
 *   once Redis is back, and the subscriber on another instance gets it;
 * - restarting either instance mid-stream: the subscriber on the other one gets every event exactly once.
 */
import { connect } from 'node:net';
import type { Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CANCEL_GENERATION,
  CHAT_COMPLETION_EVENTS_SUBSCRIPTION,
  GENERATION_QUERY,
  START_CHAT_COMPLETION,
  expectWellFormedChatEvents,
  type ChatEvent,
} from '../helpers/chat-operations.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectServerSentEvents, createWebSocketClient, graphqlRequest, type GraphQLResponse } from '../helpers/graphql-clients.js';
import { dataLines, postJson } from '../helpers/rest-clients.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

// A server of this file's own: its tests kill the gateways' Redis connections (see private-redis.ts).
let privateRedis: PrivateRedis;
let REDIS_URL: string;
const STREAM_PREFIX = 'gateway:events:';

/** How one subscription ended: its events, and the GraphQL errors or the socket close code that ended it (none = completed). */
interface Followed {
  events: ChatEvent[];
  errors?: GraphQLResponse['errors'];
  closeCode?: number;
}

/** Follows `chatCompletionEvents` over graphql-ws until it completes, fails or the socket closes; `onEvent` sees each event as it arrives. */
function follow(client: Client, generationId: string, after?: number, onEvent: (event: ChatEvent) => void = () => {}): Promise<Followed> {
  return new Promise((resolve) => {
    const events: ChatEvent[] = [];
    client.subscribe<{ chatCompletionEvents: ChatEvent }>(
      { query: CHAT_COMPLETION_EVENTS_SUBSCRIPTION, variables: { generationId, ...(after !== undefined && { after }) } },
      {
        next: (result) => {
          const event = result.data!.chatCompletionEvents;
          events.push(event);
          onEvent(event);
        },
        error: (error) =>
          resolve(
            Array.isArray(error)
              ? { events, errors: error as GraphQLResponse['errors'] }
              : { events, closeCode: (error as { code?: number }).code ?? -1 },
          ),
        complete: () => resolve({ events }),
      },
    );
  });
}

/** A promise with its resolver, for "the subscriber has reached sequence n". */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

const user = [{ role: 'USER', content: 'go' }];
let upstream: FakeOpenAIUpstream;
let admin: Redis;
let settings: Record<string, string>;

beforeAll(async () => {
  privateRedis = await startPrivateRedis();
  REDIS_URL = privateRedis.url;
  upstream = await startFakeOpenAIUpstream();
  admin = new Redis(REDIS_URL);
  settings = {
    REDIS_URL,
    // Instances on one Redis share the callers' start budget (one per address without keys): keep it out of these tests.
    RATE_LIMIT_PER_MINUTE: '0',
    DELTA_COALESCE_MS: '0',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      {
        id: 'fake',
        baseURL: upstream.baseURL,
        models: ['stream?tokens=10', 'stream?tokens=10&gapMs=5', 'stream?tokens=40&gapMs=10', 'stall?tokensBefore=3', 'endless?gapMs=20'],
      },
    ]),
  };
});

afterAll(async () => {
  await admin?.quit();
  await upstream?.close();
  await privateRedis?.stop();
});

async function startChat(app: StartedApp, model: string): Promise<string> {
  const response = await graphqlRequest(app.graphqlUrl, START_CHAT_COMPLETION, { input: { provider: 'fake', model, messages: user } });
  expect(response.errors).toBeUndefined();
  return response.data.startChatCompletion.id as string;
}

describe('events gone from the stream', () => {
  let first: StartedApp;
  let second: StartedApp;
  let clientOfFirst: Client;
  let clientOfSecond: Client;

  beforeAll(async () => {
    [first, second] = await Promise.all([
      startApp({ ...settings, SUBSCRIPTION_RECHECK_MS: '300' }),
      // Its subscribers re-read the stream once a second: the test below acts between two re-reads.
      startApp({ ...settings, SUBSCRIPTION_RECHECK_MS: '1000' }),
    ]);
    clientOfFirst = createWebSocketClient(first.webSocketUrl);
    clientOfSecond = createWebSocketClient(second.webSocketUrl);
  });

  afterAll(async () => {
    await Promise.all([clientOfFirst?.dispose(), clientOfSecond?.dispose()]);
    await Promise.all([first?.stop(), second?.stop()]);
  });

  it('a subscriber with after whose events were trimmed or deleted gets EVENTS_EXPIRED over graphql-ws and SSE; what remains still replays', async () => {
    const id = await startChat(first, 'stream?tokens=10&gapMs=5');
    const all = await follow(clientOfFirst, id);
    expectWellFormedChatEvents(all.events);
    const total = all.events.length;
    expect(total).toBeGreaterThan(6); // tokens 5 ms apart arrive as separate deltas

    await admin.xtrim(STREAM_PREFIX + id, 'MINID', 6); // keeps 6..total
    const trimmed = await follow(clientOfSecond, id, 2);
    expect(trimmed.events).toEqual([]);
    expect(trimmed.errors).toEqual([expect.objectContaining({ extensions: { code: 'EVENTS_EXPIRED' } })]);
    expect(trimmed.errors![0]!.message).toContain(`Events 3 to 5 of generation "${id}"`);

    const overSse = await collectServerSentEvents(second.graphqlUrl, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, { generationId: id, after: 2 });
    expect(overSse).toEqual([{ errors: [expect.objectContaining({ extensions: { code: 'EVENTS_EXPIRED' } })] }]);
    expect(overSse[0]!.errors![0]!.message).toContain(`Events 3 to 5 of generation "${id}"`);

    expect(await follow(clientOfSecond, id, 5)).toEqual({ events: all.events.slice(5) });

    await admin.del(STREAM_PREFIX + id);
    const deleted = await follow(clientOfSecond, id);
    expect(deleted.events).toEqual([]);
    expect(deleted.errors![0]).toMatchObject({ extensions: { code: 'EVENTS_EXPIRED' } });
    expect(deleted.errors![0]!.message).toContain(`Events 1 to ${total} of generation "${id}"`);
  });

  it('a subscriber whose generation ended while its pub/sub connection was down (CLIENT KILL) and whose stream was trimmed meanwhile ends with EVENTS_EXPIRED, not a hang', async () => {
    const id = await startChat(first, 'stall?tokensBefore=3');
    const key = STREAM_PREFIX + id;
    const following = follow(clientOfSecond, id);
    const top = async () => Number(((await admin.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0').split('-')[0]);
    // MONITOR on a plain socket shows the commands Redis runs, the subscriber's re-reads included.
    const target = new URL(REDIS_URL);
    const monitor = connect(Number(target.port || 6379), target.hostname);
    try {
      monitor.write('MONITOR\r\n');
      // Act right after one of its periodic re-reads of the stream that found nothing new (the
      // upstream has stalled), so its next re-read is a second away. Its first re-read by position
      // is the one that follows its subscription's confirmation, at once, maybe before the stall: skipped.
      const reread = new RegExp(`"xrange" "${key}" "\\((\\d+)-0"`, 'i');
      let rereads = 0;
      const last = await new Promise<number>((resolve) => {
        monitor.on('data', (chunk: Buffer) => {
          const match = reread.exec(chunk.toString());
          if (match && ++rereads > 1) void top().then((current) => current === Number(match[1]) && resolve(current));
        });
      });
      // Its live events stop until ioredis has reconnected and subscribed again (≥ 200 ms).
      const clients = (await admin.client('LIST')) as string;
      for (const line of clients.split('\n')) {
        if (line.includes('name=graphql-ai-gateway') && /flags=\S*P/.test(line)) await admin.client('KILL', 'ID', /(?:^|\s)id=(\d+)/.exec(line)![1]!);
      }
      await first.app.generations.cancel(id, 'cancelled while the subscriber was not listening');
      await admin.xtrim(key, 'MAXLEN', 0); // the terminal event is gone from the stream too
      const result = await following;
      expect(result.events.map((event) => event.sequence)).toEqual(Array.from({ length: last }, (_, index) => index + 1));
      expect(result.errors).toEqual([expect.objectContaining({ extensions: { code: 'EVENTS_EXPIRED' } })]);
      expect(result.errors![0]!.message).toContain(`Events ${last + 1} to ${last + 1} of generation "${id}"`);
    } finally {
      monitor.destroy();
    }
  });
});

describe('Redis lost by a running instance (its connections go through a proxy the test closes)', () => {
  let proxy: TcpProxy;
  let proxied: StartedApp;
  let direct: StartedApp;
  let clientOfProxied: Client;
  let clientOfDirect: Client;

  beforeAll(async () => {
    const target = new URL(REDIS_URL);
    proxy = new TcpProxy(target.hostname, Number(target.port || 6379));
    await proxy.listen();
    [proxied, direct] = await Promise.all([
      startApp({
        ...settings,
        REDIS_URL: `redis://127.0.0.1:${proxy.port}${target.pathname}`,
        SUBSCRIPTION_RECHECK_MS: '300',
        // The shared rate limit (another Redis user) is not what this test is about.
        RATE_LIMIT_PER_MINUTE: '0',
      }),
      startApp({ ...settings, SUBSCRIPTION_RECHECK_MS: '300' }),
    ]);
    clientOfProxied = createWebSocketClient(proxied.webSocketUrl);
    clientOfDirect = createWebSocketClient(direct.webSocketUrl);
  });

  afterAll(async () => {
    await Promise.all([clientOfProxied?.dispose(), clientOfDirect?.dispose()]);
    await proxy?.restore().catch(() => {});
    await Promise.all([proxied?.stop(), direct?.stop()]);
    await proxy?.cut();
  });

  it('ends the running generation with EVENT_LOG_UNAVAILABLE, fails new work fast, reports degraded health, and recovers when Redis is back', async () => {
    const id = await startChat(proxied, 'endless?gapMs=20');
    const fifth = signal();
    const onProxied = follow(clientOfProxied, id, undefined, (event) => event.sequence === 5 && fifth.resolve());
    const onDirect = follow(clientOfDirect, id);
    // A REST streaming reply on the same instance, some of it already sent.
    const restReply = await postJson(proxied.url, '/v1/chat/completions', {
      model: 'endless?gapMs=20',
      provider: 'fake',
      messages: [{ role: 'user', content: 'go' }],
      stream: true,
    });
    expect(restReply.status).toBe(200);
    const restLines = dataLines(restReply);
    for (let read = 0; read < 3; read += 1) expect((await restLines.next()).done).toBe(false);
    await fifth.promise;

    await proxy.cut();

    // The REST reply ends in-band with an OpenAI-style error, then [DONE].
    const restAfter: string[] = [];
    for (let line = await restLines.next(); !line.done; line = await restLines.next()) restAfter.push(line.value);
    expect(restAfter.slice(-2)).toEqual([expect.stringContaining('"error"'), '[DONE]']);
    expect(JSON.parse(restAfter.at(-2)!)).toEqual({ error: expect.objectContaining({ code: 'EVENT_LOG_UNAVAILABLE', type: 'server_error' }) });
    expect(restAfter.slice(0, -2).every((line) => JSON.parse(line).object === 'chat.completion.chunk')).toBe(true);

    // The subscriber on the instance that lost Redis gets a clear error instead of waiting forever.
    const local = await onProxied;
    expectContiguousFromOne(local.events);
    expect(local.errors).toEqual([expect.objectContaining({ extensions: { code: 'EVENT_LOG_UNAVAILABLE' } })]);
    expect(local.errors![0]!.message).toContain(id);

    // The generation on it has failed (an append in flight when the connection dropped is retried on
    // each reconnection and fails after `maxRetriesPerRequest` of them; later ones fail at once).
    await expect.poll(() => proxied.app.generations.get(id)?.status, { timeout: 10_000 }).toBe('failed');
    expect(proxied.app.generations.get(id)?.error?.code).toBe('EVENT_LOG_UNAVAILABLE');

    const readiness = await fetch(`${proxied.url}/readyz`);
    expect(readiness.status).toBe(503);
    expect(await readiness.json()).toEqual({
      status: 'degraded',
      reason: expect.stringMatching(new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${proxy.port}/15 is unreachable \\(commands`)),
    });
    const health = await fetch(`${proxied.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    // New work that needs Redis fails at once with a clear code: GraphQL, and REST with 503.
    const refused = await graphqlRequest(proxied.graphqlUrl, START_CHAT_COMPLETION, { input: { provider: 'fake', model: 'stream?tokens=10', messages: user } });
    expect(refused.errors![0]).toMatchObject({ extensions: { code: 'EVENT_LOG_UNAVAILABLE' } });
    const overRest = await fetch(`${proxied.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake:stream?tokens=10', messages: [{ role: 'user', content: 'go' }], stream: true }),
    });
    expect(overRest.status).toBe(503);
    expect(await overRest.json()).toEqual({ error: expect.objectContaining({ code: 'EVENT_LOG_UNAVAILABLE', type: 'server_error' }) });
    const lookup = await graphqlRequest(proxied.graphqlUrl, GENERATION_QUERY, { id: 'generation-of-another-instance' });
    expect(lookup.errors![0]).toMatchObject({ extensions: { code: 'EVENT_LOG_UNAVAILABLE' } });

    // What needs no Redis is still served.
    const models = await fetch(`${proxied.url}/v1/models`);
    expect(models.status).toBe(200);
    expect(((await models.json()) as { data: Array<{ id: string }> }).data.map((model) => model.id)).toContain('endless?gapMs=20');

    await proxy.restore();
    await expect.poll(async () => (await fetch(`${proxied.url}/readyz`)).status, { timeout: 10_000 }).toBe(200);

    // The generation's end is written once Redis is back: the subscriber on the other instance gets it, after every event once.
    const remote = await onDirect;
    expect(remote.errors).toBeUndefined();
    expectWellFormedChatEvents(remote.events);
    expect(remote.events.slice(0, local.events.length)).toEqual(local.events);
    expect(remote.events.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'EVENT_LOG_UNAVAILABLE' } });
    const onDirectRecord = await graphqlRequest(direct.graphqlUrl, GENERATION_QUERY, { id });
    expect(onDirectRecord.data.generation).toMatchObject({ status: 'FAILED', error: { code: 'EVENT_LOG_UNAVAILABLE' } });

    // New generations work again on the instance that lost Redis.
    const again = await startChat(proxied, 'stream?tokens=10');
    const replay = await follow(clientOfProxied, again);
    expect(replay.errors).toBeUndefined();
    expectWellFormedChatEvents(replay.events);
    expect(replay.events.at(-1)!.__typename).toBe('ChatCompletionCompleted');
  });

  it('its command connections killed mid-stream (CLIENT KILL): every subscriber gets contiguous events ending in a terminal event or a clear error, never a gap or a hang', async () => {
    const id = await startChat(proxied, 'stream?tokens=40&gapMs=10');
    let killed = false;
    const kill = async () => {
      // Only this instance's connections (through the proxy) that are not in subscriber mode: commands and publisher.
      const ports = new Set(proxy.upstreamPorts().map(String));
      const clients = (await admin.client('LIST')) as string;
      for (const line of clients.split('\n')) {
        const port = /(?:^|\s)addr=127\.0\.0\.1:(\d+)/.exec(line)?.[1];
        if (port && ports.has(port) && line.includes('name=graphql-ai-gateway') && !/flags=\S*P/.test(line)) {
          await admin.client('KILL', 'ID', /(?:^|\s)id=(\d+)/.exec(line)![1]!);
          killed = true;
        }
      }
    };
    const onProxied = follow(clientOfProxied, id, undefined, (event) => void (event.sequence === 5 && kill()));
    const onDirect = follow(clientOfDirect, id);
    const [local, remote] = await Promise.all([onProxied, onDirect]);
    expect(killed).toBe(true);
    for (const result of [local, remote]) {
      expectContiguousFromOne(result.events);
      if (result.errors) expect(result.errors).toEqual([expect.objectContaining({ extensions: { code: 'EVENT_LOG_UNAVAILABLE' } })]);
      else expectWellFormedChatEvents(result.events);
    }
    // The other instance's subscriber has the whole generation: completed, or failed with EVENT_LOG_UNAVAILABLE.
    expect(remote.errors).toBeUndefined();
    const terminal = remote.events.at(-1)!;
    if (terminal.__typename === 'GenerationFailed') expect(terminal.error!.code).toBe('EVENT_LOG_UNAVAILABLE');
    else expect(terminal.__typename).toBe('ChatCompletionCompleted');
    expect((await follow(clientOfDirect, id)).events).toEqual(remote.events);
  });
});

describe('restarting an instance mid-stream', () => {
  let first: StartedApp;
  let second: StartedApp;
  let clientOfFirst: Client;
  let clientOfSecond: Client;
  const restartSettings = () => ({ ...settings, SUBSCRIPTION_RECHECK_MS: '300' });

  beforeAll(async () => {
    [first, second] = await Promise.all([startApp(restartSettings()), startApp(restartSettings())]);
    clientOfFirst = createWebSocketClient(first.webSocketUrl);
    clientOfSecond = createWebSocketClient(second.webSocketUrl);
  });

  afterAll(async () => {
    await Promise.all([clientOfFirst?.dispose(), clientOfSecond?.dispose()]);
    await Promise.all([first?.stop(), second?.stop()]);
  });

  it('restarting the subscriber’s instance: it resumes on the new one with after and gets every event exactly once', async () => {
    const id = await startChat(first, 'endless?gapMs=20');
    const fifth = signal();
    const before = follow(clientOfSecond, id, undefined, (event) => event.sequence === 5 && fifth.resolve());
    await fifth.promise;

    await second.stop(); // closes its WebSockets (1001) after its drain
    const cut = await before;
    expect(cut.closeCode).toBe(1001);
    expectContiguousFromOne(cut.events);
    await clientOfSecond.dispose();
    second = await startApp(restartSettings());
    clientOfSecond = createWebSocketClient(second.webSocketUrl);

    let resumedCount = 0;
    const resumed = follow(clientOfSecond, id, cut.events.at(-1)!.sequence, () => {
      resumedCount += 1;
      if (resumedCount === 5) void graphqlRequest(second.graphqlUrl, CANCEL_GENERATION, { id });
    });
    const rest = await resumed;
    expect(rest.errors).toBeUndefined();
    const all = [...cut.events, ...rest.events];
    expectWellFormedChatEvents(all);
    expect(all.at(-1)).toMatchObject({ __typename: 'GenerationCancelled', reason: 'cancelled by request' });
    expect((await follow(clientOfFirst, id)).events).toEqual(all);
  });

  it('restarting the instance that runs the generation: the subscriber on the other one gets every event exactly once, ending with GenerationCancelled', async () => {
    const id = await startChat(first, 'endless?gapMs=20');
    const fifth = signal();
    const following = follow(clientOfSecond, id, undefined, (event) => event.sequence === 5 && fifth.resolve());
    await fifth.promise;

    await first.stop(); // cancels its running generation with "server shutting down" (App.stop)
    const result = await following;
    expect(result.errors).toBeUndefined();
    expect(result.closeCode).toBeUndefined();
    expectWellFormedChatEvents(result.events);
    expect(result.events.at(-1)).toMatchObject({ __typename: 'GenerationCancelled', reason: 'server shutting down' });

    await clientOfFirst.dispose();
    first = await startApp(restartSettings());
    clientOfFirst = createWebSocketClient(first.webSocketUrl);
    const record = await graphqlRequest(first.graphqlUrl, GENERATION_QUERY, { id });
    expect(record.data.generation).toMatchObject({ id, status: 'CANCELLED' });
    expect((await follow(clientOfFirst, id)).events).toEqual(result.events);
  });
});

/** Sequences 1, 2, 3, … with no gap or repeat. */
function expectContiguousFromOne(events: ChatEvent[]): void {
  expect(events.length).toBeGreaterThan(0);
  expect(events.map((event) => event.sequence)).toEqual(events.map((_, index) => index + 1));
}
