/**
 * Usage: `usage` (every caller's, for admins) and `myUsage` (the caller's own), sums of the usage
 * rows written when generations end, grouped by key, model, provider and UTC day. Resolvers only
 * translate; `operations/usage-reports.ts` checks and reads, `security/usage-access.ts` decides who may.
 */
import {
  DEFAULT_USAGE_RANGE_MS,
  MAX_USAGE_GROUPS,
  type UsageGroup as UsageGroupShape,
  type UsageGroupField,
  type UsageQuery,
  type UsageReport as UsageReportShape,
} from '../operations/usage-reports.js';
import { builder } from './builder.js';
import './scalars.js';

const UsageGroupBy = builder.enumType('UsageGroupBy', {
  description: 'What makes a usage group: KEY (the caller: key:<id> by API key, ip:<address> without authentication), MODEL, PROVIDER, DAY (UTC date the generation ended).',
  values: { KEY: { value: 'key' }, MODEL: { value: 'model' }, PROVIDER: { value: 'provider' }, DAY: { value: 'day' } } as const,
});

const UsageGroup = builder.objectRef<UsageGroupShape>('UsageGroup').implement({
  description:
    'The generations of one group: counts, token sums, images, cost and mean times. The fields the report is not grouped by are null (key also for generations started from code).',
  fields: (t) => ({
    key: t.exposeString('key', { nullable: true, description: 'The caller: key:<id> (an API key) or ip:<address> (authentication off).' }),
    model: t.exposeString('model', { nullable: true, description: 'The model id the provider ran.' }),
    provider: t.exposeString('provider', { nullable: true }),
    day: t.exposeString('day', { nullable: true, description: 'YYYY-MM-DD, the UTC date the generations ended.' }),
    requests: t.expose('requests', { type: 'SafeInt', description: 'Generations that ended in the range (completed, failed or cancelled).' }),
    completed: t.expose('completed', { type: 'SafeInt' }),
    failed: t.expose('failed', { type: 'SafeInt' }),
    cancelled: t.expose('cancelled', { type: 'SafeInt' }),
    promptTokens: t.expose('promptTokens', { type: 'SafeInt', description: 'As the providers reported them (0 when a provider reported none).' }),
    completionTokens: t.expose('completionTokens', { type: 'SafeInt' }),
    totalTokens: t.expose('totalTokens', { type: 'SafeInt' }),
    images: t.expose('images', { type: 'SafeInt', description: 'Images generated.' }),
    cost: t.exposeFloat('cost', {
      nullable: true,
      description:
        'The sum of the generations\' costs in the currency of MODEL_PRICES, only when every generation of the group has a cost; null when any has none (unpricedRequests says how many). Never estimated.',
    }),
    unpricedRequests: t.expose('unpricedRequests', { type: 'SafeInt', description: 'Generations without a cost: their model had no price in MODEL_PRICES when they ended.' }),
    meanTimeToFirstTokenMs: t.exposeFloat('meanTimeToFirstTokenMs', {
      nullable: true,
      description: 'Mean time from the start to the first text or image, ms, of the generations that had any; null when none had.',
    }),
    meanDurationMs: t.exposeFloat('meanDurationMs', { description: 'Mean time from the start to the end, ms.' }),
  }),
});

const UsageReport = builder.objectRef<UsageReportShape>('UsageReport').implement({
  description: 'Usage of the generations that ended in [from, to), in groups ordered by day, key, model and provider.',
  fields: (t) => ({
    from: t.field({ type: 'DateTime', resolve: (report) => report.from }),
    to: t.field({ type: 'DateTime', resolve: (report) => report.to }),
    groupBy: t.field({ type: [UsageGroupBy], resolve: (report) => report.groupBy }),
    groups: t.field({ type: [UsageGroup], description: 'No groups when no generation ended in the range.', resolve: (report) => report.groups }),
  }),
});

/** The arguments both queries take. */
const usageArguments = (t: Parameters<Parameters<typeof builder.queryField>[1]>[0]) => ({
  from: t.arg({ type: 'DateTime', description: `Generations that ended at or after this instant; default: ${DEFAULT_USAGE_RANGE_MS / 86_400_000} days before to.` }),
  to: t.arg({ type: 'DateTime', description: 'Generations that ended before this instant; default: now.' }),
  groupBy: t.arg({ type: [UsageGroupBy], description: 'What makes a group; default: nothing (one group of everything).' }),
});

/** The query of the arguments (GraphQL nulls as absent). */
function queryOf(args: { from?: Date | null; to?: Date | null; groupBy?: readonly UsageGroupField[] | null }): UsageQuery {
  return {
    ...(args.from != null && { from: args.from }),
    ...(args.to != null && { to: args.to }),
    ...(args.groupBy != null && { groupBy: args.groupBy }),
  };
}

const ERRORS = `Errors: BAD_USER_INPUT (from not before to; more than ${MAX_USAGE_GROUPS} groups), DATABASE_NOT_CONFIGURED (the server runs with DATABASE_URL=none), DATABASE_UNAVAILABLE.`;

builder.queryField('usage', (t) =>
  t.field({
    type: UsageReport,
    description: `Every caller's usage, for admins: the caller that presented MASTER_KEY, or anyone when the server has no keys of any kind. ${ERRORS} FORBIDDEN for a caller who is not an admin.`,
    args: usageArguments(t),
    resolve: (_root, args, { usage }) => usage.usage(queryOf(args)),
  }),
);

builder.queryField('myUsage', (t) =>
  t.field({
    type: UsageReport,
    description: `The caller's own usage: the generations it started (by its API key, or by its address when the server runs without keys). ${ERRORS}`,
    args: usageArguments(t),
    resolve: (_root, args, { usage }) => usage.myUsage(queryOf(args)),
  }),
);
