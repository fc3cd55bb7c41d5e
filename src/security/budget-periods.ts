/**
 * The periods a virtual key's token budget counts over (`BUDGET_PERIODS`): UTC calendar periods —
 * a day from 00:00, a week from Monday 00:00 (ISO 8601 weeks), a month from its first day — or
 * `total`, the key's whole life.
 */
import type { BudgetPeriod } from '../storage/database-schema.js';

/** The start of the period that holds `now` (`total`: the Unix epoch, so every use counts). */
export function budgetPeriodStart(period: BudgetPeriod, now: Date): Date {
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  const day = now.getUTCDate();
  switch (period) {
    case 'day':
      return new Date(Date.UTC(year, month, day));
    case 'week':
      // getUTCDay: 0 = Sunday … 6 = Saturday; days since Monday = (weekday + 6) % 7.
      return new Date(Date.UTC(year, month, day - ((now.getUTCDay() + 6) % 7)));
    case 'month':
      return new Date(Date.UTC(year, month, 1));
    case 'total':
      return new Date(0);
  }
}

/** When the period that holds `now` ends and the budget starts again; undefined for `total` (never). */
export function budgetPeriodReset(period: BudgetPeriod, now: Date): Date | undefined {
  const start = budgetPeriodStart(period, now);
  switch (period) {
    case 'day':
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate() + 1));
    case 'week':
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate() + 7));
    case 'month':
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
    case 'total':
      return undefined;
  }
}
