/**
 * Conversations in Redis, shared by every instance: one JSON string per conversation at
 * `gateway:conversation:{id}`, expiring `retentionMs` after its last turn. An append reads the
 * conversation, adds the turn, and writes it with a compare-and-set script that writes only if the
 * key still holds what was read (its SHA-1, `redis.sha1hex`); otherwise it reads again. `WATCH`
 * would not do: the store shares one connection among all requests, and a connection's `EXEC`
 * ends every `WATCH` of that connection, so two appends at once on one instance could overwrite
 * each other (https://redis.io/docs/latest/develop/interact/transactions/).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { trimConversation, type Conversation, type ConversationLimits, type ConversationMessage, type ConversationStore } from './conversation-store.js';

/** Key prefix of the conversations. */
export const CONVERSATION_PREFIX = 'gateway:conversation:';

/** How often an append is tried when other writers keep changing the conversation (each failed attempt is another writer's success). */
const APPEND_ATTEMPTS = 10;

/**
 * Sets KEYS[1] to ARGV[2] with a time to live of ARGV[3] ms if its value's SHA-1 is ARGV[1] (an
 * empty ARGV[1]: if the key does not exist); returns 1 when it wrote, 0 when the value had changed.
 */
const COMPARE_AND_SET_SCRIPT = `
local current = redis.call('GET', KEYS[1])
local seen = ''
if current then seen = redis.sha1hex(current) end
if seen ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`;

/** The script's name as an ioredis client method (`defineCommand`), named so it cannot clash with other users of the client. */
const COMPARE_AND_SET = 'gatewayConversationCompareAndSet';

type ScriptClient = { [COMPARE_AND_SET]: (key: string, expectedSha1: string, value: string, ttlMs: string) => Promise<number> };

type StoredConversation = Omit<Conversation, 'createdAt' | 'updatedAt' | 'messages'> & {
  createdAt: string;
  updatedAt: string;
  messages: Array<Omit<ConversationMessage, 'createdAt'> & { createdAt: string }>;
};

function revive(text: string): Conversation {
  const stored = JSON.parse(text) as StoredConversation;
  return {
    id: stored.id,
    createdAt: new Date(stored.createdAt),
    updatedAt: new Date(stored.updatedAt),
    messages: stored.messages.map((message) => ({ ...message, createdAt: new Date(message.createdAt) })),
  };
}

/** A ConversationStore kept in Redis. */
export class RedisConversationStore implements ConversationStore {
  /** @param redis a connected client (commands only; not one in subscriber mode); the script is defined on it once. */
  constructor(
    private readonly redis: Redis,
    private readonly limits: ConversationLimits,
  ) {
    if (typeof (redis as unknown as Record<string, unknown>)[COMPARE_AND_SET] !== 'function') {
      redis.defineCommand(COMPARE_AND_SET, { numberOfKeys: 1, lua: COMPARE_AND_SET_SCRIPT });
    }
  }

  async get(id: string): Promise<Conversation | undefined> {
    const text = await this.redis.get(CONVERSATION_PREFIX + id);
    return text ? revive(text) : undefined;
  }

  /** @throws when Redis is unreachable, or when other writers changed the conversation on every attempt. */
  async append(id: string, messages: ConversationMessage[]): Promise<Conversation> {
    const key = CONVERSATION_PREFIX + id;
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt += 1) {
      const text = await this.redis.get(key);
      const now = new Date();
      const conversation = text ? revive(text) : { id, messages: [], createdAt: now, updatedAt: now };
      conversation.messages = trimConversation([...conversation.messages, ...messages], this.limits);
      conversation.updatedAt = now;
      const seen = text === null ? '' : createHash('sha1').update(text).digest('hex');
      const written = await (this.redis as unknown as ScriptClient)[COMPARE_AND_SET](key, seen, JSON.stringify(conversation), String(this.limits.retentionMs));
      if (written === 1) return conversation;
    }
    throw new Error(`conversation ${id} kept changing; the turn was not stored`);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.redis.del(CONVERSATION_PREFIX + id)) > 0;
  }

  async close(): Promise<void> {}
}
