/**
 * Malformed HTTP gets Node's own status line (400 Bad Request, 431 Request Header Fields Too Large)
 * from the real server, whose sockets batch their writes (src/batched-writes.ts): Node
 * writes that reply and destroys the socket at once, so a batched socket must flush it first.
 * Raw `node:net` sockets send the bytes exactly as written.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type StartedApp } from '../helpers/start-app.js';

let started: StartedApp;

beforeAll(async () => {
  started = await startApp();
});

afterAll(async () => {
  await started?.stop();
});

/**
 * Sends `text` on a fresh connection and resolves with everything received until the server closes
 * the connection (a reset after the reply counts as closed: Node destroys the socket with the rest
 * of the request unread).
 */
function exchange(text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(Number(new URL(started.url).port), '127.0.0.1', () => socket.write(text));
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', () => {}); // ECONNRESET or EPIPE once the server has destroyed the connection
    socket.on('close', () => resolve(received));
  });
}

/** The status line of a raw HTTP reply, or the empty string when nothing came back. */
function statusLineOf(reply: string): string {
  return reply.split('\r\n', 1)[0] ?? '';
}

describe('Node\'s replies to malformed HTTP', () => {
  it('answers 400 to two different Content-Length headers', async () => {
    const reply = await exchange(
      'POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!',
    );
    expect(statusLineOf(reply)).toBe('HTTP/1.1 400 Bad Request');
  });

  it('answers 400 to a chunked body with a bad chunk size', async () => {
    const reply = await exchange(
      'POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    );
    expect(statusLineOf(reply)).toBe('HTTP/1.1 400 Bad Request');
  });

  it('answers 431 to an 80 KB header', async () => {
    const reply = await exchange(`GET /healthz HTTP/1.1\r\nhost: gateway\r\nx-large: ${'a'.repeat(80 * 1024)}\r\n\r\n`);
    expect(statusLineOf(reply)).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  });

  it('still serves a well-formed request on the same server', async () => {
    const reply = await exchange('GET /healthz HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n');
    expect(statusLineOf(reply)).toBe('HTTP/1.1 200 OK');
  });
});
