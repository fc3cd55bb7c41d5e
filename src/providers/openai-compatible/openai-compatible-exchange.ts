/**
 * One request to an OpenAI-compatible upstream (chat or images) with its timeouts: the caller's
 * abort combined with the provider's own (timeouts, early exit), a timeout on the response headers
 * (connect) and an idle timeout on body reads, and the failures of each step mapped to
 * {@link ProviderError}s (`docs/protocols.md` §2 for the statuses and the error body).
 */
import { Readable } from 'node:stream';
import { request as sendRequest } from 'undici';
import { AbortHandle } from '../abort-handle.js';
import { TimeoutAbort, describeError, readHttpFailure, type ProviderErrors } from '../http-errors.js';
import { ProviderError, type AbortSignalLike } from '../provider.js';

/** What every exchange of one upstream shares. */
export interface OpenAICompatibleExchangeSettings {
  /** The fetch implementation of {@link OpenAICompatibleExchange.send}. */
  fetch: typeof fetch;
  /** The provider id, as messages name the upstream. */
  providerId: string;
  /** Longest silence allowed while a body read is pending, ms. */
  idleTimeoutMs: number;
  /** The provider's errors (messages redacted). */
  errors: ProviderErrors;
}

/** What the upstream did not send in time, and the time it had. */
export interface ResponseHeadersDeadline {
  /** Time allowed for the response headers, ms. */
  timeoutMs: number;
  /** What the upstream did not send in time, for the message (`response headers`, `image`). */
  expected: string;
}

/**
 * One request in flight. Every method throws the caller's abort `reason` (never a ProviderError)
 * once the caller aborted; {@link close} must run in a `finally`.
 */
export interface OpenAICompatibleExchange {
  /** Rethrows the caller's abort reason when the caller aborted; otherwise returns. */
  rethrowIfCallerAborted(): void;

  /**
   * Sends the request (`init` without a signal) with `fetch` and waits for its response
   * headers, then arms the idle timer of {@link read}.
   * @returns the response, always 2xx.
   * @throws ProviderError `UPSTREAM_TIMEOUT` (`upstream <id> sent no <expected> within <timeoutMs> ms`),
   *   `UPSTREAM_ERROR` (`cannot reach upstream <id>: <why>`), or for a non-2xx reply the code of its
   *   status with `statusCode` and `retryAfterMs` (`upstream <id> answered <status>: <upstream message>`).
   */
  send(url: string, init: RequestInit, deadline: ResponseHeadersDeadline): Promise<Response>;

  /**
   * Sends a request with undici's `request` API (https://undici.nodejs.org/#/docs/api/Dispatcher?id=dispatcherrequestoptions-callback)
   * and waits for its response headers, then arms the idle timer of {@link read}. Unlike
   * {@link send}, the body is a Node stream, not a WHATWG one, which costs far less CPU per
   * streamed chunk: this is the chat hot path (figures: docs/performance.md). Redirects are not
   * followed (a 3xx is an error).
   * @returns the body of a 2xx reply, a Node readable of byte chunks; destroy it when not read to its end.
   * @throws as {@link send} does.
   */
  stream(
    url: string,
    init: { method: 'POST'; headers: Record<string, string>; body: string },
    deadline: ResponseHeadersDeadline,
  ): Promise<Readable>;

  /**
   * Runs one read of the body under the idle timer, which `readBody` restarts by calling `progress`.
   * @param lostWhere where the connection broke, for the message (`mid-stream`, `while reading the image reply`).
   * @throws ProviderError `UPSTREAM_TIMEOUT` when nothing came for `idleTimeoutMs` ms,
   *   `UPSTREAM_CONNECTION_LOST` (`connection to upstream <id> lost <lostWhere>: <why>`) when the body
   *   broke; a ProviderError `readBody` threw passes as it is.
   */
  read<Result>(readBody: (progress: () => void) => Promise<Result>, lostWhere: string): Promise<Result>;

  /** Records that the body was read to its end (the connection can be reused) and stops the idle timer. */
  finish(): void;

  /**
   * Whether the body was read to its end, or the reply was a non-2xx one (its error body read).
   * A method, not a getter: on Node 20 an object literal made per call with a getter outlives
   * young-generation collections, and here it would keep the whole exchange — closures, timers,
   * the request's abort — alive with it (docs/performance.md).
   */
  isFinished(): boolean;

  /** Stops the timers and, unless the body was read to its end, aborts the request (its connection closes) with `reason`. */
  close(reason: string): void;
}

/**
 * Starts one request of the chat stream or of image generation.
 * @param signal the caller's abort.
 * @throws `signal.reason` when the caller already aborted.
 */
export function startOpenAICompatibleExchange(settings: OpenAICompatibleExchangeSettings, signal: AbortSignalLike): OpenAICompatibleExchange {
  const { providerId, idleTimeoutMs, errors } = settings;
  signal.throwIfAborted();
  // One abort for the request: our own (timeouts, early exit) and, forwarded, the caller's (a
  // listener removed by `close`: cheaper per request than `AbortSignal.any`). undici's `request`
  // takes it as it is; `fetch` gets its `AbortSignal`, made only then (see abort-handle.ts).
  const requestAbort = new AbortHandle();
  const forwardAbort = (): void => requestAbort.abort(signal.reason);
  signal.addEventListener('abort', forwardAbort, { once: true });
  let timedOut: 'connect' | 'idle' | undefined;
  let waitingForRead = false;
  let idleTimer: NodeJS.Timeout | undefined;
  let bodyFinished = false;

  const rethrowIfCallerAborted = (): void => {
    if (signal.aborted) throw signal.reason;
  };

  /** Runs `start` (which sends the request) under the response-headers timeout, mapping its failures. */
  const awaitHeaders = async <Reply>(deadline: ResponseHeadersDeadline, start: () => Promise<Reply>): Promise<Reply> => {
    const connectTimer = setTimeout(() => {
      timedOut = 'connect';
      requestAbort.abort(new TimeoutAbort(`no response headers within ${deadline.timeoutMs} ms`));
    }, deadline.timeoutMs);
    try {
      return await start();
    } catch (error) {
      rethrowIfCallerAborted();
      if (timedOut === 'connect') {
        throw errors.error('UPSTREAM_TIMEOUT', `upstream ${providerId} sent no ${deadline.expected} within ${deadline.timeoutMs} ms`, {
          cause: error,
        });
      }
      throw errors.error('UPSTREAM_ERROR', `cannot reach upstream ${providerId}: ${describeError(error) || 'network error'}`, {
        cause: error,
      });
    } finally {
      clearTimeout(connectTimer);
    }
  };

  /**
   * From the response headers on, the idle timer watches every body read (it only fires while a
   * read is pending, so a slow consumer never trips it).
   */
  const armIdleTimer = (): void => {
    idleTimer = setTimeout(() => {
      if (!waitingForRead) return;
      timedOut = 'idle';
      requestAbort.abort(new TimeoutAbort(`no data for ${idleTimeoutMs} ms`));
    }, idleTimeoutMs);
  };

  /** Reads a non-2xx reply's error body and throws the error its status maps to. */
  const failWith = async (response: Response): Promise<never> => {
    waitingForRead = true;
    const failure = await readHttpFailure(response);
    waitingForRead = false;
    rethrowIfCallerAborted();
    bodyFinished = true;
    throw errors.httpFailure(failure);
  };

  return {
    rethrowIfCallerAborted,

    async send(url, init, deadline) {
      const response = await awaitHeaders(deadline, () => settings.fetch(url, { ...init, signal: requestAbort.toAbortSignal() }));
      armIdleTimer();
      if (!response.ok) await failWith(response);
      return response;
    },

    async stream(url, init, deadline) {
      // Our timers (connect, idle) decide; undici's own 300 s header and body timeouts are off, so a
      // longer UPSTREAM_IDLE_TIMEOUT_MS is not cut short.
      const reply = await awaitHeaders(deadline, () => sendRequest(url, { ...init, signal: requestAbort, headersTimeout: 0, bodyTimeout: 0 }));
      armIdleTimer();
      if (reply.statusCode < 200 || reply.statusCode > 299) {
        // Rare: the error reply goes through the same reader as `send`'s.
        const nullBody = reply.statusCode === 204 || reply.statusCode === 205 || reply.statusCode === 304;
        if (nullBody) reply.body.destroy();
        const headers = new Headers();
        for (const [name, value] of Object.entries(reply.headers)) {
          for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, item);
        }
        const body = nullBody ? null : (Readable.toWeb(reply.body) as ReadableStream<Uint8Array>);
        await failWith(new Response(body, { status: reply.statusCode, headers }));
      }
      return reply.body;
    },

    async read(readBody, lostWhere) {
      waitingForRead = true;
      idleTimer?.refresh();
      try {
        return await readBody(() => idleTimer?.refresh());
      } catch (error) {
        rethrowIfCallerAborted();
        if (error instanceof ProviderError) throw error;
        if (timedOut === 'idle') {
          throw errors.error('UPSTREAM_TIMEOUT', `upstream ${providerId} sent nothing for ${idleTimeoutMs} ms (idle timeout)`, {
            cause: error,
          });
        }
        throw errors.error(
          'UPSTREAM_CONNECTION_LOST',
          `connection to upstream ${providerId} lost ${lostWhere}: ${describeError(error) || 'network error'}`,
          { cause: error },
        );
      } finally {
        waitingForRead = false;
      }
    },

    finish() {
      bodyFinished = true;
      clearTimeout(idleTimer);
    },

    isFinished() {
      return bodyFinished;
    },

    close(reason) {
      clearTimeout(idleTimer);
      signal.removeEventListener('abort', forwardAbort);
      if (!bodyFinished) requestAbort.abort(new TimeoutAbort(reason));
    },
  };
}
