/**
 * Batches the writes a connection makes within one turn of the event loop into one system call.
 *
 * A streaming subscription sends several small messages in quick succession (a started event, a
 * delta, the completed event, `complete`); `ws` writes each frame with its own `writev`, and on a
 * virtual machine one such call costs tens of microseconds — at concurrency 50 the socket writes
 * were the largest single cost of the gateway (`npm run bench -- --profile`). Corking the socket at
 * the first write and uncorking it in `setImmediate` (after the current I/O callbacks and their
 * promise jobs have run) sends everything produced in that turn together. It is Node's documented
 * use of `writable.cork()`: https://nodejs.org/api/stream.html#writablecork. The delay is
 * bounded by one loop turn: no timer, so a lone message is not held back.
 */
import type { Writable } from 'node:stream';

/**
 * Makes every write on `socket` wait for the end of the current event-loop turn, then flushes
 * them in one system call. Call once per connection (a WebSocket's underlying socket, an SSE
 * response's socket); idempotent. Writes made after the socket ended or was destroyed fail as
 * they would without batching.
 * @param socket the connection's writable stream (`net.Socket`).
 */
export function batchWrites(socket: Writable): void {
  if (batched.has(socket)) return;
  batched.add(socket);
  const write = socket.write;
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (socket.writableCorked > 0) socket.uncork();
  };
  socket.write = function batchedWrite(this: Writable, ...args: Parameters<Writable['write']>): boolean {
    if (!scheduled && !socket.destroyed) {
      scheduled = true;
      socket.cork();
      setImmediate(flush);
    }
    return write.apply(this, args);
  } as Writable['write'];
}

const batched = new WeakSet<Writable>();
