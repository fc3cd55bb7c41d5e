/**
 * Refusals of the security layer (authentication, limits) as GraphQL errors with a stable
 * `extensions.code`, so Yoga's error masking lets them through unchanged, and with the HTTP status
 * (and `Retry-After`) Yoga should answer with when the error reaches an HTTP response.
 */
import { GraphQLError } from 'graphql';

/**
 * Codes of security refusals:
 * - `UNAUTHORIZED` (401): no API key was presented while keys are required, or the key is not valid
 *   (unknown, expired or revoked).
 * - `FORBIDDEN` (403): the caller is known but may not do this (an admin operation without the
 *   master key; a model or provider its virtual key does not allow).
 * - `API_KEY_NOT_FOUND` (404): an admin operation names a virtual key that does not exist.
 * - `RATE_LIMITED` (429): too many generation starts or tokens per minute, or too many running generations.
 * - `BUDGET_EXCEEDED` (429): the virtual key's token budget for its period is spent (or this request would exceed it).
 * - `REQUEST_TOO_LARGE` (413): the request body is larger than `MAX_REQUEST_BODY_BYTES`.
 * - `DATABASE_NOT_CONFIGURED` (501): virtual keys were asked for on a server without a database (`DATABASE_URL=none`).
 * - `DATABASE_UNAVAILABLE` (503): a virtual key or a key's token use could not be read from the database just now.
 * - `PERSISTED_QUERY_ONLY` (400): with `PERSISTED_OPERATIONS_FILE`, a GraphQL request sent an operation's text, or no id.
 * - `PERSISTED_QUERY_NOT_FOUND` (400): with `PERSISTED_OPERATIONS_FILE`, a GraphQL request named an id the list does not hold.
 */
export type SecurityErrorCode =
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'API_KEY_NOT_FOUND'
  | 'RATE_LIMITED'
  | 'BUDGET_EXCEEDED'
  | 'REQUEST_TOO_LARGE'
  | 'DATABASE_NOT_CONFIGURED'
  | 'DATABASE_UNAVAILABLE'
  | 'PERSISTED_QUERY_ONLY'
  | 'PERSISTED_QUERY_NOT_FOUND';

/** The HTTP status of each security code. */
export const SECURITY_ERROR_STATUS: Readonly<Record<SecurityErrorCode, number>> = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  API_KEY_NOT_FOUND: 404,
  RATE_LIMITED: 429,
  BUDGET_EXCEEDED: 429,
  REQUEST_TOO_LARGE: 413,
  DATABASE_NOT_CONFIGURED: 501,
  DATABASE_UNAVAILABLE: 503,
  PERSISTED_QUERY_ONLY: 400,
  PERSISTED_QUERY_NOT_FOUND: 400,
};

/**
 * A refusal with a stable code. `extensions` carry `code`, `retryAfterSeconds` (when known) and
 * Yoga's `http` extension (`status`, and a `Retry-After` header in whole seconds), which Yoga uses
 * for the HTTP response and leaves out of the body.
 */
export class SecurityError extends GraphQLError {
  override readonly name = 'SecurityError';
  readonly code: SecurityErrorCode;
  /** HTTP status for the code (see {@link SECURITY_ERROR_STATUS}). */
  readonly status: number;
  /** Whole seconds a client should wait before trying again, when known. */
  readonly retryAfterSeconds?: number;

  /**
   * @param options `retryAfterSeconds` (also sent as `Retry-After`); `extensions` added to the
   *   error's (e.g. `resetsAt` of a budget).
   */
  constructor(code: SecurityErrorCode, message: string, options: { retryAfterSeconds?: number; extensions?: Record<string, unknown> } = {}) {
    const status = SECURITY_ERROR_STATUS[code];
    const retryAfterSeconds = options.retryAfterSeconds;
    super(message, {
      extensions: {
        code,
        ...options.extensions,
        ...(retryAfterSeconds !== undefined && { retryAfterSeconds }),
        http: {
          status,
          ...(retryAfterSeconds !== undefined && { headers: { 'retry-after': String(retryAfterSeconds) } }),
        },
      },
    });
    this.code = code;
    this.status = status;
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }
}
