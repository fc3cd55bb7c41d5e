/**
 * Bounds what a graphql-ws connection may cost before the server has acknowledged it, that is
 * before `onConnect` accepted its API key and graphql-ws sent `connection_ack`
 * (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md#connectionack).
 *
 * Bytes: until the acknowledgement the client may send {@link UNACKNOWLEDGED_SOCKET_LIMIT_BYTES}
 * — room for `connection_init` and its `connectionParams` (a key, a token). They are counted on
 * the TCP socket as they arrive, so one large frame is cut off while it streams in, before `ws`
 * has buffered it (`ws` holds a frame whole up to its `maxPayload` before it hands it on). Over
 * the limit the socket is closed with 1009 (Message Too Big).
 *
 * Time: graphql-ws closes a socket that has not sent `connection_init` within its
 * `connectionInitWaitTimeout` (default 3 s) with 4408, and the app's `onConnect` answers at once.
 * A socket the server closes before the acknowledgement (that 4408, a refused key's 4403, the
 * 1009 above, an invalid message) is dropped as soon as its close frame is written: `ws` would
 * otherwise wait up to its `closeTimeout` (30 s) for the client's close frame, reading on. RFC 6455
 * lets an endpoint close the connection "via any means available when necessary, such as when
 * under attack" (https://www.rfc-editor.org/rfc/rfc6455#section-7.1.1). So an unauthenticated
 * socket lives about 3 s at most and sends at most the limit.
 *
 * After the acknowledgement nothing of this applies: the socket's frames are bounded by the
 * server's `maxPayload` alone.
 */
import type { IncomingMessage } from 'node:http';
import { MessageType, parseMessage } from 'graphql-ws';
import type { WebSocket } from 'ws';

/** Bytes a socket may send before its connection is acknowledged, frame headers included: 64 KiB. */
export const UNACKNOWLEDGED_SOCKET_LIMIT_BYTES = 64 * 1024;

/** WebSocket close code "Message Too Big": https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1. */
export const MESSAGE_TOO_BIG_CLOSE_CODE = 1009;

/**
 * Applies the limits of the module comment to one server-side socket. Call in the
 * `WebSocketServer`'s `connection` listener, before graphql-ws's `useServer` has seen the socket.
 * @param webSocket the accepted socket.
 * @param request its upgrade request; `request.socket` is the TCP connection whose bytes are counted.
 * @param limitBytes bytes allowed before the acknowledgement; default {@link UNACKNOWLEDGED_SOCKET_LIMIT_BYTES}.
 */
export function limitUnacknowledgedSocket(webSocket: WebSocket, request: IncomingMessage, limitBytes = UNACKNOWLEDGED_SOCKET_LIMIT_BYTES): void {
  const connection = request.socket;
  const send = webSocket.send;
  const close = webSocket.close;
  let acknowledged = false;
  let received = 0;

  const countReceived = (chunk: Buffer): void => {
    received += chunk.byteLength;
    if (received <= limitBytes) return;
    connection.removeListener('data', countReceived);
    webSocket.close(MESSAGE_TOO_BIG_CLOSE_CODE, `Message too big: more than ${limitBytes} bytes before connection_ack`);
  };

  const sendUntilAcknowledged = function (this: WebSocket, ...args: Parameters<WebSocket['send']>): void {
    if (!acknowledged && isConnectionAck(args[0])) {
      acknowledged = true;
      connection.removeListener('data', countReceived);
      // Put back what this replaced, unless something has wrapped it since (the flag then makes these pass-throughs).
      if (webSocket.send === sendUntilAcknowledged) webSocket.send = send;
      if (webSocket.close === closeUntilAcknowledged) webSocket.close = close;
    }
    send.apply(this, args);
  } as WebSocket['send'];

  const closeUntilAcknowledged = function (this: WebSocket, ...args: Parameters<WebSocket['close']>): void {
    close.apply(this, args);
    if (acknowledged) return;
    connection.removeListener('data', countReceived);
    // `end` hands the close frame to the system (a batched socket would hold it a little); `destroy` stops reading.
    connection.end();
    connection.destroy();
  } as WebSocket['close'];

  connection.on('data', countReceived);
  webSocket.send = sendUntilAcknowledged;
  webSocket.close = closeUntilAcknowledged;
}

/** Whether an outgoing message is graphql-ws's `connection_ack` (the others before it are `pong`s). */
function isConnectionAck(data: unknown): boolean {
  if (typeof data !== 'string') return false;
  try {
    return parseMessage(data).type === MessageType.ConnectionAck;
  } catch {
    return false;
  }
}
