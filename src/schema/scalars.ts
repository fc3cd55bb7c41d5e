/** Custom scalars. */
import { GraphQLError, Kind } from 'graphql';
import { JSONResolver, SafeIntResolver } from 'graphql-scalars';
import { builder } from './builder.js';

function parseDateTime(value: unknown): Date {
  const date = typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) {
    throw new GraphQLError('DateTime must be an ISO-8601 date-time string', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return date;
}

/** An instant as an ISO-8601 string in UTC, e.g. `2026-11-22T01:36:10.123Z`. */
export const DateTime = builder.scalarType('DateTime', {
  description: 'An instant as an ISO-8601 string in UTC, e.g. 2026-11-22T01:36:10.123Z.',
  serialize: (value) => value.toISOString(),
  parseValue: parseDateTime,
  parseLiteral: (node) => parseDateTime(node.kind === Kind.STRING ? node.value : undefined),
});

/** Any JSON value (graphql-scalars' `JSON`): tool parameters and response formats are JSON Schemas. */
export const JSON = builder.addScalarType('JSON', JSONResolver);

/** A whole number up to 2^53 − 1 (graphql-scalars' `SafeInt`): sums of tokens can pass GraphQL's 32-bit `Int`. */
export const SafeInt = builder.addScalarType('SafeInt', SafeIntResolver);
