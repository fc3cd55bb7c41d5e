/**
 * The request id of the HTTP request being handled, carried through async calls with
 * `AsyncLocalStorage`, so code far from the request (the generation log lines) can name it.
 * A client may send its own `x-request-id` (kept when it is 1–128 characters of letters, digits
 * and `._:-`); otherwise a random UUID is made. The id is echoed in the response's `x-request-id`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The header a request id travels in, both ways. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What a client-sent request id may look like (no spaces, quotes or control characters to forge log lines with). */
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const storage = new AsyncLocalStorage<{ requestId: string }>();

/** The client's `x-request-id` when it is acceptable, else a new random one. */
export function requestIdOf(request: IncomingMessage): string {
  const sent = request.headers[REQUEST_ID_HEADER];
  const value = Array.isArray(sent) ? sent[0] : sent;
  return value !== undefined && ACCEPTED_REQUEST_ID.test(value) ? value : randomUUID();
}

/** Runs `work` with `requestId` as the current request id (for everything it calls, sync or async). */
export function runWithRequestId<Result>(requestId: string, work: () => Result): Result {
  return storage.run({ requestId }, work);
}

/** The id of the HTTP request being handled, or undefined outside one (e.g. a graphql-ws operation). */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}
