/**
 * The chat WebSocket of one Copilot turn (`docs/protocols.md` §5 steps 2–3), opened with the `ws`
 * client: the handshake with the session's origin, cookies and token (a refused handshake read as
 * an HTTP failure), the `send` frame out, and the answer's frames in, one at a time, each awaited
 * with a timeout. Bounded: frames of at most `maxFrameBytes` bytes (`ws`'s `maxPayload`), and at most
 * {@link QUEUED_FRAMES_HIGH_WATER} frames held before the socket is paused until they are read.
 */
import { Readable } from 'node:stream';
import WebSocket from 'ws';
import { describeError, readHttpFailure, type ProviderErrors } from '../http-errors.js';
import type { CopilotSendFrame } from './copilot-api.js';

/** Frames held unread before reading from the network pauses. */
export const QUEUED_FRAMES_HIGH_WATER = 64;
/** Frames held unread below which reading resumes. */
const QUEUED_FRAMES_LOW_WATER = 16;

/** What {@link CopilotChatSocket.receive} got. */
export type CopilotSocketEvent =
  | { type: 'frame'; text: string }
  | { type: 'binary-frame' }
  /** The socket closed: `code` as the close frame said (1006 when it broke), `error` what `ws` reported before, if anything. */
  | { type: 'closed'; code: number; error?: Error }
  | { type: 'timeout' };

/** One open chat socket. */
export interface CopilotChatSocket {
  /**
   * Sends `frame` as one JSON text frame.
   * @throws ProviderError `UPSTREAM_CONNECTION_LOST` when the socket cannot take it.
   */
  send(frame: CopilotSendFrame): Promise<void>;
  /** The next frame, or the close, or `timeout` when neither came within `timeoutMs` ms. Never throws. */
  receive(timeoutMs: number): Promise<CopilotSocketEvent>;
  /** Closes the socket: `completed` with a normal close (1000), otherwise at once (the TCP connection is dropped). */
  close(completed: boolean): void;
}

/** What every socket of one provider shares. */
export interface CopilotSocketSettings {
  /** The provider id, as messages name the upstream. */
  providerId: string;
  /** Time the opening handshake may take, ms. */
  connectTimeoutMs: number;
  /** Largest frame accepted, bytes. */
  maxFrameBytes: number;
  /** What to configure when the session is refused, for messages. */
  sessionAdvice: string;
}

/**
 * Opens the chat socket at `url` (it holds the token: never in a message) with `headers` (`Origin`
 * is sent as the handshake's origin). From then on the caller's abort closes the socket at once; a
 * pending {@link CopilotChatSocket.receive} then answers `closed`.
 * @throws ProviderError for a refused handshake: `UNAUTHORIZED` (401) / `FORBIDDEN` (403) naming what
 *   to configure, else the code of the status (`readHttpFailure`); `UPSTREAM_TIMEOUT` when the
 *   handshake takes longer than `connectTimeoutMs`; `UPSTREAM_ERROR` when the site cannot be reached.
 *   The caller's abort: its reason.
 */
export async function openCopilotChatSocket(
  settings: CopilotSocketSettings,
  url: string,
  headers: Record<string, string>,
  errors: ProviderErrors,
  signal: AbortSignal,
): Promise<CopilotChatSocket> {
  const { providerId } = settings;
  signal.throwIfAborted();
  const { Origin: origin, ...otherHeaders } = headers;
  const socket = new WebSocket(url, {
    headers: otherHeaders,
    ...(origin !== undefined && { origin }),
    handshakeTimeout: settings.connectTimeoutMs,
    maxPayload: settings.maxFrameBytes,
  });
  const queue: CopilotSocketEvent[] = [];
  let closed: CopilotSocketEvent | undefined;
  let lastError: Error | undefined;
  let wake: (() => void) | undefined;
  /** Settles the opening handshake: called once it succeeded, failed or was aborted. */
  let handshakeDone: ((error?: unknown) => void) | undefined;
  // An 'error' event without a listener would throw; every error is kept for the close that follows.
  socket.on('error', (error) => {
    lastError = error;
  });
  // Listening from the start, so no frame that follows the handshake at once is missed.
  socket.on('message', (data, isBinary) => {
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8');
    queue.push(isBinary ? { type: 'binary-frame' } : { type: 'frame', text });
    if (queue.length >= QUEUED_FRAMES_HIGH_WATER) socket.pause();
    wake?.();
  });
  socket.on('close', (code) => {
    closed = { type: 'closed', code, ...(lastError && { error: lastError }) };
    if (!handshakeDone) {
      wake?.();
      return;
    }
    if (signal.aborted) handshakeDone(signal.reason);
    else if (lastError?.message.includes('handshake has timed out')) {
      handshakeDone(errors.error('UPSTREAM_TIMEOUT', `upstream ${providerId} did not open the chat socket within ${settings.connectTimeoutMs} ms`, { cause: lastError }));
    } else handshakeDone(errors.error('UPSTREAM_ERROR', `cannot reach upstream ${providerId}: ${describeError(lastError) || 'the chat socket closed'}`, { cause: lastError }));
  });
  const onAbort = (): void => socket.terminate();
  signal.addEventListener('abort', onAbort, { once: true });

  try {
    await new Promise<void>((resolve, reject) => {
      handshakeDone = (error) => {
        handshakeDone = undefined;
        if (error === undefined) resolve();
        else reject(error);
      };
      socket.once('open', () => handshakeDone?.());
      socket.once('unexpected-response', (request, response) => {
        const body = Readable.toWeb(response) as ReadableStream<Uint8Array>;
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value]) responseHeaders.append(name, item);
        }
        void readHttpFailure(new Response(body, { status: response.statusCode ?? 502, headers: responseHeaders })).then((failure) => {
          request.destroy();
          if (signal.aborted) {
            handshakeDone?.(signal.reason);
          } else if (failure.statusCode === 401 || failure.statusCode === 403) {
            const said = failure.upstreamMessage ? ` (${failure.upstreamMessage})` : '';
            handshakeDone?.(
              errors.error(failure.code, `upstream ${providerId} refused the chat socket with ${failure.statusCode}${said}; ${settings.sessionAdvice}`, {
                statusCode: failure.statusCode,
              }),
            );
          } else {
            handshakeDone?.(errors.httpFailure(failure));
          }
        });
      });
    });
  } catch (error) {
    signal.removeEventListener('abort', onAbort);
    socket.terminate();
    throw error;
  }

  const next = (): CopilotSocketEvent | undefined => {
    const event = queue.shift();
    if (event) {
      if (socket.isPaused && queue.length <= QUEUED_FRAMES_LOW_WATER) socket.resume();
      return event;
    }
    return closed;
  };

  return {
    send(frame) {
      return new Promise((resolve, reject) => {
        socket.send(JSON.stringify(frame), (error) => {
          if (!error) resolve();
          else reject(errors.error('UPSTREAM_CONNECTION_LOST', `connection to upstream ${providerId} lost while sending: ${describeError(error)}`, { cause: error }));
        });
      });
    },

    receive(timeoutMs) {
      const ready = next();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          wake = undefined;
          resolve({ type: 'timeout' });
        }, timeoutMs);
        wake = () => {
          const event = next();
          if (!event) return;
          clearTimeout(timer);
          wake = undefined;
          resolve(event);
        };
      });
    },

    close(completed) {
      signal.removeEventListener('abort', onAbort);
      if (completed && socket.readyState === WebSocket.OPEN) socket.close(1000);
      else socket.terminate();
    },
  };
}
