/**
 * The tests every `ConversationStore` passes — in memory, in Redis, in the database on both
 * drivers: turns appended and read back whole (roles, tool calls, provider and model, dates), the
 * oldest non-system messages dropped past the message and character limits, every turn kept when
 * two writers append at once, nothing left after a delete, and a conversation forgotten once its
 * retention passed (a new turn then starts it over).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ConversationLimits, ConversationMessage, ConversationStore } from '../../src/conversations/conversation-store.js';

/** A store under test, made by each store's own test file. */
export interface ConversationStoreUnderTest {
  store: ConversationStore;
  /** A second store on the same state (another instance's, or another connection's); the same store where there is only one. */
  other: ConversationStore;
  /** Makes the retention of conversation `id` pass: moves the store's clock on, or ends the Redis key's life. */
  expire(id: string): Promise<void>;
  /** Closes both stores and what they opened. */
  close(): Promise<void>;
}

/** A message created now (whole milliseconds, as every store keeps them). */
export const message = (role: ConversationMessage['role'], content: string, extra: Partial<ConversationMessage> = {}): ConversationMessage => ({
  role,
  content,
  createdAt: new Date(),
  ...extra,
});

/** Defines the shared tests; `make` opens a store (and its second instance) with the given limits. */
export function describeConversationStore(make: (limits: ConversationLimits) => Promise<ConversationStoreUnderTest>): void {
  /** Runs `test` with a store of `limits`, closing it after. */
  async function withStore(limits: Partial<ConversationLimits>, test: (underTest: ConversationStoreUnderTest) => Promise<void>): Promise<void> {
    const underTest = await make({ maxMessages: 100, maxCharacters: 10_000, retentionMs: 60_000, ...limits });
    try {
      await test(underTest);
    } finally {
      await underTest.close();
    }
  }

  describe('the ConversationStore contract', () => {
    it('appends turns, trims the oldest non-system messages, and deletes', () =>
      withStore({ maxMessages: 3 }, async ({ store }) => {
        const id = randomUUID();
        await store.append(id, [message('system', 'Be kind.'), message('user', 'one')]);
        const appended = await store.append(id, [message('assistant', 'two'), message('user', 'three')]);
        expect(appended.messages.map((entry) => entry.content)).toEqual(['Be kind.', 'two', 'three']);
        const conversation = await store.get(id);
        expect(conversation!.messages.map((entry) => entry.content)).toEqual(['Be kind.', 'two', 'three']);
        expect(conversation!.createdAt).toBeInstanceOf(Date);
        expect(conversation!.updatedAt.getTime()).toBeGreaterThanOrEqual(conversation!.createdAt.getTime());
        expect(await store.delete(id)).toBe(true);
        expect(await store.delete(id)).toBe(false);
        expect(await store.get(id)).toBeUndefined();
        expect(await store.get(randomUUID())).toBeUndefined();
      }));

    it('keeps every field of a message', () =>
      withStore({}, async ({ store }) => {
        const id = randomUUID();
        const turn = [
          message('user', 'What is the weather in Paris?'),
          message('assistant', '', { toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }], provider: 'fake', model: 'weather' }),
          message('tool', '{"temperature":18}', { toolCallId: 'call_1' }),
          message('assistant', 'It is 18 °C.', { provider: 'fake', model: 'weather' }),
        ];
        await store.append(id, turn);
        expect((await store.get(id))!.messages).toEqual(turn);
      }));

    it('trims by characters, keeping system messages', () =>
      withStore({ maxCharacters: 10 }, async ({ store }) => {
        const id = randomUUID();
        await store.append(id, [message('system', 'sys'), message('user', 'aaaa')]);
        await store.append(id, [message('assistant', 'bbbb')]);
        expect((await store.get(id))!.messages.map((entry) => entry.content)).toEqual(['sys', 'bbbb']);
      }));

    it('keeps every turn when two writers append at once', () =>
      withStore({}, async ({ store, other }) => {
        const id = randomUUID();
        await Promise.all([
          store.append(id, [message('user', 'a')]),
          other.append(id, [message('user', 'b')]),
          store.append(id, [message('user', 'c')]),
          other.append(id, [message('user', 'd')]),
        ]);
        expect((await store.get(id))!.messages.map((entry) => entry.content).sort()).toEqual(['a', 'b', 'c', 'd']);
        expect((await other.get(id))!.messages).toHaveLength(4);
      }));

    it('forgets a conversation once its retention passed; a new turn starts it over', () =>
      withStore({}, async ({ store, expire }) => {
        const id = randomUUID();
        await store.append(id, [message('user', 'old')]);
        await expire(id);
        expect(await store.get(id)).toBeUndefined();
        const again = await store.append(id, [message('user', 'new')]);
        expect(again.messages.map((entry) => entry.content)).toEqual(['new']);
        expect((await store.get(id))!.messages.map((entry) => entry.content)).toEqual(['new']);
      }));
  });
}
