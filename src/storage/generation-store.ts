/**
 * The `generations` table: one row per ended generation (see `database-schema.ts`), written once
 * when it ends, read for usage, budgets, and `generation(id)` and `generations` after the
 * in-memory record expired (the summaries of usage are `usage-store.ts`).
 */
import { and, desc, eq, gte, lt, or, sql } from 'drizzle-orm';
import { generations } from './database-schema.js';
import type { DrizzleDatabase } from './open-database.js';

/** One ended generation as stored. Token counts and images are whole numbers; times are ms. */
export interface GenerationRow {
  id: string;
  kind: 'chat' | 'image';
  /** `key:<key id>`, `ip:<address>`, or undefined for starts from code. */
  owner?: string;
  provider: string;
  model: string;
  status: 'completed' | 'failed' | 'cancelled';
  errorCode?: string;
  promptTokens: number;
  completionTokens: number;
  images: number;
  timeToFirstTokenMs?: number;
  durationMs: number;
  /** In the currency of the price table; undefined without a price. */
  cost?: number;
  createdAt: Date;
  finishedAt: Date;
  /** The record as `generation(id)` shows it, JSON-serialisable. */
  result: Record<string, unknown>;
}

/** The columns of a row, as placeholders of the one-row insert prepared once per store. */
const ONE_ROW_PLACEHOLDERS = Object.fromEntries(
  ['id', 'kind', 'owner', 'provider', 'model', 'status', 'errorCode', 'promptTokens', 'completionTokens', 'images', 'timeToFirstTokenMs', 'durationMs', 'cost', 'createdAt', 'finishedAt', 'result'].map(
    (column) => [column, sql.placeholder(column)],
  ),
) as unknown as typeof generations.$inferInsert;

/** Which rows {@link GenerationStore.list} gives: all conditions given must hold. */
export interface GenerationListQuery {
  /** Only this owner's rows; absent = every owner's. */
  owner?: string;
  status?: GenerationRow['status'];
  kind?: GenerationRow['kind'];
  /** Only rows that come after this position in the order (created earlier, or at the same time with a smaller id). */
  before?: { createdAt: Date; id: string };
  /** Most rows returned. */
  limit: number;
}

/** Reads and writes {@link GenerationRow}s. */
export class GenerationStore {
  /** The one-row insert, built once: most rows are written alone, as their generation ends. */
  private readonly insertOne;

  constructor(private readonly db: DrizzleDatabase) {
    this.insertOne = db.insert(generations).values(ONE_ROW_PLACEHOLDERS).onConflictDoNothing({ target: generations.id }).prepare('insert_generation');
  }

  /**
   * Stores `row`; a row with the same id already stored is left as it is (a retried write).
   * @throws the driver's error when the database cannot be written.
   */
  record(row: GenerationRow): Promise<void> {
    return this.recordMany([row]);
  }

  /**
   * Stores `rows` in one statement (all or none); rows whose id is already stored are left as they are.
   * @throws the driver's error when the database cannot be written.
   */
  async recordMany(rows: readonly GenerationRow[]): Promise<void> {
    if (rows.length === 0) return;
    if (rows.length === 1) {
      await this.insertOne.execute(toColumns(rows[0]!) as Record<string, unknown>);
      return;
    }
    await this.db
      .insert(generations)
      .values(rows.map(toColumns))
      .onConflictDoNothing({ target: generations.id });
  }

  /** The row of generation `id`, or undefined. */
  async get(id: string): Promise<GenerationRow | undefined> {
    const [row] = await this.db.select().from(generations).where(eq(generations.id, id)).limit(1);
    return row && fromColumns(row);
  }

  /**
   * Rows matching `query`, newest first: by creation time, then by id (compared as bytes, as
   * JavaScript compares strings), at most `query.limit`.
   */
  async list(query: GenerationListQuery): Promise<GenerationRow[]> {
    const { before } = query;
    const rows = await this.db
      .select()
      .from(generations)
      .where(
        and(
          query.owner === undefined ? undefined : eq(generations.owner, query.owner),
          query.status === undefined ? undefined : eq(generations.status, query.status),
          query.kind === undefined ? undefined : eq(generations.kind, query.kind),
          before === undefined
            ? undefined
            : or(lt(generations.createdAt, before.createdAt), and(eq(generations.createdAt, before.createdAt), sql`${generations.id} collate "C" < ${before.id}`)),
        ),
      )
      .orderBy(desc(generations.createdAt), sql`${generations.id} collate "C" desc`)
      .limit(query.limit);
    return rows.map(fromColumns);
  }

  /** Prompt plus completion tokens of `owner`'s generations that finished at or after `since`. */
  async tokensSince(owner: string, since: Date): Promise<number> {
    const [row] = await this.db
      .select({ tokens: sql<string>`coalesce(sum(${generations.promptTokens} + ${generations.completionTokens}), 0)` })
      .from(generations)
      .where(and(eq(generations.owner, owner), gte(generations.finishedAt, since)));
    return Number(row?.tokens ?? 0);
  }
}

/** The row of a table row (SQL nulls as absent values). */
function fromColumns(row: typeof generations.$inferSelect): GenerationRow {
  return {
    id: row.id,
    kind: row.kind,
    ...(row.owner !== null && { owner: row.owner }),
    provider: row.provider,
    model: row.model,
    status: row.status,
    ...(row.errorCode !== null && { errorCode: row.errorCode }),
    promptTokens: row.promptTokens,
    completionTokens: row.completionTokens,
    images: row.images,
    ...(row.timeToFirstTokenMs !== null && { timeToFirstTokenMs: row.timeToFirstTokenMs }),
    durationMs: row.durationMs,
    ...(row.cost !== null && { cost: row.cost }),
    createdAt: row.createdAt,
    finishedAt: row.finishedAt,
    result: row.result as Record<string, unknown>,
  };
}

/** The columns of `row` (absent optional values as SQL null). */
function toColumns(row: GenerationRow): typeof generations.$inferInsert {
  return {
    id: row.id,
    kind: row.kind,
    owner: row.owner ?? null,
    provider: row.provider,
    model: row.model,
    status: row.status,
    errorCode: row.errorCode ?? null,
    promptTokens: row.promptTokens,
    completionTokens: row.completionTokens,
    images: row.images,
    timeToFirstTokenMs: row.timeToFirstTokenMs ?? null,
    durationMs: row.durationMs,
    cost: row.cost ?? null,
    createdAt: row.createdAt,
    finishedAt: row.finishedAt,
    result: row.result,
  };
}
