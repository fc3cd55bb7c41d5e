/**
 * Usage summaries of the `generations` table (one row per ended generation, see
 * `database-schema.ts`): one SQL `GROUP BY` over the rows that finished in a time range, grouped
 * by any of the caller (`owner`), model, provider and day (UTC), at most a given number of groups.
 * The rows' time is `finished_at`, when the generation's usage was complete.
 */
import { and, eq, gte, lt, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import { generations } from './database-schema.js';
import type { DrizzleDatabase } from './open-database.js';

/** What usage can be grouped by: `key` is the row's owner (`key:…`, `ip:…`), `day` the UTC date it finished on. */
export const USAGE_GROUP_FIELDS = ['key', 'model', 'provider', 'day'] as const;

/** One of {@link USAGE_GROUP_FIELDS}. */
export type UsageGroupField = (typeof USAGE_GROUP_FIELDS)[number];

/** Which rows to summarise, and how. */
export interface UsageSummaryQuery {
  /** Rows that finished at or after this instant… */
  from: Date;
  /** …and before this one. */
  to: Date;
  /** The fields whose values make a group, in any order; none = one group of every row. */
  groupBy: readonly UsageGroupField[];
  /** Only this owner's rows; absent = every owner's. */
  owner?: string;
  /** Most groups returned (the first ones in the order of the group fields). */
  limit: number;
}

/**
 * One group of rows. The fields not grouped by are null; `key` is also null for the rows of
 * generations started from code (no owner). Token counts and images are sums, times are in ms.
 */
export interface UsageGroup {
  key: string | null;
  model: string | null;
  provider: string | null;
  /** `YYYY-MM-DD`, the UTC date. */
  day: string | null;
  /** Generations (rows) in the group. */
  requests: number;
  completed: number;
  failed: number;
  cancelled: number;
  promptTokens: number;
  completionTokens: number;
  /** `promptTokens + completionTokens`. */
  totalTokens: number;
  images: number;
  /**
   * The sum of the rows' costs, in the currency of the price table — only when every row of the
   * group has a cost; null when any has none ({@link unpricedRequests} says how many).
   */
  cost: number | null;
  /** Rows without a cost (their model had no price when they were written). */
  unpricedRequests: number;
  /** Mean time to first content of the rows that had content; null when none had. */
  meanTimeToFirstTokenMs: number | null;
  /** Mean duration, start to end. */
  meanDurationMs: number;
}

/** The SQL value of each group field. */
const GROUP_VALUES: Record<UsageGroupField, SQL<string | null>> = {
  key: sql<string | null>`${generations.owner}`,
  model: sql<string | null>`${generations.model}`,
  provider: sql<string | null>`${generations.provider}`,
  // `at time zone 'UTC'` gives the UTC wall time of a timestamptz whatever the session's time zone.
  day: sql<string | null>`to_char(${generations.finishedAt} at time zone 'UTC', 'YYYY-MM-DD')`,
};

const count = (condition?: SQL) => (condition ? sql`count(*) filter (where ${condition})` : sql`count(*)`).mapWith(Number);
const total = (column: AnyColumn) => sql`coalesce(sum(${column}), 0)`.mapWith(Number);
/** A numeric SQL value that may be null, as a number or null (`pg` returns `numeric` as text). */
const numberOrNull = (value: SQL) => sql<number | null>`${value}`.mapWith((raw: unknown) => (raw === null ? null : Number(raw)));

/** Reads usage summaries. */
export class UsageStore {
  constructor(private readonly db: DrizzleDatabase) {}

  /**
   * The groups of `query`'s rows, ordered by the group fields (in the order of
   * {@link USAGE_GROUP_FIELDS}, nulls last), at most `query.limit` of them. No rows, no groups.
   * @throws the driver's error when the database cannot be read.
   */
  async summarize(query: UsageSummaryQuery): Promise<UsageGroup[]> {
    const grouped = USAGE_GROUP_FIELDS.filter((field) => query.groupBy.includes(field));
    const value = (field: UsageGroupField) => (grouped.includes(field) ? GROUP_VALUES[field] : sql<null>`null::text`);
    const selection = {
      key: value('key'),
      model: value('model'),
      provider: value('provider'),
      day: value('day'),
      requests: count(),
      completed: count(sql`${generations.status} = 'completed'`),
      failed: count(sql`${generations.status} = 'failed'`),
      cancelled: count(sql`${generations.status} = 'cancelled'`),
      promptTokens: total(generations.promptTokens),
      completionTokens: total(generations.completionTokens),
      images: total(generations.images),
      costSum: numberOrNull(sql`sum(${generations.cost})`),
      unpricedRequests: count(sql`${generations.cost} is null`),
      meanTimeToFirstTokenMs: numberOrNull(sql`avg(${generations.timeToFirstTokenMs})`),
      meanDurationMs: sql`avg(${generations.durationMs})`.mapWith(Number),
    };
    const groupValues = grouped.map((field) => GROUP_VALUES[field]);
    let statement = this.db
      .select(selection)
      .from(generations)
      .where(
        and(
          gte(generations.finishedAt, query.from),
          lt(generations.finishedAt, query.to),
          query.owner === undefined ? undefined : eq(generations.owner, query.owner),
        ),
      )
      .$dynamic();
    // Without group fields the one aggregate row exists even over no rows; `having` drops it then.
    statement =
      groupValues.length > 0
        ? statement.groupBy(...groupValues).orderBy(...groupValues.map((group) => sql`${group} asc nulls last`))
        : statement.having(sql`count(*) > 0`);
    const rows = await statement.limit(query.limit);
    return rows.map(({ costSum, ...row }) => ({
      ...row,
      totalTokens: row.promptTokens + row.completionTokens,
      cost: row.unpricedRequests > 0 ? null : costSum,
    }));
  }
}
