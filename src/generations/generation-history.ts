/**
 * Generations after the in-memory retention (`GENERATION_RETENTION_MS`): the row the usage recorder
 * stores when a generation ends, read back as a record for `generation(id)` and `generations`.
 * Storage implements {@link GenerationHistory} (`storage/generation-store.ts`); `app.ts` hands it to
 * the generation service. A stored record has its result (text, reasoning, tool calls, usage,
 * images, error) but no events: its event log is gone, so a subscriber gets `EVENTS_EXPIRED`.
 */
import { z } from 'zod';
import type { GenerationListQuery, GenerationRow } from '../storage/generation-store.js';
import { GatewayError } from './gateway-error.js';
import { isAfter, pageSizeOf, positionOf, type GenerationFilter, type GenerationPage } from './generation-listing.js';
import type { GenerationRecord } from './generation-records.js';

/** Where ended generations are kept for good (the `generations` table). */
export interface GenerationHistory {
  /**
   * The stored row of generation `id`, or undefined.
   * @throws the driver's error when the database cannot be read.
   */
  get(id: string): Promise<GenerationRow | undefined>;
  /**
   * Rows newest first (creation time, then id as JavaScript compares strings), at most `query.limit`.
   * @throws the driver's error when the database cannot be read.
   */
  list(query: GenerationListQuery): Promise<GenerationRow[]>;
}

const errorSchema = z.object({ code: z.string(), message: z.string(), provider: z.string().optional() });

/** The `result` of a chat row (see `generationRow` in `operations/usage-recorder.ts`). */
const chatResultSchema = z.object({
  text: z.string().default(''),
  finishReason: z.enum(['stop', 'length', 'content-filter', 'tool-calls']).optional(),
  usage: z.object({ promptTokens: z.number().optional(), completionTokens: z.number().optional(), totalTokens: z.number().optional() }).optional(),
  toolCalls: z.array(z.object({ id: z.string(), name: z.string(), arguments: z.string() })).optional(),
  reasoning: z.string().optional(),
  conversationId: z.string().optional(),
  error: errorSchema.optional(),
  // Every generation has at least its first event.
  lastSequence: z.number().int().min(1).default(1),
});

/** The `result` of an image row. */
const imageResultSchema = z.object({
  prompt: z.string().default(''),
  images: z
    .array(
      z.object({
        url: z.string().optional(),
        mimeType: z.string(),
        width: z.number().optional(),
        height: z.number().optional(),
        seed: z.number().optional(),
        revisedPrompt: z.string().optional(),
        sourceUrl: z.string().optional(),
      }),
    )
    .default([]),
  error: errorSchema.optional(),
  lastSequence: z.number().int().min(1).default(1),
});

/**
 * The record of a stored row, as `generation(id)` shows it.
 * @throws Error when the row's `result` is not what the usage recorder writes.
 */
export function recordOfRow(row: GenerationRow): GenerationRecord {
  const common = {
    id: row.id,
    status: row.status,
    provider: row.provider,
    model: row.model,
    createdAt: row.createdAt,
    finishedAt: row.finishedAt,
    ...(row.owner !== undefined && { owner: row.owner }),
  };
  if (row.kind === 'chat') {
    const { lastSequence, ...result } = chatResultSchema.parse(row.result);
    return { ...common, kind: 'chat', ...result, lastSequence };
  }
  const { lastSequence, ...result } = imageResultSchema.parse(row.result);
  return { ...common, kind: 'image', ...result, lastSequence };
}

/** The error of a history that cannot be read. */
function unavailable(error: unknown): GatewayError {
  const reason = ((error as Error)?.message ?? String(error)).split('\n')[0];
  return new GatewayError('DATABASE_UNAVAILABLE', `The generation history cannot be read from the database (${reason}); try again later.`);
}

/**
 * The stored record of generation `id`, or undefined.
 * @throws GatewayError `DATABASE_UNAVAILABLE` when the database cannot be read.
 */
export async function findStoredGeneration(history: GenerationHistory, id: string): Promise<GenerationRecord | undefined> {
  let row: GenerationRow | undefined;
  try {
    row = await history.get(id);
  } catch (error) {
    throw unavailable(error);
  }
  return row && recordOfRow(row);
}

/**
 * One page of generations from the records held in memory (`live`: this instance's, or every
 * instance's when scaled out) and the stored ones, newest first; a generation in both is shown as
 * held in memory. The page holds the first `first` of both lists together: each list's own first
 * `first + 1` are enough to tell them and whether more follow.
 * @throws GatewayError `BAD_USER_INPUT` for a bad page size or cursor; `DATABASE_UNAVAILABLE` when
 *   the database cannot be read.
 */
export async function withStoredGenerations(history: GenerationHistory, filter: GenerationFilter, live: GenerationPage): Promise<GenerationPage> {
  const first = pageSizeOf(filter);
  const cursor = filter.after === undefined ? undefined : positionOf(filter.after);
  // Only ended generations are stored.
  if (filter.status === 'queued' || filter.status === 'running') return live;
  let rows: GenerationRow[];
  try {
    rows = await history.list({
      ...(filter.owner !== undefined && { owner: filter.owner }),
      ...(filter.status !== undefined && { status: filter.status }),
      ...(filter.kind !== undefined && { kind: filter.kind }),
      ...(cursor && { before: { createdAt: new Date(cursor.createdAtMs), id: cursor.id } }),
      limit: first + 1,
    });
  } catch (error) {
    throw unavailable(error);
  }
  const held = new Set(live.records.map((record) => record.id));
  const merged = [...live.records, ...rows.filter((row) => !held.has(row.id)).map(recordOfRow)]
    .filter((record) => isAfter({ createdAtMs: record.createdAt.getTime(), id: record.id }, cursor))
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return { records: merged.slice(0, first), hasNextPage: live.hasNextPage || merged.length > first };
}
