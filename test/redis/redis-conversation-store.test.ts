/** Conversations in the real Redis (database 15): the tests every conversation store passes, and the key's time to live. */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONVERSATION_PREFIX, RedisConversationStore } from '../../src/conversations/redis-conversation-store.js';
import { describeConversationStore, message } from '../helpers/conversation-store-contract.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});

afterAll(async () => {
  await redis?.quit();
});

describe('RedisConversationStore', () => {
  describeConversationStore(async (limits) => {
    // Another instance's store: its own connection to the same Redis.
    const other = new Redis(REDIS_URL);
    return {
      store: new RedisConversationStore(redis, limits),
      other: new RedisConversationStore(other, limits),
      // What the key's time to live does when it runs out (a non-positive PEXPIRE ends it now).
      expire: async (id) => void (await redis.pexpire(CONVERSATION_PREFIX + id, 0)),
      close: async () => void (await other.quit()),
    };
  });

  it('keeps a conversation as one key living the retention after its last turn', async () => {
    const store = new RedisConversationStore(redis, { maxMessages: 3, maxCharacters: 1000, retentionMs: 60_000 });
    const id = randomUUID();
    await store.append(id, [message('user', 'one')]);
    expect(await redis.pttl(CONVERSATION_PREFIX + id)).toBeGreaterThan(50_000);
    await store.delete(id);
  });
});
