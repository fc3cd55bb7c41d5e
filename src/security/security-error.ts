/**
 * Refusals of the security layer (authentication, limits) as GraphQL errors with a stable
 * `extensions.code`, so Yoga's error masking lets them through unchanged, and with the HTTP status
 * (and `Retry-After`) Yoga should answer with when the error reaches an HTTP response.
 */
import { GraphQLError } from 'graphql';

/**
 * Codes of security refusals:
 * - `UNAUTHORIZED` (401): no API key was presented while keys are configured.
 * - `FORBIDDEN` (403): the presented API key is not one of the configured keys.
 * - `RATE_LIMITED` (429): too many generation starts per minute, or too many running generations.
 * - `REQUEST_TOO_LARGE` (413): the request body is larger than `MAX_REQUEST_BODY_BYTES`.
 */
export type SecurityErrorCode = 'UNAUTHORIZED' | 'FORBIDDEN' | 'RATE_LIMITED' | 'REQUEST_TOO_LARGE';

/** The HTTP status of each security code. */
export const SECURITY_ERROR_STATUS: Readonly<Record<SecurityErrorCode, number>> = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  REQUEST_TOO_LARGE: 413,
};

/**
 * A refusal with a stable code. `extensions` carry `code`, `retryAfterSeconds` (when known) and
 * Yoga's `http` extension (`status`, and a `Retry-After` header in whole seconds), which Yoga uses
 * for the HTTP response and leaves out of the body.
 */
export class SecurityError extends GraphQLError {
  override readonly name = 'SecurityError';
  readonly code: SecurityErrorCode;
  /** HTTP status for the code (401, 403, 413, 429). */
  readonly status: number;
  /** Whole seconds a client should wait before trying again, when known. */
  readonly retryAfterSeconds?: number;

  constructor(code: SecurityErrorCode, message: string, options: { retryAfterSeconds?: number } = {}) {
    const status = SECURITY_ERROR_STATUS[code];
    const retryAfterSeconds = options.retryAfterSeconds;
    super(message, {
      extensions: {
        code,
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
