/**
 * The gpt4free-style REST API (`docs/protocols.md` §1): `/v1/chat/completions`,
 * `/v1/images/generations`, `/v1/models`, `/v1/providers`, and the gateway's own `/v1/usage`. A
 * thin front door to the same generation service and usage reports as the GraphQL resolvers.
 *
 * | method, path | handler |
 * |---|---|
 * | `POST /v1/chat/completions` | {@link handleChatCompletions} |
 * | `POST /v1/images/generations`, `POST /v1/images/generate` | {@link handleImageGenerations} |
 * | `GET /v1/models`, `GET /v1/models/{id}` | {@link handleListModels}, {@link handleGetModel} |
 * | `GET /v1/providers`, `GET /v1/providers/{id}` | {@link handleListProviders}, {@link handleGetProvider} |
 * | `GET /v1/usage` | {@link handleUsage} |
 * | `GET /v1/openapi.json` | the OpenAPI document of these routes ({@link OPENAPI_DOCUMENT}; public) |
 *
 * Any other `/v1/…` path answers 404 `ROUTE_NOT_FOUND`, a known path with another method 405
 * `METHOD_NOT_ALLOWED` (with `Allow`), both with an OpenAI error body. `HEAD` works where `GET` does.
 * Paths outside `/v1` are not handled. Trailing slashes are ignored.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRoute } from '../http-route.js';
import { defaultLogger } from '../operations/logger.js';
import { handleChatCompletions } from './chat-completions.js';
import { handleImageGenerations } from './image-generations.js';
import { handleGetModel, handleListModels } from './models.js';
import { handleGetProvider, handleListProviders } from './providers.js';
import { handleUsage } from './usage.js';
import { OPENAPI_DOCUMENT } from './openapi-document.js';
import { EventStreamWriter, RestError, sendError, sendJson } from './rest-http.js';
import type { RestApiDependencies } from './rest-dependencies.js';

export type { RestApiDependencies } from './rest-dependencies.js';

/** Handles one request to a matched path; `parameter` is the decoded `{id}` of the path, if any. */
type RestHandler = (
  dependencies: RestApiDependencies,
  request: IncomingMessage,
  response: ServerResponse,
  parameter: string,
) => Promise<void>;

/** A path and its handler per method. `prefix` paths match `prefix/{id}` with a non-empty id (which may contain `/`). */
interface RestRoute {
  path: string;
  prefix?: boolean;
  methods: Partial<Record<'GET' | 'POST', RestHandler>>;
}

const ROUTES: RestRoute[] = [
  { path: '/v1/chat/completions', methods: { POST: (dependencies, request, response) => handleChatCompletions(dependencies, request, response) } },
  { path: '/v1/images/generations', methods: { POST: (dependencies, request, response) => handleImageGenerations(dependencies, request, response) } },
  { path: '/v1/images/generate', methods: { POST: (dependencies, request, response) => handleImageGenerations(dependencies, request, response) } },
  { path: '/v1/models', methods: { GET: (dependencies, _request, response) => handleListModels(dependencies, response) } },
  { path: '/v1/models', prefix: true, methods: { GET: (dependencies, _request, response, id) => handleGetModel(dependencies, response, id) } },
  { path: '/v1/providers', methods: { GET: (dependencies, _request, response) => handleListProviders(dependencies, response) } },
  { path: '/v1/providers', prefix: true, methods: { GET: (dependencies, _request, response, id) => handleGetProvider(dependencies, response, id) } },
  { path: '/v1/usage', methods: { GET: (dependencies, request, response) => handleUsage(dependencies, request, response) } },
  { path: '/v1/openapi.json', methods: { GET: async (_dependencies, _request, response) => sendJson(response, 200, OPENAPI_DOCUMENT) } },
];

/** The route for a path and its `{id}`, or undefined. @throws RestError 400 for a badly encoded id. */
function matchRoute(path: string): { route: RestRoute; parameter: string } | undefined {
  for (const route of ROUTES) {
    if (!route.prefix) {
      if (path === route.path) return { route, parameter: '' };
      continue;
    }
    if (!path.startsWith(`${route.path}/`)) continue;
    const raw = path.slice(route.path.length + 1);
    if (raw === '') continue;
    try {
      return { route, parameter: decodeURIComponent(raw) };
    } catch {
      throw new RestError('BAD_USER_INPUT', `The path segment "${raw}" is not valid percent-encoding.`);
    }
  }
  return undefined;
}

/** The REST API as one route: handles `/v1` and `/v1/…`, passes everything else on. */
export function createRestApi(dependencies: RestApiDependencies): HttpRoute {
  return async (request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://gateway.invalid').pathname;
    if (pathname !== '/v1' && !pathname.startsWith('/v1/')) return false;
    const path = pathname.replace(/\/+$/, '') || '/';
    try {
      const matched = matchRoute(path);
      if (!matched) {
        request.resume();
        sendError(response, new RestError('ROUTE_NOT_FOUND', `No such endpoint: ${request.method} ${pathname}.`));
        return true;
      }
      const { route, parameter } = matched;
      const method = request.method === 'HEAD' ? 'GET' : request.method;
      const handler = method === 'GET' || method === 'POST' ? route.methods[method] : undefined;
      if (!handler) {
        request.resume();
        const allowed = Object.keys(route.methods).flatMap((name) => (name === 'GET' ? ['GET', 'HEAD'] : [name]));
        sendError(response, new RestError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${pathname}; use ${allowed.join(' or ')}.`), {
          allow: allowed.join(', '),
        });
        return true;
      }
      await handler(dependencies, request, response, parameter);
    } catch (error) {
      if (error instanceof RestError) {
        sendError(response, error);
        return true;
      }
      (dependencies.logger ?? defaultLogger()).error({ err: error, method: request.method, path: pathname }, 'REST request failed');
      const internal = new RestError('INTERNAL_ERROR', 'The server failed to handle the request.');
      if (!response.headersSent) sendError(response, internal);
      else if (response.getHeader('content-type') === 'text/event-stream') {
        const writer = new EventStreamWriter(response);
        writer.sendError(internal);
        writer.done();
      } else response.destroy();
    }
    return true;
  };
}
