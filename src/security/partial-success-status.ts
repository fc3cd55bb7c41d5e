/**
 * The HTTP status of a GraphQL result where some fields succeeded and others were refused.
 *
 * A refusal (`RATE_LIMITED`, `UNAUTHORIZED`, …) carries Yoga's `http` extension so that a request
 * that got nothing answers with that status (429, 401). But one mutation may start several
 * generations under aliases, each admitted or refused on its own: the admitted ones return their
 * generations and the refused ones an error at their path. Such a response has data, and the
 * GraphQL over HTTP specification answers a response with data with 200
 * (https://graphql.github.io/graphql-over-http/draft/#sec-application-graphql-response-json);
 * Yoga would take the refusal's 429, and clients that branch on the status would drop the ids of
 * the generations that did start.
 */
import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** Whether any top-level field of the result has a value. */
function hasAnyValue(result: ExecutionResult): boolean {
  return result.data != null && Object.values(result.data).some((value) => value != null);
}

/**
 * The error without Yoga's `http` extension (status and headers meant for an HTTP response, which
 * Yoga strips itself over HTTP and SSE); the error itself when it has none.
 */
export function withoutHttpExtension(error: GraphQLError): GraphQLError {
  if (error.extensions.http === undefined) return error;
  const { http: _http, ...extensions } = error.extensions;
  return new GraphQLError(error.message, {
    ...(error.nodes && { nodes: error.nodes }),
    ...(error.source && { source: error.source }),
    ...(error.positions && { positions: error.positions }),
    ...(error.path && { path: error.path }),
    ...(error.originalError && { originalError: error.originalError }),
    extensions,
  });
}

/**
 * A Yoga plugin: a single result with at least one top-level field that has a value loses the
 * `http` extension of its errors, so it is answered 200 with its data and its errors; a result
 * whose every field failed keeps it (a single refused start still answers 429 with `Retry-After`).
 * Streams (subscriptions) are left alone.
 */
export function usePartialSuccessStatus(): Plugin {
  return {
    onExecute() {
      return {
        onExecuteDone({ result, setResult }) {
          if (Symbol.asyncIterator in result) return;
          if (!result.errors?.some((error) => error.extensions.http !== undefined) || !hasAnyValue(result)) return;
          setResult({ ...result, errors: result.errors.map(withoutHttpExtension) });
        },
      };
    },
  };
}
