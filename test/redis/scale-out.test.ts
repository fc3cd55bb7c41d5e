/**
 * Two app instances on one real Redis (127.0.0.1:6379, database 15): a generation started on A is
 * followed on B over graphql-ws with the same events A's own subscriber saw; `after` works across
 * instances; a cancellation sent to B stops the generation running on A (heard on one pattern
 * subscription per instance, also when published as earlier versions do); `generation(id)` answers on B.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CANCEL_GENERATION,
  CHAT_COMPLETION_EVENTS_SUBSCRIPTION,
  CHAT_COMPLETION_SUBSCRIPTION,
  GENERATION_QUERY,
  START_CHAT_COMPLETION,
  expectWellFormedChatEvents,
  type ChatEvent,
} from '../helpers/chat-operations.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { startApp, testAppDefaults, type StartedApp } from '../helpers/start-app.js';

// A server of this file's own: its tests kill the gateways' Redis connections (see private-redis.ts).
let privateRedis: PrivateRedis;
let REDIS_URL: string;
let upstream: FakeOpenAIUpstream;
let first: StartedApp;
let second: StartedApp;
let clientOfFirst: Client;
let clientOfSecond: Client;

beforeAll(async () => {
  privateRedis = await startPrivateRedis();
  REDIS_URL = privateRedis.url;
  upstream = await startFakeOpenAIUpstream();
  const settings = {
    REDIS_URL,
    // Instances on one Redis share the callers' start budget (one per address without keys): keep it out of these tests.
    RATE_LIMIT_PER_MINUTE: '0',
    SUBSCRIPTION_RECHECK_MS: '300',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['stream?tokens=40&gapMs=2', 'stream?tokens=40&gapMs=10', 'endless?gapMs=5'] }]),
  };
  [first, second] = await Promise.all([startApp(settings), startApp(settings)]);
  clientOfFirst = createWebSocketClient(first.webSocketUrl);
  clientOfSecond = createWebSocketClient(second.webSocketUrl);
});

afterAll(async () => {
  await Promise.all([clientOfFirst?.dispose(), clientOfSecond?.dispose()]);
  await Promise.all([first?.stop(), second?.stop()]);
  await upstream?.close();
  await privateRedis?.stop();
});

/** Follows a generation, calling `onEvent` for each event as it arrives; resolves with all of them. */
function collectUntilTerminal(client: Client, generationId: string, onEvent: (event: ChatEvent) => Promise<void>): Promise<ChatEvent[]> {
  return new Promise((resolve, reject) => {
    const seen: ChatEvent[] = [];
    let chain = Promise.resolve();
    client.subscribe<{ chatCompletionEvents: ChatEvent }>(
      { query: CHAT_COMPLETION_EVENTS_SUBSCRIPTION, variables: { generationId } },
      {
        next: (result) => {
          const event = result.data!.chatCompletionEvents;
          seen.push(event);
          chain = chain.then(() => onEvent(event));
        },
        error: reject,
        complete: () => void chain.then(() => resolve(seen), reject),
      },
    );
  });
}

const events = async (client: Client, generationId: string, after?: number) =>
  (await collectWebSocket(client, CHAT_COMPLETION_EVENTS_SUBSCRIPTION, { generationId, ...(after !== undefined && { after }) })).map(
    (result) => result.data!.chatCompletionEvents as ChatEvent,
  );

describe('two instances on one Redis', () => {
  it('follows on B a generation started on A, with exactly the events A saw, and resumes with after', async () => {
    const start = await graphqlRequest(first.graphqlUrl, START_CHAT_COMPLETION, {
      input: { provider: 'fake', model: 'stream?tokens=40&gapMs=2', messages: [{ role: 'USER', content: 'go' }] },
    });
    const id = start.data.startChatCompletion.id as string;
    const [onFirst, onSecond] = await Promise.all([events(clientOfFirst, id), events(clientOfSecond, id)]);
    expectWellFormedChatEvents(onFirst);
    expect(onSecond).toEqual(onFirst);
    expect(onFirst.at(-1)!.__typename).toBe('ChatCompletionCompleted');
    expect(await events(clientOfSecond, id, 3)).toEqual(onFirst.slice(3));

    const onB = await graphqlRequest(second.graphqlUrl, GENERATION_QUERY, { id });
    expect(onB.data.generation).toMatchObject({ id, status: 'COMPLETED', provider: 'fake', text: onFirst.at(-1)!.text });
  });

  it('a stream that starts a generation gets every event without reading its stream back', async () => {
    const monitor = await new Redis(REDIS_URL).monitor();
    const commands: string[][] = [];
    /** Commands a client sent itself (not run by a script: MONITOR's source is then `lua`). */
    const sent: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      commands.push(args);
      if (source !== 'lua') sent.push(args);
    });
    try {
      const results = await collectWebSocket(clientOfFirst, CHAT_COMPLETION_SUBSCRIPTION, {
        input: { provider: 'fake', model: 'stream?tokens=40&gapMs=2', messages: [{ role: 'USER', content: 'go' }] },
      });
      const streamed = results.map((result) => result.data!.chatCompletion as ChatEvent);
      expectWellFormedChatEvents(streamed);
      expect(streamed.at(-1)!.__typename).toBe('ChatCompletionCompleted');
      const streamKey = `gateway:events:${streamed[0]!.generationId}`;
      // Every event went into the stream; none was read back for this subscriber.
      await expect.poll(() => commands.filter(([name, key]) => name?.toLowerCase() === 'xadd' && key === streamKey).length).toBe(streamed.length);
      expect(commands.filter(([name, key]) => name?.toLowerCase() === 'xrange' && key === streamKey)).toEqual([]);
      // The owner lease rode in the record's saves (set by the first, deleted by the final one): no command of its own.
      const leaseKey = `gateway:generation-owner:${streamed[0]!.generationId}`;
      const onLease = (list: string[][]) => list.filter(([, key]) => key === leaseKey).map(([name]) => name!.toLowerCase());
      // The final save follows the terminal event, which the client may have first.
      await expect.poll(() => onLease(commands)).toEqual(['set', 'del']);
      expect(onLease(sent)).toEqual([]);
    } finally {
      monitor.disconnect();
    }
  });

  it('a cancellation sent to B stops the generation running on A', async () => {
    const closesBefore = upstream.closedRequests();
    const start = await graphqlRequest(first.graphqlUrl, START_CHAT_COMPLETION, {
      input: { provider: 'fake', model: 'endless?gapMs=5', messages: [{ role: 'USER', content: 'go' }] },
    });
    const id = start.data.startChatCompletion.id as string;
    const following = events(clientOfFirst, id);
    const cancelled = await graphqlRequest(second.graphqlUrl, CANCEL_GENERATION, { id });
    expect(cancelled.errors).toBeUndefined();
    expect(cancelled.data.cancelGeneration).toMatchObject({ id, status: 'CANCELLED' });
    await upstream.waitForClientClose(closesBefore + 1);
    expect((await following).at(-1)).toMatchObject({ __typename: 'GenerationCancelled', reason: 'cancelled by request' });
  });

  it('hears cancellations on one pattern subscription, including one published as earlier versions do', async () => {
    const admin = new Redis(REDIS_URL);
    try {
      const start = await graphqlRequest(first.graphqlUrl, START_CHAT_COMPLETION, {
        input: { provider: 'fake', model: 'endless?gapMs=5', messages: [{ role: 'USER', content: 'go' }] },
      });
      const id = start.data.startChatCompletion.id as string;
      const following = events(clientOfFirst, id);
      // Running it subscribed no channel of its own; each instance's subscriber connection holds the one pattern.
      expect(await admin.pubsub('CHANNELS', 'generation:cancel:*')).toEqual([]);
      const clients = ((await admin.client('LIST')) as string).split('\n');
      expect(clients.filter((line) => line.includes('name=graphql-ai-gateway') && / psub=1 /.test(line)).length).toBeGreaterThanOrEqual(2);
      // An instance of an earlier version publishes the request on the generation's own channel, as JSON.
      await admin.publish(`generation:cancel:${id}`, JSON.stringify('stopped by an older instance'));
      expect((await following).at(-1)).toMatchObject({ __typename: 'GenerationCancelled', reason: 'stopped by an older instance' });
    } finally {
      await admin.quit();
    }
  });

  it('loses nothing when Redis drops the pub/sub connections mid-stream (CLIENT KILL)', async () => {
    const admin = new Redis(REDIS_URL);
    try {
      const start = await graphqlRequest(first.graphqlUrl, START_CHAT_COMPLETION, {
        input: { provider: 'fake', model: 'stream?tokens=40&gapMs=10', messages: [{ role: 'USER', content: 'go' }] },
      });
      expect(start.errors).toBeUndefined();
      const id = start.data.startChatCompletion.id as string;
      let killed = false;
      const onSecond = collectUntilTerminal(clientOfSecond, id, async (event) => {
        if (!killed && event.sequence === 5) {
          killed = true;
          // Every subscriber-mode connection of the gateways: their live events stop until ioredis reconnects.
          const clients = (await admin.client('LIST')) as string;
          for (const line of clients.split('\n')) {
            if (line.includes('name=graphql-ai-gateway') && /flags=\S*P/.test(line)) {
              await admin.client('KILL', 'ID', /(?:^|\s)id=(\d+)/.exec(line)![1]!);
            }
          }
        }
      });
      const seenBySecond = await onSecond;
      expect(killed).toBe(true);
      const all = await events(clientOfFirst, id);
      expectWellFormedChatEvents(all);
      expect(all.at(-1)!.__typename).toBe('ChatCompletionCompleted');
      expect(seenBySecond).toEqual(all);
    } finally {
      await admin.quit();
    }
  });

  it('continues on B a conversation begun on A', async () => {
    const conversationId = `shared-${Date.now()}`;
    const turn = async (app: StartedApp, content: string) => {
      const start = await graphqlRequest(app.graphqlUrl, START_CHAT_COMPLETION, {
        input: { provider: 'fake', model: 'stream?tokens=40&gapMs=2', conversationId, messages: [{ role: 'USER', content }] },
      });
      expect(start.errors).toBeUndefined();
      return events(app === first ? clientOfFirst : clientOfSecond, start.data.startChatCompletion.id);
    };
    const answer = (await turn(first, 'My name is Ada.')).at(-1)!.text!;
    await turn(second, 'What is my name?');
    expect((upstream.chatRequests().at(-1)!.body as { messages: unknown[] }).messages).toEqual([
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: answer },
      { role: 'user', content: 'What is my name?' },
    ]);
  });

  it('an unknown id is GENERATION_NOT_FOUND on every instance', async () => {
    const response = await graphqlRequest(second.graphqlUrl, CANCEL_GENERATION, { id: 'no-such-generation' });
    expect(response.errors![0]!.extensions!.code).toBe('GENERATION_NOT_FOUND');
  });
});

describe('start-up without Redis', () => {
  it('stops with exit status 1 and one line when Redis cannot be reached', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      // A fresh data folder (testAppDefaults): a run stopped mid-start must not leave ./data/db half made for the next one.
      env: { ...process.env, ...testAppDefaults(), PORT: '0', REDIS_URL: 'redis://127.0.0.1:1/0', HF_SPACES_ENABLED: 'false', POLLINATIONS_ENABLED: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(status).toBe(1);
    expect(stderr.trim()).toMatch(/^Cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/0: .*ECONNREFUSED/);
  });
});
