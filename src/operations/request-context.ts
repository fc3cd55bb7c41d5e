/**
 * The request id of each HTTP request: a client may send its own `x-request-id` (kept when it is
 * 1–128 characters of letters, digits and `._:-`); otherwise a random UUID is made. The id is
 * echoed in the response's `x-request-id` and remembered per request, so the code that starts a
 * generation for the request can pass it on (the generation log lines name it).
 *
 * Passed explicitly rather than through `AsyncLocalStorage`: on Node 20 one `AsyncLocalStorage.run`
 * turns on promise hooks for the whole process, and every promise after it pays for them: a large
 * share of the gateway's CPU per streamed request under load (`docs/performance.md`).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { RequestProperty } from './request-property.js';

/** The header a request id travels in, both ways. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What a client-sent request id may look like (no spaces, quotes or control characters to forge log lines with). */
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const requestIds = new RequestProperty<string>('request id');
const traceCarriers = new RequestProperty<Readonly<Record<string, string>>>('trace context');

/** Gives the request its id — the client's `x-request-id` when it is acceptable, else a new random one — and returns it. */
export function assignRequestId(request: IncomingMessage): string {
  const sent = request.headers[REQUEST_ID_HEADER];
  const value = Array.isArray(sent) ? sent[0] : sent;
  const requestId = value !== undefined && ACCEPTED_REQUEST_ID.test(value) ? value : randomUUID();
  requestIds.set(request, requestId);
  return requestId;
}

/**
 * With tracing on: remembers the W3C Trace Context headers of the request's server span
 * (`traceparent`, `tracestate`), so the generation the request starts can be its child.
 */
export function setTraceCarrier(request: IncomingMessage, carrier: Readonly<Record<string, string>>): void {
  traceCarriers.set(request, carrier);
}

/** The trace context `setTraceCarrier` kept for the request; undefined when tracing is off or for a WebSocket upgrade request. */
export function traceCarrierOf(request: IncomingMessage): Readonly<Record<string, string>> | undefined {
  return traceCarriers.get(request);
}

/** The id `assignRequestId` gave the request; undefined for one it never saw (e.g. a WebSocket upgrade request). */
export function requestIdOf(request: IncomingMessage): string | undefined {
  return requestIds.get(request);
}
