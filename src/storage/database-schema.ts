/**
 * The durable records, as one SQL schema for both drivers (PGlite embedded, PostgreSQL with
 * `DATABASE_URL`), written with Drizzle's `pg-core` table builders. The migrations in
 * `src/storage/migrations/` are generated from this file (`npm run db:generate`, drizzle-kit) and
 * applied at start; change the tables here, then generate, never edit a migration that shipped.
 *
 * - `api_keys`: virtual API keys. Only the SHA-256 of a key is kept (the key is shown once, when it
 *   is created); its limits, an expiry and a revocation time.
 * - `generations`: one row per generation once it ended — who started it (`owner`, as the
 *   generation service names callers: `key:<key id>`, `ip:<address>`), what ran it, how it ended,
 *   its token counts, images, time to first token and duration (for usage and budgets), its cost
 *   when the model has a price, and its result (text, tool calls, images…) for `generation(id)`
 *   once the in-memory record has expired.
 * - `conversations` and `conversation_messages`: conversations the server keeps
 *   (`CONVERSATION_STORE=database`), one row per message in order.
 */
import { bigint, doublePrecision, index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/** The period a token budget counts over: a calendar day, week (from Monday) or month in UTC, or the key's whole life. */
export const BUDGET_PERIODS = ['day', 'week', 'month', 'total'] as const;

/** One of {@link BUDGET_PERIODS}. */
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

export const apiKeys = pgTable(
  'api_keys',
  {
    /** `key_` and a random suffix; what usage rows and owners name (`key:<id>`). */
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    /** Lower-case hex SHA-256 of the key. */
    keyHash: text('key_hash').notNull().unique(),
    /** The key's first characters, to tell keys apart in lists (never enough to use it). */
    keyPrefix: text('key_prefix').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    requestsPerMinute: integer('requests_per_minute'),
    tokensPerMinute: integer('tokens_per_minute'),
    maxConcurrentGenerations: integer('max_concurrent_generations'),
    budgetTokens: bigint('budget_tokens', { mode: 'number' }),
    budgetPeriod: text('budget_period', { enum: BUDGET_PERIODS }),
    /** Model ids (or `provider:model`) the key may use; null = any. */
    allowedModels: text('allowed_models').array(),
    /** Provider ids the key may use; null = any. */
    allowedProviders: text('allowed_providers').array(),
  },
);

export const generations = pgTable(
  'generations',
  {
    id: text('id').primaryKey(),
    kind: text('kind', { enum: ['chat', 'image'] }).notNull(),
    /** `key:<key id>`, `ip:<address>`, or null for starts from code. */
    owner: text('owner'),
    provider: text('provider').notNull(),
    model: text('model').notNull(),
    status: text('status', { enum: ['completed', 'failed', 'cancelled'] }).notNull(),
    errorCode: text('error_code'),
    promptTokens: integer('prompt_tokens').notNull().default(0),
    completionTokens: integer('completion_tokens').notNull().default(0),
    images: integer('images').notNull().default(0),
    /** Milliseconds from the start to the first content; null when none came. */
    timeToFirstTokenMs: integer('time_to_first_token_ms'),
    durationMs: integer('duration_ms').notNull(),
    /** In the currency of `MODEL_PRICES`; null when the model has no price. */
    cost: doublePrecision('cost'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    finishedAt: timestamp('finished_at', { withTimezone: true }).notNull(),
    /** The record as `generation(id)` shows it (text, reasoning, tool calls, images, usage, error), without its events. */
    result: jsonb('result').notNull(),
  },
  (table) => [
    // Usage and budgets: rows of a time range, of one owner or of all.
    index('generations_owner_finished_at').on(table.owner, table.finishedAt),
    index('generations_finished_at').on(table.finishedAt),
    // `generations` after the in-memory retention: newest first, of one owner or of all.
    index('generations_owner_created_at').on(table.owner, table.createdAt),
    index('generations_created_at').on(table.createdAt),
  ],
);

export const conversations = pgTable(
  'conversations',
  {
    id: text('id').primaryKey(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  // Conversations not updated within the retention are deleted, oldest first.
  (table) => [index('conversations_updated_at').on(table.updatedAt)],
);

export const conversationMessages = pgTable(
  'conversation_messages',
  {
    conversationId: text('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    /** 0, 1, 2, … in the order the messages were added. */
    position: integer('position').notNull(),
    /** The message: role, content, tool calls, tool call id, provider, model, creation time. */
    message: jsonb('message').notNull(),
  },
  (table) => [primaryKey({ columns: [table.conversationId, table.position] })],
);

/** All tables, for Drizzle's relational queries and drizzle-kit. */
export const databaseSchema = { apiKeys, generations, conversations, conversationMessages };
