/**
 * Which Copilot conversation each gateway conversation continues (`docs/protocols.md` §5 step 4):
 * a gateway `conversationId` maps to one Copilot `conversationId`, with a digest of the reply
 * Copilot gave last in it, so a turn continues the Copilot conversation only while the gateway's
 * history still ends with that reply. Kept in this process, bounded in entries and idle time.
 */
import { createHash } from 'node:crypto';

/** One gateway conversation's Copilot conversation. */
export interface CopilotConversation {
  /** Copilot's `conversationId` (from `POST /c/api/start`'s `currentConversationId`). */
  copilotConversationId: string;
  /** {@link digestReply} of the text the gateway received as Copilot's last reply in it. */
  replyDigest: string;
}

/** Settings of {@link CopilotConversations}. */
export interface CopilotConversationsOptions {
  /** Most conversations kept; the least recently used go first. */
  maxEntries: number;
  /** A conversation unused for this long is forgotten, ms. */
  idleMs: number;
  /** The clock, ms since the epoch; default `Date.now`. */
  now?: () => number;
}

/** The SHA-256 of a reply's text, hex: what an entry keeps instead of the text. */
export function digestReply(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Gateway conversation id → {@link CopilotConversation}, least recently used first. */
export class CopilotConversations {
  private readonly entries = new Map<string, CopilotConversation & { usedAt: number }>();
  private readonly now: () => number;

  constructor(private readonly options: CopilotConversationsOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The conversation's entry, marked as used now; undefined when unknown or idle too long. */
  get(conversationId: string): CopilotConversation | undefined {
    const entry = this.entries.get(conversationId);
    if (!entry) return undefined;
    this.entries.delete(conversationId);
    if (this.now() - entry.usedAt >= this.options.idleMs) return undefined;
    entry.usedAt = this.now();
    this.entries.set(conversationId, entry);
    return { copilotConversationId: entry.copilotConversationId, replyDigest: entry.replyDigest };
  }

  /** Records the conversation's entry; forgets idle entries, then the least recently used beyond `maxEntries`. */
  set(conversationId: string, conversation: CopilotConversation): void {
    this.entries.delete(conversationId);
    this.entries.set(conversationId, { ...conversation, usedAt: this.now() });
    const now = this.now();
    for (const [id, entry] of this.entries) {
      if (this.entries.size <= this.options.maxEntries && now - entry.usedAt < this.options.idleMs) break;
      this.entries.delete(id);
    }
  }

  /** Forgets the conversation's entry. */
  delete(conversationId: string): void {
    this.entries.delete(conversationId);
  }

  /** Entries kept now (idle ones included until they are looked up or pushed out). */
  get size(): number {
    return this.entries.size;
  }
}
