/** Conversations in the real Redis (database 15). */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONVERSATION_PREFIX, RedisConversationStore } from '../../src/conversations/redis-conversation-store.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});

afterAll(async () => {
  await redis?.quit();
});

const message = (role: 'user' | 'assistant' | 'system', content: string) => ({ role, content, createdAt: new Date() });

describe('RedisConversationStore', () => {
  it('appends turns, trims the oldest non-system messages, expires, and deletes', async () => {
    const store = new RedisConversationStore(redis, { maxMessages: 3, maxCharacters: 1000, retentionMs: 60_000 });
    const id = randomUUID();
    await store.append(id, [message('system', 'Be kind.'), message('user', 'one')]);
    await store.append(id, [message('assistant', 'two'), message('user', 'three')]);
    const conversation = await store.get(id);
    expect(conversation!.messages.map((entry) => entry.content)).toEqual(['Be kind.', 'two', 'three']);
    expect(conversation!.createdAt).toBeInstanceOf(Date);
    expect(await redis.pttl(CONVERSATION_PREFIX + id)).toBeGreaterThan(50_000);
    expect(await store.delete(id)).toBe(true);
    expect(await store.delete(id)).toBe(false);
    expect(await store.get(id)).toBeUndefined();
  });

  it('keeps every turn when two writers append at once', async () => {
    const store = new RedisConversationStore(redis, { maxMessages: 100, maxCharacters: 10_000, retentionMs: 60_000 });
    const other = new Redis(REDIS_URL);
    try {
      const secondStore = new RedisConversationStore(other, { maxMessages: 100, maxCharacters: 10_000, retentionMs: 60_000 });
      const id = randomUUID();
      await Promise.all([store.append(id, [message('user', 'a')]), secondStore.append(id, [message('user', 'b')])]);
      expect((await store.get(id))!.messages.map((entry) => entry.content).sort()).toEqual(['a', 'b']);
    } finally {
      await other.quit();
    }
  });
});
