/**
 * Cross-origin requests from browser pages (CORS, https://fetch.spec.whatwg.org/#http-cors-protocol),
 * for every route alike (GraphQL, REST, the rest), with the `cors` package of the Express project.
 *
 * `CORS_ORIGINS` names the origins whose pages may call the gateway; by default none, so only pages
 * the gateway serves itself (same origin) can read its answers. `*` lets any page call it. No
 * origin gets credentials (cookies, HTTP authentication): API keys travel in the `Authorization`
 * header, which a preflight allows like any header the page asks for. `x-request-id` and
 * `retry-after` are exposed to pages.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from 'cors';

/** Answers a request's CORS part: true when it answered the request (a preflight), false when the request goes on. */
export type CrossOriginHandler = (request: IncomingMessage, response: ServerResponse) => Promise<boolean>;

/**
 * The CORS handler for the allowed origins.
 * @param origins exact origins (`https://app.example.com`), or `['*']` for any; empty = same origin
 *   only: the handler adds no headers and answers nothing.
 */
export function createCrossOriginHandler(origins: readonly string[]): CrossOriginHandler {
  if (origins.length === 0) return async () => false;
  const middleware = cors({
    origin: origins.includes('*') ? '*' : [...origins],
    credentials: false,
    methods: ['GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS'],
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: 600,
  });
  return async (request, response) => {
    // With fixed options `cors` works synchronously: it either ends a preflight (204) or calls `next`.
    let passed = false;
    middleware(request, response, () => {
      passed = true;
    });
    return !passed;
  };
}
