/**
 * Writes a refusal of the security layer (no or wrong API key, a body over the limit) in the error
 * format of the API the request was for: an OpenAI error body under `/v1` (see `docs/rest-api.md`),
 * a GraphQL error body `{"errors":[{"message","extensions":{"code"}}]}` elsewhere
 * (https://graphql.github.io/graphql-over-http/draft/#sec-Response).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RestError, sendError } from '../rest/rest-http.js';
import type { HttpRefusal } from '../security/security.js';

/** Answers `refusal` with its status and headers, in its API's error format. */
export function sendHttpRefusal(request: IncomingMessage, response: ServerResponse, refusal: HttpRefusal): void {
  if (refusal.api === 'rest') {
    sendError(response, new RestError(refusal.code, refusal.message, { status: refusal.status }), refusal.headers);
    return;
  }
  const body = JSON.stringify({ errors: [{ message: refusal.message, extensions: { code: refusal.code } }] });
  const contentType = (request.headers.accept ?? '').includes('application/graphql-response+json')
    ? 'application/graphql-response+json; charset=utf-8'
    : 'application/json; charset=utf-8';
  response.writeHead(refusal.status, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)), ...refusal.headers });
  response.end(body);
}
