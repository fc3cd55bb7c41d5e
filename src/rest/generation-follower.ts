/**
 * The flow every REST route that runs one generation shares (`POST /v1/chat/completions`,
 * `POST /v1/images/generations`): read and validate the JSON body, start the generation, follow its
 * events until the reply is over, cancel it when the client leaves, and turn failures into REST errors.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { GenerationCancelledEvent, GenerationEvent, GenerationFailedEvent } from '../generations/generation-events.js';
import type { GenerationAccess } from '../generations/generation-access.js';
import type { GenerationRecord } from '../generations/generation-records.js';
import type { RestApiDependencies } from './rest-dependencies.js';
import {
  ClientConnection,
  EventStreamWriter,
  RestError,
  parseBody,
  readJsonBody,
  restErrorFromGenerationError,
  sendError,
  toRestError,
} from './rest-http.js';

/**
 * What a generation route adds to the shared flow of {@link followGeneration}.
 * @typeParam Body the validated request body.
 * @typeParam Generation the record `start` returns (chat or image).
 * @typeParam Event the events of that kind of generation.
 */
export interface GenerationRoute<Body, Generation extends GenerationRecord, Event extends GenerationEvent> {
  /** The request body's schema (see {@link parseBody}); a body it rejects is answered 400 `BAD_USER_INPUT`. */
  schema: z.ZodType<Body>;
  /** The kind of generation `start` makes; the events are subscribed to with it. */
  kind: Generation['kind'];
  /**
   * Starts the generation for a validated body.
   * @throws RestError or GatewayError before anything starts (answered with its status, see `toRestError`).
   */
  start(generations: GenerationAccess, body: Body): Promise<Generation>;
  /**
   * The handler of this reply's events: it gets every event in order except `generation-failed`
   * and `generation-cancelled` (which {@link followGeneration} answers) and returns true once the
   * reply is complete (no more events are read). It writes through `writer` (`writer.response` for
   * a plain JSON reply).
   */
  answer(body: Body, generation: Generation, writer: EventStreamWriter): (event: Event) => boolean;
}

/**
 * The REST error that ends the reply on a `generation-failed` event (the generation's error) or a
 * `generation-cancelled` event (503 `GENERATION_CANCELLED`: cancelled by someone other than this
 * client, e.g. `cancelGeneration` or a server shutdown).
 */
function restErrorFromEndEvent(event: GenerationFailedEvent | GenerationCancelledEvent): RestError {
  if (event.type === 'generation-failed') return restErrorFromGenerationError(event.error);
  return new RestError('GENERATION_CANCELLED', `The generation was cancelled${event.reason ? `: ${event.reason}` : ''}.`);
}

/**
 * Answers a failure: with its HTTP status and `{"error":{…}}` while nothing was streamed yet, else
 * in-band (`data: {"error":{…}}` then `data: [DONE]`).
 */
function sendFailure(writer: EventStreamWriter, error: RestError): void {
  if (writer.started) {
    writer.sendError(error);
    writer.done();
  } else sendError(writer.response, error);
}

/**
 * Handles one REST request that runs a generation:
 *
 * 1. Reads the JSON body, validates it with `route.schema` and calls `route.start`; any error on the
 *    way is answered with its status (400 bad body, 404 unknown model or provider, 413 body too large, …).
 * 2. Cancels the generation (`client disconnected`) when the client leaves before the reply is over,
 *    which aborts the upstream request.
 * 3. Follows the generation's events from the start, handing them to `route.answer`'s handler until it
 *    says the reply is complete. `generation-failed` answers the generation's error (its code's status,
 *    `Retry-After` when known) and `generation-cancelled` 503 `GENERATION_CANCELLED`, with an HTTP status
 *    before anything was streamed, in-band after.
 * 4. Events that end without a terminal event (should not happen) are answered 500 `INTERNAL_ERROR`
 *    "The generation ended without a result." the same way: a client is never left hanging.
 * 5. Events that end with an error — `EVENTS_EXPIRED` (500: events the reply needs are gone from the
 *    log) or `EVENT_LOG_UNAVAILABLE` (503: Redis unreachable) — are answered with that error the same
 *    way: an HTTP status before anything was streamed, else in-band `data: {"error":{…}}` then
 *    `data: [DONE]` (which the OpenAI SDKs raise as an `APIError`). Starting while the log is
 *    unreachable is answered 503 `EVENT_LOG_UNAVAILABLE`.
 *
 * Nothing is written once the client has gone. Never throws for a request-level failure.
 */
export async function followGeneration<Body, Generation extends GenerationRecord, Event extends GenerationEvent>(
  dependencies: RestApiDependencies,
  request: IncomingMessage,
  response: ServerResponse,
  route: GenerationRoute<Body, Generation, Event>,
): Promise<void> {
  const generations = dependencies.generationsFor?.(request) ?? dependencies.generations;
  const client = new ClientConnection(response);
  let body: Body;
  let generation: Generation;
  try {
    body = parseBody(route.schema, await readJsonBody(request, dependencies.maxBodyBytes));
    generation = await route.start(generations, body);
  } catch (error) {
    sendError(response, toRestError(error));
    return;
  }
  client.onGone(() => {
    generations.cancel(generation.id, 'client disconnected').catch(() => {});
  });
  const writer = new EventStreamWriter(response);
  let events: AsyncIterableIterator<Event>;
  try {
    events = (await generations.subscribe(generation.id, 0, route.kind)) as AsyncIterableIterator<Event>;
  } catch (error) {
    if (!client.gone) sendFailure(writer, toRestError(error));
    return;
  }
  const answer = route.answer(body, generation, writer);
  try {
    for await (const event of events) {
      if (client.gone) return;
      if (event.type === 'generation-failed' || event.type === 'generation-cancelled') {
        sendFailure(writer, restErrorFromEndEvent(event as GenerationFailedEvent | GenerationCancelledEvent));
        return;
      }
      if (answer(event)) return;
    }
  } catch (error) {
    // The reply ends here, so the generation it started has no reader left.
    generations.cancel(generation.id, 'its reply failed').catch(() => {});
    if (!client.gone && !response.writableEnded) sendFailure(writer, toRestError(error));
    return;
  } finally {
    await events.return?.();
  }
  // The events ended without a terminal event (should not happen): never leave the client hanging.
  if (!response.writableEnded && !client.gone) sendFailure(writer, new RestError('INTERNAL_ERROR', 'The generation ended without a result.'));
}
