/**
 * Conversations the server remembers: the messages of each turn (user and assistant, with the
 * provider and model that answered), bounded in messages, characters and time. In memory by
 * default; the interface is asynchronous so a Redis store can replace it.
 */
import type { ChatRole, ChatToolCall } from '../providers/provider.js';

/** One stored message (images of a message are not kept: only its text). */
export interface ConversationMessage {
  role: ChatRole;
  content: string;
  /** For assistant messages: the tool calls it made. */
  toolCalls?: ChatToolCall[];
  /** For tool messages: the call it answers. */
  toolCallId?: string;
  /** For assistant messages: who answered. */
  provider?: string;
  model?: string;
  createdAt: Date;
}

/** A stored conversation. */
export interface Conversation {
  id: string;
  messages: ConversationMessage[];
  createdAt: Date;
  updatedAt: Date;
}

/** Where conversations live. */
export interface ConversationStore {
  /** The conversation, or undefined when unknown or expired. */
  get(id: string): Promise<Conversation | undefined>;
  /** Appends messages (creating the conversation when new) and applies the limits; returns it. */
  append(id: string, messages: ConversationMessage[]): Promise<Conversation>;
  /** Forgets it; false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /** Stops timers. */
  close(): Promise<void>;
}

/** Bounds of every conversation. */
export interface ConversationLimits {
  /** Most messages kept; the oldest non-system messages are dropped first. */
  maxMessages: number;
  /** Most characters of content kept, all messages together; the oldest non-system messages are dropped first. */
  maxCharacters: number;
  /** A conversation not updated for this long is forgotten, ms. */
  retentionMs: number;
}

/**
 * Drops the oldest non-system messages until the conversation fits its limits. System messages
 * stay (they set up the conversation); a conversation of only system messages is left as it is.
 */
export function trimConversation(messages: ConversationMessage[], limits: Pick<ConversationLimits, 'maxMessages' | 'maxCharacters'>): ConversationMessage[] {
  const kept = [...messages];
  let characters = kept.reduce((sum, message) => sum + message.content.length, 0);
  while (kept.length > limits.maxMessages || characters > limits.maxCharacters) {
    const oldest = kept.findIndex((message) => message.role !== 'system');
    if (oldest < 0) break;
    characters -= kept[oldest]!.content.length;
    kept.splice(oldest, 1);
  }
  return kept;
}

/** In-memory conversations with a periodic sweep of expired ones. */
export class MemoryConversationStore implements ConversationStore {
  private readonly conversations = new Map<string, Conversation>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly limits: ConversationLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, limits.retentionMs)).unref();
  }

  async get(id: string): Promise<Conversation | undefined> {
    return this.current(id);
  }

  async append(id: string, messages: ConversationMessage[]): Promise<Conversation> {
    // Read and write with no await between: appends to one conversation at once keep every turn.
    const now = new Date(this.now());
    const existing = this.current(id);
    const conversation = existing ?? { id, messages: [], createdAt: now, updatedAt: now };
    conversation.messages = trimConversation([...conversation.messages, ...messages], this.limits);
    conversation.updatedAt = now;
    this.conversations.set(id, conversation);
    return conversation;
  }

  async delete(id: string): Promise<boolean> {
    return this.conversations.delete(id);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  /** The conversation, unless unknown or expired (an expired one is forgotten now). */
  private current(id: string): Conversation | undefined {
    const conversation = this.conversations.get(id);
    if (conversation && this.expired(conversation)) {
      this.conversations.delete(id);
      return undefined;
    }
    return conversation;
  }

  private expired(conversation: Conversation): boolean {
    return this.now() - conversation.updatedAt.getTime() >= this.limits.retentionMs;
  }

  private sweep(): void {
    for (const [id, conversation] of this.conversations) {
      if (this.expired(conversation)) this.conversations.delete(id);
    }
  }
}
