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
 *
 * Destroying a batched socket first sends what it holds. Node answers malformed HTTP (two different
 * `Content-Length` headers, a bad chunk, headers over `maxHeaderSize`) with a status line written
 * just before it destroys the socket — `this.write(response); this.destroy(e)` in `socketOnError`,
 * https://github.com/nodejs/node/blob/v20.x/lib/_http_server.js — and a corked socket would drop that
 * 400 or 431: the client would see a reset instead.
 */
import type { Writable } from 'node:stream';

/**
 * Makes every write on `socket` wait for the end of the current event-loop turn, then flushes
 * them in one system call. Call once per connection (a WebSocket's underlying socket, an SSE
 * response's socket); idempotent. Writes made after the socket ended or was destroyed fail as
 * they would without batching; `destroy()` hands the batched writes to the system first, as they
 * would have been without batching (see the module comment).
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
  const destroy = socket.destroy;
  socket.destroy = function flushThenDestroy(this: Writable, error?: Error): Writable {
    // Every cork level: Node's own (a response's chunked writes) would lose their writes here too.
    while (!socket.destroyed && socket.writableCorked > 0) socket.uncork();
    return destroy.call(this, error);
  } as Writable['destroy'];
}

const batched = new WeakSet<Writable>();
