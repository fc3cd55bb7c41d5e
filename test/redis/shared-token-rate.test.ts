/**
 * Virtual keys across two instances on one PostgreSQL and one real Redis (127.0.0.1:6379, database
 * 15): the tokens per minute of a key are one window in Redis (tokens used on A count on B), a key
 * made on A works on B, and a revocation on A is refused on B within `API_KEY_CACHE_TTL_MS`. And the
 * Redis store itself: reservations, the time until tokens fit, settlement and cancellation, expiry.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisTokenRateStore, TOKEN_RATE_KEY_PREFIX } from '../../src/scale-out/redis-token-rate-store.js';
import { createApiKey, graphqlWithKey, REVOKE_API_KEY } from '../helpers/api-key-operations.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { createPostgresDatabase } from '../helpers/test-databases.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
const MASTER_KEY = 'master-key-0123456789abcdef';

let admin: Redis;
beforeAll(() => {
  admin = new Redis(REDIS_URL);
});
afterAll(async () => {
  await admin?.quit();
});

describe('RedisTokenRateStore', () => {
  const owner = `key:test-${process.pid}-${randomUUID()}`;
  afterAll(async () => {
    await admin.del(...new RedisTokenRateStore(admin).keysOf(owner));
  });

  it('counts tokens in the window, answers when they fit again, settles and cancels', async () => {
    const store = new RedisTokenRateStore(admin);
    const now = 1_000_000;
    expect(await store.reserve(owner, 'a', 8, 20, 60_000, now)).toEqual({ allowed: true });
    expect(await store.reserve(owner, 'b', 8, 20, 60_000, now + 1000)).toEqual({ allowed: true });
    // 16 used: 8 more need entry a (the oldest) to leave, at now + 60 000.
    expect(await store.reserve(owner, 'c', 8, 20, 60_000, now + 2000)).toEqual({ allowed: false, retryAfterMs: 58_000 });
    await store.settle(owner, 'a', 2);
    expect(await store.reserve(owner, 'c', 8, 20, 60_000, now + 2000)).toEqual({ allowed: true });
    await store.cancel(owner, 'c');
    expect(await store.reserve(owner, 'd', 10, 20, 60_000, now + 3000)).toEqual({ allowed: true });
    // Once a and b have left the window only d (10) is counted.
    expect(await store.reserve(owner, 'e', 10, 20, 60_000, now + 61_001)).toEqual({ allowed: true });
    const [windowKey, amountsKey] = store.keysOf(owner);
    expect(windowKey.startsWith(TOKEN_RATE_KEY_PREFIX)).toBe(true);
    expect(await admin.zrange(windowKey, 0, -1)).toEqual(['d', 'e']);
    expect(await admin.hgetall(amountsKey)).toEqual({ d: '10', e: '10' });
    expect(await admin.pttl(windowKey)).toBeGreaterThan(0);
    expect(await admin.pttl(windowKey)).toBeLessThanOrEqual(60_000);
  });
});

describe('two instances', () => {
  let upstream: FakeOpenAIUpstream;
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let first: StartedApp;
  let second: StartedApp;
  let tokenRateKeys: string[] = [];

  beforeAll(async () => {
    upstream = await startFakeOpenAIUpstream({ tokenCount: 3 });
    database = await createPostgresDatabase();
    const settings = {
      REDIS_URL,
      DATABASE_URL: database.url,
      MASTER_KEY,
      API_KEY_CACHE_TTL_MS: '300',
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'] }]),
    };
    first = await startApp(settings);
    second = await startApp(settings);
  });

  afterAll(async () => {
    await Promise.all([first?.stop(), second?.stop()]);
    if (tokenRateKeys.length > 0) await admin.del(...tokenRateKeys);
    await upstream?.close();
    await database?.drop();
  });

  const chat = async (app: StartedApp, key: string) => {
    const response = await postJson(app.url, '/v1/chat/completions', { model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 15 }, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    });
    return { status: response.status, body: (await response.json()) as any };
  };

  it('share a key made on one, its tokens per minute, and its revocation', async () => {
    const { key, apiKey } = await createApiKey(first.graphqlUrl, MASTER_KEY, { name: 'shared', limits: { tokensPerMinute: 20 } });
    tokenRateKeys = new RedisTokenRateStore(admin).keysOf(`key:${apiKey.id}`);
    // Estimated at 16 tokens each, using 4: the second fits once the first is settled, the third does not — on either instance.
    expect((await chat(first, key)).status).toBe(200);
    expect((await chat(second, key)).status).toBe(200);
    const refused = await chat(first, key);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect((await chat(second, key)).status).toBe(429);

    await graphqlWithKey(first.graphqlUrl, MASTER_KEY, REVOKE_API_KEY, { id: apiKey.id });
    expect((await graphqlWithKey(first.graphqlUrl, key, '{ models { id } }')).status).toBe(401);
    // The other instance reads the key again once its cached copy is older than API_KEY_CACHE_TTL_MS.
    await expect.poll(async () => (await graphqlWithKey(second.graphqlUrl, key, '{ models { id } }')).status).toBe(401);
  });
});
