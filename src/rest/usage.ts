/**
 * `GET /v1/usage`: usage reports over REST, the same as GraphQL's `myUsage` (`scope=mine`, the
 * default) and `usage` (`scope=all`, admins). Query parameters: `from` and `to` (ISO 8601 date-times,
 * or dates meaning UTC midnight), `group_by` (comma-separated `key`, `model`, `provider`, `day`, or
 * repeated), `scope`. The reply is snake_case, like the OpenAI API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { USAGE_GROUP_FIELDS, type UsageGroup, type UsageReport } from '../operations/usage-reports.js';
import type { RestApiDependencies } from './rest-dependencies.js';
import { parseBody, sendJson, toRestError } from './rest-http.js';

/** An instant: an ISO 8601 date-time with its offset (`2026-12-01T00:00:00Z`), or a date, taken as UTC midnight. */
const instant = (name: string) =>
  z
    .union([z.iso.datetime({ offset: true }), z.iso.date()], { error: `${name} must be an ISO 8601 date-time (2026-12-01T00:00:00Z) or date (2026-12-01)` })
    .transform((text) => new Date(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text))
    .optional();

const parametersSchema = z.object({
  from: instant('from'),
  to: instant('to'),
  group_by: z
    .array(z.enum(USAGE_GROUP_FIELDS, { error: `group_by lists ${USAGE_GROUP_FIELDS.join(', ')}` }))
    .optional(),
  scope: z.enum(['mine', 'all'], { error: 'scope must be mine or all' }).default('mine'),
});

/** One group as REST clients see it. */
function toRestGroup(group: UsageGroup) {
  return {
    key: group.key,
    model: group.model,
    provider: group.provider,
    day: group.day,
    requests: group.requests,
    completed: group.completed,
    failed: group.failed,
    cancelled: group.cancelled,
    prompt_tokens: group.promptTokens,
    completion_tokens: group.completionTokens,
    total_tokens: group.totalTokens,
    images: group.images,
    cost: group.cost,
    unpriced_requests: group.unpricedRequests,
    mean_time_to_first_token_ms: group.meanTimeToFirstTokenMs,
    mean_duration_ms: group.meanDurationMs,
  };
}

/**
 * Handles `GET /v1/usage`: `200 {"object": "usage_report", "scope", "from", "to", "group_by", "data": [group…]}`.
 * @throws RestError 400 `BAD_USER_INPUT` (a bad parameter, naming it as `param`; `from` not before
 *   `to`; too many groups), 401/403 (`scope=all` for a caller who is not an admin), 501
 *   `DATABASE_NOT_CONFIGURED`, 503 `DATABASE_UNAVAILABLE`.
 */
export async function handleUsage(dependencies: RestApiDependencies, request: IncomingMessage, response: ServerResponse): Promise<void> {
  request.resume();
  const search = new URL(request.url ?? '/', 'http://gateway.invalid').searchParams;
  const raw: Record<string, unknown> = {};
  for (const name of ['from', 'to', 'scope'] as const) {
    const value = search.get(name);
    if (value !== null) raw[name] = value;
  }
  const groupBy = search.getAll('group_by').flatMap((value) => value.split(',')).map((field) => field.trim()).filter(Boolean);
  if (groupBy.length > 0) raw.group_by = groupBy;
  const parameters = parseBody(parametersSchema, raw);
  const query = {
    ...(parameters.from && { from: parameters.from }),
    ...(parameters.to && { to: parameters.to }),
    ...(parameters.group_by && { groupBy: parameters.group_by }),
  };
  const access = dependencies.usageFor(request);
  let report: UsageReport;
  try {
    report = parameters.scope === 'all' ? await access.usage(query) : await access.myUsage(query);
  } catch (error) {
    throw toRestError(error);
  }
  sendJson(response, 200, {
    object: 'usage_report',
    scope: parameters.scope,
    from: report.from.toISOString(),
    to: report.to.toISOString(),
    group_by: report.groupBy,
    data: report.groups.map(toRestGroup),
  });
}
