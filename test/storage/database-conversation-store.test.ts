/**
 * Conversations in the database, on both drivers: the tests every conversation store passes (a
 * second instance is a second store — on PostgreSQL with its own connection pool), and the sweep
 * of expired conversations, bounded per statement and per sweep, taking their messages with them,
 * on its own every `sweepIntervalMs`.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count } from 'drizzle-orm';
import { DatabaseConversationStore } from '../../src/conversations/database-conversation-store.js';
import { conversationMessages, conversations } from '../../src/storage/database-schema.js';
import { openDatabase, type Database } from '../../src/storage/open-database.js';
import { describeConversationStore, message } from '../helpers/conversation-store-contract.js';
import { TEST_DATABASES, type TestDatabase } from '../helpers/test-databases.js';

describe.each(TEST_DATABASES)('$driver', ({ driver, create }) => {
  let test: TestDatabase;
  beforeAll(async () => {
    test = await create();
  });
  afterAll(async () => {
    await test?.drop();
  });

  describeConversationStore(async (limits) => {
    let offsetMs = 0;
    const now = () => Date.now() + offsetMs;
    // PGlite in memory is one database per open: its second store shares the connection.
    const second: Database = driver === 'postgres' ? await openDatabase({ driver: 'postgres', url: test.url }) : test.database;
    const store = new DatabaseConversationStore(test.database.db, limits, { now });
    const other = new DatabaseConversationStore(second.db, limits, { now });
    return {
      store,
      other,
      expire: async () => {
        offsetMs += limits.retentionMs;
      },
      close: async () => {
        await store.close();
        await other.close();
        if (second !== test.database) await second.close();
      },
    };
  });

  /** Conversations and messages left in the tables. */
  async function rows(): Promise<{ conversations: number; messages: number }> {
    const [conversationRows] = await test.database.db.select({ value: count() }).from(conversations);
    const [messageRows] = await test.database.db.select({ value: count() }).from(conversationMessages);
    return { conversations: conversationRows!.value, messages: messageRows!.value };
  }

  it('sweeps expired conversations with their messages, at most a batch per statement and some statements per sweep', async () => {
    await test.database.db.delete(conversations);
    let offsetMs = 0;
    const store = new DatabaseConversationStore(
      test.database.db,
      { maxMessages: 10, maxCharacters: 1000, retentionMs: 60_000 },
      { now: () => Date.now() + offsetMs, sweepBatchSize: 2, sweepMaxBatches: 2 },
    );
    try {
      for (let index = 0; index < 5; index += 1) await store.append(randomUUID(), [message('user', 'old'), message('assistant', 'story')]);
      offsetMs += 60_000;
      const fresh = randomUUID();
      await store.append(fresh, [message('user', 'new')]);
      expect(await rows()).toEqual({ conversations: 6, messages: 11 });
      expect(await store.sweep()).toBe(4);
      expect(await store.sweep()).toBe(1);
      expect(await store.sweep()).toBe(0);
      expect(await rows()).toEqual({ conversations: 1, messages: 1 });
      expect((await store.get(fresh))!.messages.map((entry) => entry.content)).toEqual(['new']);
    } finally {
      await store.close();
    }
  });

  it('sweeps on its own', async () => {
    await test.database.db.delete(conversations);
    let offsetMs = 0;
    const store = new DatabaseConversationStore(test.database.db, { maxMessages: 10, maxCharacters: 1000, retentionMs: 60_000 }, { now: () => Date.now() + offsetMs, sweepIntervalMs: 20 });
    try {
      await store.append(randomUUID(), [message('user', 'old')]);
      offsetMs += 60_000;
      await expect.poll(rows).toEqual({ conversations: 0, messages: 0 });
    } finally {
      await store.close();
    }
  });
});
