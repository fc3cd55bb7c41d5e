/**
 * Persisted operations (`PERSISTED_OPERATIONS_FILE`): GraphQL runs only the operations of a list,
 * named by id, on every transport — for public deployments, where no one may send operations of
 * their own. Over HTTP and SSE, Yoga's persisted-operations plugin
 * (`@graphql-yoga/plugin-persisted-operations`) looks the id up in Yoga's `onParams` hook;
 * graphql-ws messages never pass that hook (the WebSocket server runs operations through
 * `yoga.getEnveloped`), so the WebSocket server asks {@link PersistedOperations.operationFor},
 * which applies the same rules with the same errors.
 *
 * A request names a listed operation, and carries no operation text, by either:
 * - `documentId`, e.g. `sha256:5e82…` (the GraphQL over HTTP draft's persisted documents appendix,
 *   https://github.com/graphql/graphql-over-http/blob/main/spec/Appendix%20A%20--%20Persisted%20Documents.md):
 *   in a POST body, a GET's query string, or graphql-ws's Subscribe payload (whose `query` must be
 *   a string: `""`);
 * - `extensions.persistedQuery: { version: 1, sha256Hash: "<hex>" }` (Apollo's Automatic Persisted
 *   Queries format, the plugin's default), looked up as `sha256:<hex>`.
 *
 * Refusals (400 over HTTP): `PERSISTED_QUERY_ONLY` for a request with an operation's text or with
 * no id, `PERSISTED_QUERY_NOT_FOUND` for an id the list does not hold.
 */
import { defaultExtractPersistedOperationId, usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { normalizePersistedOperationId, type PersistedOperationList } from '../config.js';
import { SecurityError } from './security-error.js';

/** The request parameter that names a persisted operation besides `extensions` (Yoga refuses unknown parameters unless told: `extraParamNames`). */
export const DOCUMENT_ID_PARAMETER = 'documentId';

/** What a request names an operation with: Yoga's parameters, or a graphql-ws Subscribe payload. */
interface OperationParameters {
  query?: string | undefined;
  extensions?: Record<string, unknown> | null | undefined;
  [DOCUMENT_ID_PARAMETER]?: unknown;
}

/** The only operations GraphQL runs, for each transport. */
export interface PersistedOperations {
  /** How many operations the list holds. */
  readonly size: number;
  /** The Yoga plugin (HTTP and SSE), to run before the other plugins. */
  readonly plugin: Plugin<Record<string, unknown>>;
  /**
   * graphql-ws: the text of the listed operation a Subscribe payload names.
   * @throws SecurityError `PERSISTED_QUERY_ONLY` when the payload's `query` is not empty or it names
   *   no operation; `PERSISTED_QUERY_NOT_FOUND` when the list does not hold the id.
   */
  operationFor(payload: OperationParameters): string;
}

function persistedOnly(): SecurityError {
  return new SecurityError(
    'PERSISTED_QUERY_ONLY',
    'This server runs only persisted operations: send the id of a listed operation (documentId, or extensions.persistedQuery.sha256Hash) instead of its text.',
  );
}

function notFound(id: string): SecurityError {
  const shown = id.length > 80 ? `${id.slice(0, 77)}...` : id;
  return new SecurityError('PERSISTED_QUERY_NOT_FOUND', `No persisted operation has the id ${JSON.stringify(shown)}.`);
}

/** The id a request names, normalised as the list keys ids; undefined when it names none. */
function operationIdOf(parameters: OperationParameters, request?: Request): string | undefined {
  let documentId = parameters[DOCUMENT_ID_PARAMETER];
  // Yoga reads only query, operationName, variables and extensions from a GET's query string.
  if (documentId === undefined && request?.method === 'GET') documentId = new URL(request.url).searchParams.get(DOCUMENT_ID_PARAMETER) ?? undefined;
  if (typeof documentId === 'string' && documentId !== '') return normalizePersistedOperationId(documentId);
  // The plugin's own reader of `extensions.persistedQuery` (version 1, a string sha256Hash) reads the parameters alone.
  const sha256Hash = defaultExtractPersistedOperationId(parameters as GraphQLParams, request as Request, {});
  return sha256Hash === null ? undefined : normalizePersistedOperationId(sha256Hash);
}

/** Builds the checks of one list (read once at start from `PERSISTED_OPERATIONS_FILE`). */
export function createPersistedOperations(operations: PersistedOperationList): PersistedOperations {
  return {
    size: operations.size,
    plugin: usePersistedOperations({
      getPersistedOperation: (id) => operations.get(id) ?? null,
      extractPersistedOperationId: (parameters, request) => operationIdOf(parameters as OperationParameters, request) ?? null,
      customErrors: {
        persistedQueryOnly: persistedOnly,
        keyNotFound: persistedOnly,
        notFound: (payload) => notFound(operationIdOf(payload.params as OperationParameters, payload.request) ?? ''),
      },
    }) as Plugin<Record<string, unknown>>,
    operationFor(payload) {
      if (payload.query !== undefined && payload.query !== '') throw persistedOnly();
      const id = operationIdOf(payload);
      if (id === undefined) throw persistedOnly();
      const operation = operations.get(id);
      if (operation === undefined) throw notFound(id);
      return operation;
    },
  };
}
