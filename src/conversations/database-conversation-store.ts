/**
 * Conversations in the database (`CONVERSATION_STORE=database`): a `conversations` row per
 * conversation and a `conversation_messages` row per message (`storage/database-schema.ts`), on
 * PGlite or PostgreSQL alike, so a restart loses none and instances on one PostgreSQL share them.
 * The same limits as the other stores: messages and characters (`trimConversation`), and a
 * retention after the last turn — an expired conversation reads as absent, and a periodic sweep
 * deletes expired ones in bounded batches.
 *
 * An append runs in one transaction that locks the conversation's row (`INSERT … ON CONFLICT DO UPDATE`), so
 * appends to one conversation from several requests or instances keep every turn. Messages keep
 * the position they were added at (0, 1, 2, …); trimming deletes the rows of the dropped ones.
 */
import { and, asc, eq, gt, inArray, lte, sql } from 'drizzle-orm';
import { z } from 'zod';
import { conversationMessages, conversations } from '../storage/database-schema.js';
import type { DrizzleDatabase } from '../storage/open-database.js';
import { trimConversation, type Conversation, type ConversationLimits, type ConversationMessage, type ConversationStore } from './conversation-store.js';

/** Settings of a {@link DatabaseConversationStore} besides its limits. */
export interface DatabaseConversationStoreOptions {
  /** The clock, ms since the epoch; default `Date.now`. */
  now?: () => number;
  /** Time between two sweeps of expired conversations, ms; default the retention, at most 60 s. */
  sweepIntervalMs?: number;
  /** Conversations one sweep statement deletes at most; default {@link SWEEP_BATCH_SIZE}. */
  sweepBatchSize?: number;
  /** Statements one sweep runs at most (the rest waits for the next sweep); default {@link SWEEP_MAX_BATCHES}. */
  sweepMaxBatches?: number;
  /** Told when a sweep fails (the database is unreachable); the next sweep tries again. */
  onSweepError?(error: unknown): void;
}

/** Conversations one sweep statement deletes at most. */
export const SWEEP_BATCH_SIZE = 500;
/** Statements one sweep runs at most. */
export const SWEEP_MAX_BATCHES = 20;

/** A message as stored in `conversation_messages.message`. */
const storedMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string(),
  toolCalls: z.array(z.object({ id: z.string(), name: z.string(), arguments: z.string() })).optional(),
  toolCallId: z.string().optional(),
  provider: z.string().optional(),
  model: z.string().optional(),
  createdAt: z.iso.datetime().transform((text) => new Date(text)),
});

/** The JSON of a message (dates as ISO strings, absent fields left out). */
function storedMessage(message: ConversationMessage): Record<string, unknown> {
  return JSON.parse(JSON.stringify(message)) as Record<string, unknown>;
}

/** A ConversationStore kept in the database. */
export class DatabaseConversationStore implements ConversationStore {
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private sweeping: Promise<number> | undefined;

  constructor(
    private readonly db: DrizzleDatabase,
    private readonly limits: ConversationLimits,
    private readonly options: DatabaseConversationStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => void this.sweep(), options.sweepIntervalMs ?? Math.min(60_000, limits.retentionMs)).unref();
  }

  /** @throws the driver's error when the database cannot be read. */
  async get(id: string): Promise<Conversation | undefined> {
    const rows = await this.db
      .select({ createdAt: conversations.createdAt, updatedAt: conversations.updatedAt, message: conversationMessages.message })
      .from(conversations)
      .leftJoin(conversationMessages, eq(conversationMessages.conversationId, conversations.id))
      .where(and(eq(conversations.id, id), gt(conversations.updatedAt, this.expiredAt())))
      .orderBy(asc(conversationMessages.position));
    const first = rows[0];
    if (!first) return undefined;
    return {
      id,
      createdAt: first.createdAt,
      updatedAt: first.updatedAt,
      messages: rows.flatMap((row) => (row.message === null ? [] : [storedMessageSchema.parse(row.message)])),
    };
  }

  /** @throws the driver's error when the database cannot be written (the turn is then not stored). */
  async append(id: string, messages: ConversationMessage[]): Promise<Conversation> {
    const now = new Date(this.now());
    return this.db.transaction(async (transaction) => {
      // A new conversation's row, or the existing one unchanged — locked either way until the end of
      // the transaction (ON CONFLICT DO UPDATE locks the row it finds, and retries if a sweep deletes it meanwhile).
      const [locked] = await transaction
        .insert(conversations)
        .values({ id, createdAt: now, updatedAt: now })
        .onConflictDoUpdate({ target: conversations.id, set: { id: sql`excluded.id` } })
        .returning();
      let createdAt = locked!.createdAt;
      let stored: Array<{ position: number; message: ConversationMessage }> = [];
      if (locked!.updatedAt.getTime() <= this.expiredAt().getTime()) {
        // Expired but not swept yet: it starts over, as if it had been swept.
        await transaction.delete(conversationMessages).where(eq(conversationMessages.conversationId, id));
        createdAt = now;
      } else {
        const rows = await transaction
          .select({ position: conversationMessages.position, message: conversationMessages.message })
          .from(conversationMessages)
          .where(eq(conversationMessages.conversationId, id))
          .orderBy(asc(conversationMessages.position));
        stored = rows.map((row) => ({ position: row.position, message: storedMessageSchema.parse(row.message) }));
      }
      const nextPosition = (stored.at(-1)?.position ?? -1) + 1;
      const added = messages.map((message, index) => ({ position: nextPosition + index, message }));
      const kept = new Set(trimConversation([...stored, ...added].map((entry) => entry.message), this.limits));
      const dropped = stored.filter((entry) => !kept.has(entry.message)).map((entry) => entry.position);
      if (dropped.length > 0) {
        await transaction
          .delete(conversationMessages)
          .where(and(eq(conversationMessages.conversationId, id), inArray(conversationMessages.position, dropped)));
      }
      const inserted = added.filter((entry) => kept.has(entry.message));
      if (inserted.length > 0) {
        await transaction
          .insert(conversationMessages)
          .values(inserted.map((entry) => ({ conversationId: id, position: entry.position, message: storedMessage(entry.message) })));
      }
      await transaction.update(conversations).set({ createdAt, updatedAt: now }).where(eq(conversations.id, id));
      return { id, createdAt, updatedAt: now, messages: [...stored, ...added].map((entry) => entry.message).filter((message) => kept.has(message)) };
    });
  }

  /** @throws the driver's error when the database cannot be written. */
  async delete(id: string): Promise<boolean> {
    const deleted = await this.db.delete(conversations).where(eq(conversations.id, id)).returning({ id: conversations.id });
    return deleted.length > 0;
  }

  /**
   * Deletes expired conversations (their messages with them), oldest first, in statements of at
   * most `sweepBatchSize`, at most `sweepMaxBatches` of them; the periodic timer calls it. A sweep
   * already running is joined, not repeated.
   * @returns how many conversations it deleted (when a statement fails, those before it; `onSweepError` is told).
   */
  sweep(): Promise<number> {
    this.sweeping ??= this.deleteExpired().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /** Stops the sweeps, waiting for one that runs. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.sweeping;
  }

  /** Conversations last updated at or before this instant have expired. */
  private expiredAt(): Date {
    return new Date(this.now() - this.limits.retentionMs);
  }

  private async deleteExpired(): Promise<number> {
    const batchSize = this.options.sweepBatchSize ?? SWEEP_BATCH_SIZE;
    const maxBatches = this.options.sweepMaxBatches ?? SWEEP_MAX_BATCHES;
    let deleted = 0;
    try {
      for (let batch = 0; batch < maxBatches; batch += 1) {
        const expired = this.db
          .select({ id: conversations.id })
          .from(conversations)
          .where(lte(conversations.updatedAt, this.expiredAt()))
          .orderBy(asc(conversations.updatedAt))
          .limit(batchSize);
        const rows = await this.db.delete(conversations).where(inArray(conversations.id, expired)).returning({ id: conversations.id });
        deleted += rows.length;
        if (rows.length < batchSize) break;
      }
    } catch (error) {
      this.options.onSweepError?.(error);
    }
    return deleted;
  }
}
