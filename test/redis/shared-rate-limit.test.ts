/**
 * The rate limit on generation starts shared through one real Redis (127.0.0.1:6379, database 15):
 * two app instances count one budget per caller (starts on A use up B's too: GraphQL RATE_LIMITED,
 * REST 429), concurrent starts on both never exceed it, and the counters expire with the window.
 * Each run uses API keys of its own (so Redis keys of its own), deleted at the end.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RATE_LIMIT_BUCKET, RateLimiter } from '../../src/security/rate-limiter.js';
import { RATE_LIMIT_KEY_PREFIX, RedisRateLimitStore } from '../../src/scale-out/redis-rate-limit-store.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import type { GraphQLResponse } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
const RUN = `${process.pid}-${Date.now()}`;
const KEYS = { sequential: `sequential-${RUN}`, concurrent: `concurrent-${RUN}`, other: `other-${RUN}` };
const START_CHAT = `mutation Start($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }`;
const input = { model: 'fake-model', messages: [{ role: 'USER', content: 'hi' }] };

/** The Redis key of an API key's budget (`key:<first 16 hex digits of its sha256>`, see authentication.ts). */
const budgetKey = (apiKey: string) =>
  `${RATE_LIMIT_KEY_PREFIX}key:${createHash('sha256').update(apiKey).digest('hex').slice(0, 16)}:${RATE_LIMIT_BUCKET}`;

let upstream: FakeOpenAIUpstream;
let first: StartedApp;
let second: StartedApp;
let admin: Redis;

beforeAll(async () => {
  admin = new Redis(REDIS_URL);
  upstream = await startFakeOpenAIUpstream({ tokenCount: 2 });
  const settings = {
    REDIS_URL,
    API_KEYS: Object.values(KEYS).join(','),
    RATE_LIMIT_PER_MINUTE: '3',
    MAX_CONCURRENT_GENERATIONS_PER_KEY: '0',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'] }]),
  };
  [first, second] = await Promise.all([startApp(settings), startApp(settings)]);
});

afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
  await upstream?.close();
  await admin.del(...Object.values(KEYS).map(budgetKey));
  await admin.quit();
});

/** Starts a chat with a GraphQL mutation; the HTTP status, `Retry-After` and body. */
async function start(app: StartedApp, apiKey: string) {
  const response = await fetch(app.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ query: START_CHAT, variables: { input } }),
  });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as GraphQLResponse };
}

describe('two instances share the rate limit', () => {
  it('counts starts on A against the budget on B: GraphQL RATE_LIMITED and REST 429 there', async () => {
    for (let index = 0; index < 3; index += 1) {
      const started = await start(first, KEYS.sequential);
      expect(started.body.errors).toBeUndefined();
    }
    const refused = await start(second, KEYS.sequential);
    expect(refused.status).toBe(429);
    expect(refused.body.errors).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/^Rate limit exceeded: at most 3 generation starts per minute per API key/),
        extensions: { code: 'RATE_LIMITED', retryAfterSeconds: Number(refused.retryAfter) },
      }),
    ]);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(60);

    const rest = await fetch(`${second.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.sequential}` },
      body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(rest.status).toBe(429);
    expect(Number(rest.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await rest.json()).toMatchObject({ error: { code: 'RATE_LIMITED', type: 'rate_limit_error' } });

    // Another key has a budget of its own.
    expect((await start(second, KEYS.other)).body.errors).toBeUndefined();

    // The counter lives as long as the window.
    const ttl = await admin.pttl(budgetKey(KEYS.sequential));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await admin.zcard(budgetKey(KEYS.sequential))).toBe(3); // refused starts are not counted
  });

  it('never lets concurrent starts on both instances exceed the budget', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, index) => start(index % 2 === 0 ? first : second, KEYS.concurrent)));
    expect(results.filter((result) => result.body.errors === undefined)).toHaveLength(3);
    expect(results.filter((result) => result.body.errors?.[0]?.extensions?.code === 'RATE_LIMITED')).toHaveLength(7);
  });
});

describe('RedisRateLimitStore as a Store of @envelop/rate-limiter', () => {
  it('stores and reads back timestamps; the key expires one window after the newest', async () => {
    const store = new RedisRateLimitStore(admin);
    const identity = { contextIdentity: `ip:store-${RUN}`, fieldIdentity: RATE_LIMIT_BUCKET };
    const now = Date.now();
    try {
      await store.setForIdentity(identity, [now - 2_000, now - 1_000, now - 1_000], 10_000);
      expect(await store.getForIdentity(identity)).toEqual([now - 2_000, now - 1_000, now - 1_000]);
      const ttl = await admin.pttl(store.keyOf(identity));
      expect(ttl).toBeGreaterThan(7_000);
      expect(ttl).toBeLessThanOrEqual(9_000);
      expect(await store.consumeForIdentity(identity, 3, 10_000, now)).toEqual({ allowed: false, retryAfterMs: 8_000 });
      expect(await store.consumeForIdentity(identity, 4, 10_000, now)).toEqual({ allowed: true });
      await store.setForIdentity(identity, [], 10_000);
      expect(await admin.exists(store.keyOf(identity))).toBe(0);
    } finally {
      await admin.del(store.keyOf(identity));
    }
  });
});

describe('RateLimiter with Redis unreachable', () => {
  it('counts starts in this instance\'s memory meanwhile, still refusing past the budget, with one warning', async () => {
    // A client that cannot connect (nothing listens on port 1) and does not queue commands: each fails at once.
    const unreachable = new Redis({ port: 1, host: '127.0.0.1', enableOfflineQueue: false, lazyConnect: true, retryStrategy: () => null });
    const warnings: unknown[] = [];
    const infos: unknown[] = [];
    const logger = { warn: (...args: unknown[]) => warnings.push(args), info: (...args: unknown[]) => infos.push(args) } as never;
    const limiter = new RateLimiter({ maxPerWindow: 2, windowMs: 60_000, store: new RedisRateLimitStore(unreachable), logger });
    try {
      expect(await limiter.consume(`ip:outage-${RUN}`)).toEqual({ allowed: true });
      expect(await limiter.consume(`ip:outage-${RUN}`)).toEqual({ allowed: true });
      expect(await limiter.consume(`ip:outage-${RUN}`)).toMatchObject({ allowed: false });
      expect(warnings).toHaveLength(1);
      expect(infos).toHaveLength(0);
    } finally {
      unreachable.disconnect();
    }
  });
});
