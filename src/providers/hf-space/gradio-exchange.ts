/**
 * The requests of one generation on a Gradio Space (`docs/protocols.md` §3) with their timeouts:
 * each request waits for its response headers under the connect timeout and is aborted with the
 * whole generation (the run); failures are mapped to {@link ProviderError}s naming the space.
 */
import {
  codeForStatus,
  describeError,
  ERROR_BODY_LIMIT_BYTES,
  extractErrorMessage,
  parseRetryAfterMs,
  readBoundedText,
  type ProviderErrors,
} from '../http-errors.js';
import type { ProviderError } from '../provider.js';

/** Marks an abort the provider caused itself (timeouts, a failed sibling call, the consumer leaving). */
export class InternalAbort extends Error {
  override readonly name = 'InternalAbort';
}

/** What the requests of one run share. */
export interface GradioExchangeSettings {
  /** The fetch implementation to use. */
  fetch: typeof fetch;
  /** The space's model id, as messages name the space. */
  spaceModel: string;
  /** Time allowed for the response headers of each request, ms. */
  connectTimeoutMs: number;
  /** The provider's errors (messages redacted). */
  errors: ProviderErrors;
  /** The run's signal: aborts every request of the run. */
  runSignal: AbortSignal;
  /** What a request throws once `runSignal` aborted: the caller's reason, the run's timeout error, or the run's reason. */
  abortOutcome(): unknown;
  /** Trace context headers every request of the run carries (`StreamOptions.traceHeaders`). */
  traceHeaders?: Readonly<Record<string, string>>;
}

/** The requests of one run. */
export interface GradioExchange {
  /** Throws the run's abort outcome when the run was aborted; otherwise returns. */
  rethrowIfRunAborted(): void;
  /**
   * One request with the connect timeout on its response headers; the run's signal aborts it too.
   * The returned `abort` closes the request (and its connection) when the body is left unread.
   * @throws the run's abort outcome, or ProviderError `UPSTREAM_TIMEOUT`
   *   (`space <model> sent no response headers within <connectTimeoutMs> ms (<method> <url>)`) /
   *   `UPSTREAM_ERROR` (`cannot reach space <model>: <method> <url> failed: <why>`).
   */
  send(url: string, init: RequestInit): Promise<{ response: Response; abort: () => void }>;
  /**
   * Reads a small body (at most {@link ERROR_BODY_LIMIT_BYTES} bytes) as text.
   * @param what what is read, for the message (`the event id`).
   * @throws the run's abort outcome, or ProviderError `UPSTREAM_CONNECTION_LOST` when the read broke.
   */
  readSmallBody(response: Response, what: string): Promise<string>;
  /**
   * The ProviderError for a non-2xx answer to `what` (`POST <url>`): the code of its status,
   * `statusCode`, `retryAfterMs`, and the space's own message. Throws the run's abort outcome when
   * the run aborted while the error body was read.
   */
  statusError(response: Response, what: string): Promise<ProviderError>;
}

/** The requests of one run; see {@link GradioExchange}. */
export function createGradioExchange(settings: GradioExchangeSettings): GradioExchange {
  const { spaceModel, connectTimeoutMs, errors, runSignal, abortOutcome } = settings;
  return {
    rethrowIfRunAborted() {
      if (runSignal.aborted) throw abortOutcome();
    },

    async send(url, init) {
      const requestController = new AbortController();
      let connectTimedOut = false;
      const connectTimer = setTimeout(() => {
        connectTimedOut = true;
        requestController.abort(new InternalAbort(`no response headers within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      try {
        const headers = settings.traceHeaders ? { ...(init.headers as Record<string, string> | undefined), ...settings.traceHeaders } : init.headers;
        const response = await settings.fetch(url, { ...init, ...(headers && { headers }), signal: AbortSignal.any([runSignal, requestController.signal]) });
        return { response, abort: () => requestController.abort(new InternalAbort('request closed by the gateway')) };
      } catch (error) {
        if (runSignal.aborted) throw abortOutcome();
        if (connectTimedOut) {
          throw errors.error('UPSTREAM_TIMEOUT', `space ${spaceModel} sent no response headers within ${connectTimeoutMs} ms (${init.method} ${url})`, {
            cause: error,
          });
        }
        throw errors.error('UPSTREAM_ERROR', `cannot reach space ${spaceModel}: ${init.method} ${url} failed: ${describeError(error) || 'network error'}`, {
          cause: error,
        });
      } finally {
        clearTimeout(connectTimer);
      }
    },

    async readSmallBody(response, what) {
      try {
        return await readBoundedText(response.body, ERROR_BODY_LIMIT_BYTES, { rethrow: true });
      } catch (error) {
        if (runSignal.aborted) throw abortOutcome();
        throw errors.error('UPSTREAM_CONNECTION_LOST', `connection to space ${spaceModel} lost while reading ${what}: ${describeError(error)}`, {
          cause: error,
        });
      }
    },

    async statusError(response, what) {
      let bodyText = '';
      try {
        bodyText = await readBoundedText(response.body, ERROR_BODY_LIMIT_BYTES, { rethrow: true });
      } catch {
        if (runSignal.aborted) throw abortOutcome();
        // a broken error body still gives us the status
      }
      const status = response.status;
      const message = extractErrorMessage(bodyText) || response.statusText;
      const retryAfterMs = parseRetryAfterMs(response.headers);
      return errors.error(codeForStatus(status), `space ${spaceModel} answered ${status} to ${what}${message ? `: ${message}` : ''}`, {
        statusCode: status,
        ...(retryAfterMs !== undefined && { retryAfterMs }),
      });
    },
  };
}
