/**
 * One Pollinations image (`docs/protocols.md` §4): `GET` of its URL answers the image bytes
 * themselves (`image/jpeg`), in some deployments after a redirect; the request's whole time,
 * sending to last byte, is bounded, and so is the image's size.
 */
import {
  BodyTooLargeError,
  ERROR_BODY_LIMIT_BYTES,
  TimeoutAbort,
  describeError,
  extractErrorMessage,
  readBoundedBytes,
  readBoundedText,
  readHttpFailure,
  type ProviderErrors,
} from '../http-errors.js';
import type { ProviderImage } from '../provider.js';

/** What every image request of the provider shares. */
export interface PollinationsImageSettings {
  /** The fetch implementation to use. */
  fetch: typeof fetch;
  /** The provider id, as messages name the upstream. */
  providerId: string;
  /** The provider's errors. */
  errors: ProviderErrors;
  /** Time one image request may take from sending it to its last byte, ms. */
  downloadTimeoutMs: number;
  /** Largest image accepted, bytes. */
  maxImageBytes: number;
}

/** `image/jpeg; charset=…` → `image/jpeg`; undefined when absent or empty. */
function mediaTypeOf(contentType: string | null): string | undefined {
  const mediaType = contentType?.split(';', 1)[0]?.trim().toLowerCase();
  return mediaType ? mediaType : undefined;
}

/**
 * Fetches one image (redirects followed) and returns `{ data, mimeType, url, width, height, seed }`:
 * `mimeType` from `Content-Type` (parameters dropped), `url` the request URL, `width`/`height` the
 * pixels asked for and `seed` the seed sent. Bytes are passed through unchecked (the caller sniffs
 * them) unless `Content-Type` names a non-image type.
 * @param groupSignal aborts when the caller aborts or a sibling request failed; its reason is
 *   thrown then (the generator decides what the caller sees).
 * @param traceHeaders trace context headers to send (`StreamOptions.traceHeaders`), with tracing on.
 * @throws ProviderError: for a non-2xx reply the code of its status with `statusCode` (and
 *   `retryAfterMs`); `UPSTREAM_TIMEOUT` after `downloadTimeoutMs` ms; `UPSTREAM_ERROR` when the host
 *   cannot be reached; `UPSTREAM_BAD_RESPONSE` for an empty body, a body larger than `maxImageBytes`
 *   bytes, or a 2xx reply whose `Content-Type` is neither `image/*` nor `application/octet-stream`;
 *   `UPSTREAM_CONNECTION_LOST` when the body breaks.
 */
export async function fetchPollinationsImage(
  settings: PollinationsImageSettings,
  url: string,
  size: { width: number; height: number },
  seed: number,
  groupSignal: AbortSignal,
  traceHeaders?: Readonly<Record<string, string>>,
): Promise<ProviderImage> {
  const { providerId, errors, downloadTimeoutMs, maxImageBytes } = settings;
  const timeoutController = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    timeoutController.abort(new TimeoutAbort(`no complete image within ${downloadTimeoutMs} ms`));
  }, downloadTimeoutMs);
  const timeoutError = (cause: unknown) =>
    errors.error('UPSTREAM_TIMEOUT', `upstream ${providerId} sent no complete image within ${downloadTimeoutMs} ms`, { cause });
  try {
    let response: Response;
    try {
      response = await settings.fetch(url, {
        method: 'GET',
        headers: { Accept: 'image/*', ...traceHeaders },
        redirect: 'follow',
        signal: AbortSignal.any([groupSignal, timeoutController.signal]),
      });
    } catch (error) {
      if (groupSignal.aborted) throw groupSignal.reason;
      if (timedOut) throw timeoutError(error);
      throw errors.error('UPSTREAM_ERROR', `cannot reach upstream ${providerId}: ${describeError(error) || 'network error'}`, {
        cause: error,
      });
    }

    if (!response.ok) {
      const failure = await readHttpFailure(response);
      if (groupSignal.aborted) throw groupSignal.reason;
      throw errors.httpFailure(failure);
    }

    const mimeType = mediaTypeOf(response.headers.get('content-type'));
    if (mimeType !== undefined && !mimeType.startsWith('image/') && mimeType !== 'application/octet-stream') {
      const message = extractErrorMessage(await readBoundedText(response.body, ERROR_BODY_LIMIT_BYTES));
      if (groupSignal.aborted) throw groupSignal.reason;
      throw errors.error(
        'UPSTREAM_BAD_RESPONSE',
        `upstream ${providerId} answered ${response.status} with ${mimeType} instead of an image${message ? `: ${message}` : ''}`,
        { statusCode: response.status },
      );
    }
    const declaredLength = Number(response.headers.get('content-length') ?? Number.NaN);
    if (Number.isFinite(declaredLength) && declaredLength > maxImageBytes) {
      response.body?.cancel().catch(() => {});
      throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an image larger than ${maxImageBytes} bytes`, {
        statusCode: response.status,
      });
    }

    let data: Uint8Array;
    try {
      data = await readBoundedBytes(response.body, maxImageBytes);
    } catch (error) {
      if (groupSignal.aborted) throw groupSignal.reason;
      if (error instanceof BodyTooLargeError) {
        throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an image larger than ${maxImageBytes} bytes`, {
          statusCode: response.status,
        });
      }
      if (timedOut) throw timeoutError(error);
      throw errors.error(
        'UPSTREAM_CONNECTION_LOST',
        `connection to upstream ${providerId} lost while reading an image: ${describeError(error) || 'network error'}`,
        { cause: error },
      );
    }
    if (data.byteLength === 0) {
      throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} answered ${response.status} with an empty body`, {
        statusCode: response.status,
      });
    }
    return { data, ...(mimeType !== undefined && { mimeType }), url, width: size.width, height: size.height, seed };
  } finally {
    clearTimeout(timer);
  }
}
