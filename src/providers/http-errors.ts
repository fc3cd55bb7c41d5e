/**
 * HTTP helpers shared by the providers that talk to upstreams over `fetch`: how an HTTP status
 * becomes a {@link ProviderErrorCode}, how `Retry-After` and error bodies are read, how a `fetch`
 * failure is described, bounded body reads, and the {@link ProviderError}s of one provider with
 * its secret redacted (`docs/protocols.md` §2 for the error body shape
 * `{"error":{"message","type","code"}}`, §4 for Pollinations).
 */
import { z } from 'zod';
import { ProviderError, type ProviderErrorCode } from './provider.js';

/** How much of an error body is read, bytes. */
export const ERROR_BODY_LIMIT_BYTES = 64 * 1024;
/** How much of an upstream error message is kept in our error message, characters. */
export const ERROR_MESSAGE_LIMIT_CHARS = 1_000;

/**
 * An error body: OpenAI's `{"error":{"message"}}`, Ollama's and Gradio's `{"error":"…"}`,
 * FastAPI's `{"detail":"…"}` (or a structured `detail`, shown as JSON).
 */
const errorBodySchema = z.looseObject({
  error: z.union([z.string(), z.looseObject({ message: z.string().nullish(), code: z.unknown().optional() })]).nullish(),
  message: z.string().nullish(),
  detail: z.unknown().optional(),
});

/** Cuts a message to {@link ERROR_MESSAGE_LIMIT_CHARS} characters (ending with `…` when cut). */
export function shortenMessage(text: string): string {
  return text.length > ERROR_MESSAGE_LIMIT_CHARS ? `${text.slice(0, ERROR_MESSAGE_LIMIT_CHARS)}…` : text;
}

/**
 * The error code for a non-2xx HTTP status (`docs/protocols.md` §2):
 * 401 → `UNAUTHORIZED`, 403 → `FORBIDDEN`, 404 → `UPSTREAM_NOT_FOUND`, 408/504 → `UPSTREAM_TIMEOUT`,
 * 429 → `RATE_LIMITED`, other 5xx → `UPSTREAM_ERROR`, other 4xx → `UPSTREAM_BAD_REQUEST`,
 * anything else (1xx/3xx that reached us) → `UPSTREAM_BAD_RESPONSE`.
 */
export function codeForStatus(status: number): ProviderErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'UPSTREAM_NOT_FOUND';
  if (status === 408 || status === 504) return 'UPSTREAM_TIMEOUT';
  if (status === 429) return 'RATE_LIMITED';
  if (status >= 500) return 'UPSTREAM_ERROR';
  if (status >= 400) return 'UPSTREAM_BAD_REQUEST';
  return 'UPSTREAM_BAD_RESPONSE';
}

/**
 * Milliseconds to wait from `retry-after-ms` (sent by OpenAI) or `Retry-After`
 * (seconds, or an HTTP date); undefined when absent or unreadable.
 * @param now the current time, ms since the epoch (for HTTP dates).
 */
export function parseRetryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const milliseconds = headers.get('retry-after-ms');
  if (milliseconds !== null && milliseconds.trim() !== '') {
    const value = Number(milliseconds);
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
  }
  const retryAfter = headers.get('retry-after')?.trim();
  if (!retryAfter) return undefined;
  if (/^\d+(\.\d+)?$/.test(retryAfter)) return Math.round(Number(retryAfter) * 1000);
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The upstream's own message from an error body (`error.message`, `error` as a string, `message`
 * or `detail`), or the raw text trimmed; at most {@link ERROR_MESSAGE_LIMIT_CHARS} characters
 * (longer ones end with `…`). Never throws.
 */
export function extractErrorMessage(bodyText: string): string {
  const trimmed = bodyText.trim();
  let message: string | undefined;
  if (trimmed.startsWith('{')) {
    try {
      const parsed = errorBodySchema.safeParse(JSON.parse(trimmed));
      if (parsed.success) {
        const { error, message: topMessage, detail } = parsed.data;
        const detailText = typeof detail === 'string' ? detail : detail != null ? JSON.stringify(detail) : undefined;
        message = (typeof error === 'string' ? error : error?.message) ?? topMessage ?? detailText ?? undefined;
      }
    } catch {
      // not JSON after all: use the raw text
    }
  }
  return shortenMessage((message ?? trimmed).trim());
}

/**
 * The gateway's code for an upstream error body that names a condition of its own: OpenAI's
 * `error.code` `context_length_exceeded` (https://platform.openai.com/docs/guides/error-codes),
 * which OpenAI-compatible servers send with status 400, is `CONTEXT_LENGTH_EXCEEDED`. Undefined for
 * every other body. Never throws.
 */
export function codeForErrorBody(bodyText: string): ProviderErrorCode | undefined {
  const trimmed = bodyText.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(trimmed));
    const error = parsed.success ? parsed.data.error : undefined;
    return typeof error === 'object' && error?.code === 'context_length_exceeded' ? 'CONTEXT_LENGTH_EXCEEDED' : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A readable reason for a failure of `fetch` or of a body read. Undici wraps the real cause:
 * `TypeError('fetch failed', { cause: Error('connect ECONNREFUSED 127.0.0.1:1234') })`,
 * `TypeError('terminated', { cause: SocketError('other side closed') })`. Returns `''` for
 * `undefined`/`null`. Never throws.
 */
export function describeError(error: unknown): string {
  if (error instanceof AggregateError) {
    const inner = error.errors.map(describeError).filter(Boolean);
    const unique = [...new Set(inner)];
    if (unique.length > 0) return unique.join('; ');
  }
  if (error instanceof Error) {
    const own = error.message || (error as { code?: unknown }).code?.toString() || error.name;
    const cause = error.cause === undefined ? '' : describeError(error.cause);
    if (!cause) return own;
    if (own === 'fetch failed') return cause;
    return `${own} (${cause})`;
  }
  return error === undefined || error === null ? '' : String(error);
}

/**
 * Reads at most `limitBytes` bytes of a body as UTF-8 text, then lets go of the body.
 * A failing read ends the text where it broke (for error bodies: the status is what matters),
 * unless `options.rethrow` is set, when it throws what the read threw.
 */
export async function readBoundedText(
  body: ReadableStream<Uint8Array> | null,
  limitBytes: number,
  options: { rethrow?: boolean } = {},
): Promise<string> {
  if (!body) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let received = 0;
  try {
    while (received < limitBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      const slice = value.byteLength + received > limitBytes ? value.subarray(0, limitBytes - received) : value;
      received += slice.byteLength;
      text += decoder.decode(slice, { stream: true });
    }
    text += decoder.decode();
  } catch (error) {
    if (options.rethrow) throw error;
    // a broken error body still gives us the status
  } finally {
    reader.cancel().catch(() => {});
  }
  return text;
}

/** What a non-2xx reply said: the mapped code, the status, `Retry-After` in ms, and the upstream's message. */
export interface HttpFailure {
  code: ProviderErrorCode;
  statusCode: number;
  /** Milliseconds, when the reply carried `Retry-After` (or `retry-after-ms`). */
  retryAfterMs?: number;
  /** The upstream's message ({@link extractErrorMessage}), else the status text; may be `''`. */
  upstreamMessage: string;
}

/**
 * Reads a non-2xx reply: at most {@link ERROR_BODY_LIMIT_BYTES} bytes of its body (then the body
 * is released), its code ({@link codeForErrorBody}, else the status mapped by {@link codeForStatus}),
 * and its `Retry-After`. Never throws.
 */
export async function readHttpFailure(response: Response): Promise<HttpFailure> {
  const bodyText = await readBoundedText(response.body, ERROR_BODY_LIMIT_BYTES);
  const retryAfterMs = parseRetryAfterMs(response.headers);
  return {
    code: (response.status === 400 && codeForErrorBody(bodyText)) || codeForStatus(response.status),
    statusCode: response.status,
    ...(retryAfterMs !== undefined && { retryAfterMs }),
    upstreamMessage: extractErrorMessage(bodyText) || response.statusText,
  };
}

/** Thrown by {@link readBoundedBytes} when a body is larger than allowed. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
  /** The limit that was exceeded, bytes. */
  readonly limitBytes: number;

  constructor(limitBytes: number) {
    super(`body larger than ${limitBytes} bytes`);
    this.limitBytes = limitBytes;
  }
}

/**
 * Reads a whole body into one byte array, refusing more than `limitBytes` bytes.
 * @param onChunk called after every chunk read (e.g. to refresh an idle timer).
 * @throws BodyTooLargeError as soon as more than `limitBytes` bytes arrived (the body is cancelled);
 *   the read error itself when the body breaks or its request is aborted.
 */
export async function readBoundedBytes(
  body: ReadableStream<Uint8Array> | null,
  limitBytes: number,
  onChunk?: () => void,
): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      received += value.byteLength;
      if (received > limitBytes) throw new BodyTooLargeError(limitBytes);
      chunks.push(value);
      onChunk?.();
    }
  } finally {
    if (!finished) reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** Marks an abort a provider caused itself (a timeout, an early exit), so it can be told apart from the caller's. */
export class TimeoutAbort extends Error {
  override readonly name = 'TimeoutAbort';
}

/** What a {@link ProviderError} may carry besides its code and message. */
export interface ProviderErrorDetails {
  /** HTTP status of the upstream reply, when there was one. */
  statusCode?: number;
  /** Milliseconds the upstream asked to wait (`Retry-After`). */
  retryAfterMs?: number;
  cause?: unknown;
}

/** The errors of one provider, each message with the provider's secret redacted. */
export interface ProviderErrors {
  /** `text` with every occurrence of a secret replaced by `***` (unchanged when there is none). */
  redact(text: string): string;
  /** A {@link ProviderError} of this provider; its message goes through {@link redact}. */
  error(code: ProviderErrorCode, message: string, details?: ProviderErrorDetails): ProviderError;
  /**
   * The error for a non-2xx reply read by {@link readHttpFailure}: its code, `statusCode` and
   * `retryAfterMs`, message `upstream <provider> answered <status>[: <upstream message>]`.
   */
  httpFailure(failure: HttpFailure): ProviderError;
}

/**
 * The errors of the provider `provider` (its id, as errors name it).
 * @param secret an API key or token that must never appear in a message, or several (session
 *   cookies and a token, say; the longest are replaced first); none when undefined or `''`.
 */
export function createProviderErrors(provider: string, secret?: string | readonly string[]): ProviderErrors {
  const secrets = (typeof secret === 'string' ? [secret] : (secret ?? [])).filter((value) => value.length > 0).sort((a, b) => b.length - a.length);
  const redact = (text: string): string => secrets.reduce((redacted, value) => redacted.split(value).join('***'), text);
  const error = (code: ProviderErrorCode, message: string, details: ProviderErrorDetails = {}): ProviderError =>
    new ProviderError({ code, provider, message: redact(message), ...details });
  return {
    redact,
    error,
    httpFailure: (failure) =>
      error(failure.code, `upstream ${provider} answered ${failure.statusCode}${failure.upstreamMessage ? `: ${failure.upstreamMessage}` : ''}`, {
        statusCode: failure.statusCode,
        ...(failure.retryAfterMs !== undefined && { retryAfterMs: failure.retryAfterMs }),
      }),
  };
}

/**
 * The same parts; an error thrown on the way has every occurrence of `secret` in its message
 * replaced by `***` (for a key that came with one request, which upstreams may echo:
 * "Incorrect API key provided: …").
 */
export async function* redactingSecret<Part>(parts: AsyncGenerator<Part>, secret: string): AsyncGenerator<Part> {
  try {
    yield* parts;
  } catch (error) {
    if (error instanceof Error && error.message.includes(secret)) error.message = error.message.split(secret).join('***');
    throw error;
  }
}
