/**
 * Usage reports: what `Query.usage`, `Query.myUsage` and `GET /v1/usage` answer. A report sums the
 * usage rows (one per ended generation, `usage-recorder.ts`) that finished in a time range, in
 * groups by key, model, provider and UTC day (`storage/usage-store.ts`: one SQL `GROUP BY`, at most
 * {@link MAX_USAGE_GROUPS} groups). Who may ask for whose usage is the security layer's business
 * (`security/usage-access.ts`); this module checks the query and reads the store.
 */
import { GatewayError } from '../generations/gateway-error.js';
import type { UsageGroup, UsageGroupField, UsageStore } from '../storage/usage-store.js';

export { USAGE_GROUP_FIELDS, type UsageGroup, type UsageGroupField } from '../storage/usage-store.js';

/** Most groups one report holds; a query that makes more is refused (narrow the range, or group by less). */
export const MAX_USAGE_GROUPS = 1000;

/** The range of a report that names no `from`: the 30 days before `to`, ms. */
export const DEFAULT_USAGE_RANGE_MS = 30 * 86_400_000;

/** What a caller asks for; every field is optional. */
export interface UsageQuery {
  /** Rows that finished at or after this instant; default: {@link DEFAULT_USAGE_RANGE_MS} before `to`. */
  from?: Date;
  /** Rows that finished before this instant; default: now. */
  to?: Date;
  /** What makes a group; default: nothing (one group of everything). */
  groupBy?: readonly UsageGroupField[];
}

/** A report: the range and grouping it used, and its groups (none when no row is in the range). */
export interface UsageReport {
  from: Date;
  to: Date;
  groupBy: UsageGroupField[];
  groups: UsageGroup[];
}

/** What transports call: everyone's usage (admins) and the caller's own; see `security/usage-access.ts`. */
export interface UsageAccess {
  /**
   * Every caller's usage.
   * @throws SecurityError `FORBIDDEN` for a caller who is not an admin; as {@link UsageReports.report}.
   */
  usage(query: UsageQuery): Promise<UsageReport>;
  /**
   * The caller's own usage (the rows it owns, as the generation service names owners).
   * @throws as {@link UsageReports.report}.
   */
  myUsage(query: UsageQuery): Promise<UsageReport>;
}

/** Builds usage reports from the store; without one (`DATABASE_URL=none`) every report is refused. */
export class UsageReports {
  /** @param store the database's usage summaries; undefined when the server runs without a database. */
  constructor(private readonly store: Pick<UsageStore, 'summarize'> | undefined) {}

  /**
   * The report of `query` over the rows of `owner` (every owner's when undefined).
   * @throws GatewayError `DATABASE_NOT_CONFIGURED` without a database; `BAD_USER_INPUT` when `from`
   *   is not before `to`, a date is invalid, or the report would hold more than
   *   {@link MAX_USAGE_GROUPS} groups; `DATABASE_UNAVAILABLE` when the database cannot be read.
   */
  async report(query: UsageQuery, owner?: string): Promise<UsageReport> {
    if (!this.store) {
      throw new GatewayError(
        'DATABASE_NOT_CONFIGURED',
        'Usage needs a database, and this server runs without one (DATABASE_URL=none): unset DATABASE_URL for the embedded database, or point it at PostgreSQL.',
      );
    }
    const to = query.to ?? new Date();
    const from = query.from ?? new Date(to.getTime() - DEFAULT_USAGE_RANGE_MS);
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) throw new GatewayError('BAD_USER_INPUT', 'from and to must be valid dates');
    if (from.getTime() >= to.getTime()) throw new GatewayError('BAD_USER_INPUT', `from must be before to (got from ${from.toISOString()}, to ${to.toISOString()})`);
    const groupBy = [...new Set(query.groupBy ?? [])];
    let groups: UsageGroup[];
    try {
      groups = await this.store.summarize({ from, to, groupBy, ...(owner !== undefined && { owner }), limit: MAX_USAGE_GROUPS + 1 });
    } catch (error) {
      const reason = ((error as Error)?.message ?? String(error)).split('\n')[0];
      throw new GatewayError('DATABASE_UNAVAILABLE', `Usage cannot be read from the database (${reason}); try again later.`);
    }
    if (groups.length > MAX_USAGE_GROUPS) {
      throw new GatewayError('BAD_USER_INPUT', `The report would hold more than ${MAX_USAGE_GROUPS} groups: narrow from and to, or group by fewer fields.`);
    }
    return { from, to, groupBy, groups };
  }
}
