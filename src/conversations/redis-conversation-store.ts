/**
 * Conversations in Redis, shared by every instance: one JSON string per conversation at
 * `gateway:conversation:{id}`, expiring `retentionMs` after its last turn. Appends of one
 * conversation are read-modify-write under `WATCH`, retried when another instance wrote in between.
 * Redis transactions: https://redis.io/docs/latest/develop/interact/transactions/.
 */
import type { Redis } from 'ioredis';
import { trimConversation, type Conversation, type ConversationLimits, type ConversationMessage, type ConversationStore } from './conversation-store.js';

/** Key prefix of the conversations. */
export const CONVERSATION_PREFIX = 'gateway:conversation:';

/** How often an append is tried when other writers keep changing the conversation. */
const APPEND_ATTEMPTS = 5;

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
  /** @param redis a connected client (commands only; not one in subscriber mode). */
  constructor(
    private readonly redis: Redis,
    private readonly limits: ConversationLimits,
  ) {}

  async get(id: string): Promise<Conversation | undefined> {
    const text = await this.redis.get(CONVERSATION_PREFIX + id);
    return text ? revive(text) : undefined;
  }

  /** @throws when Redis is unreachable, or when other writers changed the conversation on every attempt. */
  async append(id: string, messages: ConversationMessage[]): Promise<Conversation> {
    const key = CONVERSATION_PREFIX + id;
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt += 1) {
      await this.redis.watch(key);
      const text = await this.redis.get(key);
      const now = new Date();
      const conversation = text ? revive(text) : { id, messages: [], createdAt: now, updatedAt: now };
      conversation.messages = trimConversation([...conversation.messages, ...messages], this.limits);
      conversation.updatedAt = now;
      const result = await this.redis.multi().set(key, JSON.stringify(conversation), 'PX', this.limits.retentionMs).exec();
      if (result) return conversation;
    }
    throw new Error(`conversation ${id} kept changing; the turn was not stored`);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.redis.del(CONVERSATION_PREFIX + id)) > 0;
  }

  async close(): Promise<void> {}
}
