/**
 * Lets a WebSocket's `send` callback fire once the message is queued on the socket, instead of
 * once it has been written to the kernel — while the socket holds little unsent data.
 *
 * graphql-ws (`graphql-ws/use/ws`) awaits every `send` callback before it takes the next event of
 * a subscription. With the batching of `batched-writes.ts` a write completes only at the end of
 * the loop turn, so each message of a stream (a delta, the completed event, `complete`) went out
 * in a turn and a `writev` of its own: a system call per message where one does, and one loop turn
 * of delay per message. Acknowledged at once, every message a subscription has ready in one turn
 * leaves in one write.
 *
 * Back-pressure stays: when the socket already holds `limitBytes` or more unsent bytes (a client
 * that does not read), `send` waits for the write as before, so a slow subscriber stops pulling
 * events (they wait in the event log) instead of filling the gateway's memory. ws's
 * `bufferedAmount` is the measure: https://github.com/websockets/ws/blob/master/doc/ws.md#websocketbufferedamount.
 */
import { WebSocket } from 'ws';

/** Unsent bytes (ws `bufferedAmount`) from which a send waits for its write again: 64 KiB. */
export const QUEUED_SEND_LIMIT_BYTES = 64 * 1024;

type SendOptions = Parameters<WebSocket['send']>[1];
type SendCallback = (error?: Error) => void;

/**
 * Changes `socket.send(data, [options], callback)` as the module comment says. Call once per
 * server-side socket, before anything sends on it. A write that fails after its send was
 * acknowledged is not reported to that callback: the socket closes with it, which graphql-ws
 * handles (its subscriptions end).
 * @param limitBytes unsent bytes from which sends wait for their writes; default {@link QUEUED_SEND_LIMIT_BYTES}.
 */
export function acknowledgeQueuedSends(socket: WebSocket, limitBytes = QUEUED_SEND_LIMIT_BYTES): void {
  const send = socket.send as (data: unknown, options?: SendOptions | SendCallback, callback?: SendCallback) => void;
  socket.send = function queuedSend(this: WebSocket, data: unknown, optionsOrCallback?: SendOptions | SendCallback, maybeCallback?: SendCallback): void {
    const callback = typeof optionsOrCallback === 'function' ? optionsOrCallback : maybeCallback;
    if (callback === undefined || this.readyState !== WebSocket.OPEN || this.bufferedAmount >= limitBytes) {
      send.call(this, data, optionsOrCallback, maybeCallback);
      return;
    }
    const options = typeof optionsOrCallback === 'function' ? {} : (optionsOrCallback ?? {});
    send.call(this, data, options, ignoreWriteError);
    callback();
  } as WebSocket['send'];
}

/** A write error of an acknowledged send: the socket reports it itself (`error`, then `close`). */
function ignoreWriteError(): void {}
