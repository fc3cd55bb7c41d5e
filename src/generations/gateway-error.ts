/**
 * Expected errors of the gateway: bad input, unknown ids. A `GatewayError` is a GraphQL error
 * with `extensions.code`, so Yoga's error masking lets it through unchanged (over HTTP, SSE and
 * graphql-ws alike) while it masks every other error as "Unexpected error." and logs it. The
 * REST layer maps the same codes to HTTP statuses.
 */
import { GraphQLError } from 'graphql';

/** Codes a client can act on. */
export type GatewayErrorCode =
  | 'BAD_USER_INPUT'
  /** The request needs something (tools, images, a JSON schema, reasoning) that none of its candidate models can do. REST answers 400. */
  | 'UNSUPPORTED_INPUT'
  | 'MODEL_NOT_FOUND'
  | 'PROVIDER_NOT_FOUND'
  /** No model was named and every provider that has one cannot serve now (a default model still downloading). REST answers 503. */
  | 'PROVIDER_UNAVAILABLE'
  | 'GENERATION_NOT_FOUND'
  /** The caller may not use any candidate of the request (a virtual key's allowed models or providers). REST answers 403. */
  | 'FORBIDDEN'
  /** The server is shutting down (graceful shutdown) and starts no new generations; REST answers 503. */
  | 'SERVICE_UNAVAILABLE'
  /**
   * A subscriber asked for events the event log no longer holds (past retention, trimmed or deleted
   * from the Redis Stream): they cannot be replayed, and the subscription ends rather than skip them.
   * REST answers 500 (before the stream starts) or an in-band error.
   */
  | 'EVENTS_EXPIRED'
  /**
   * The event log (Redis when scaled out) cannot be read or written: a generation whose event could
   * not be stored ends with this code, and subscribers and new requests that need it fail with it. REST answers 503.
   */
  | 'EVENT_LOG_UNAVAILABLE'
  /** The database (durable history, usage) cannot be read right now. REST answers 503. */
  | 'DATABASE_UNAVAILABLE'
  /** What was asked needs a database (usage reports) and the server runs without one (`DATABASE_URL=none`). REST answers 501. */
  | 'DATABASE_NOT_CONFIGURED';

/** An expected, client-facing error with a stable code (also in `extensions.code`). */
export class GatewayError extends GraphQLError {
  override readonly name = 'GatewayError';
  readonly code: GatewayErrorCode;

  constructor(code: GatewayErrorCode, message: string) {
    super(message, { extensions: { code } });
    this.code = code;
  }
}
