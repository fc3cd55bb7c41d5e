import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { acknowledgeQueuedSends, QUEUED_SEND_LIMIT_BYTES } from '../../src/transport/queued-sends.js';

/** A real ws server on port 0 whose sockets acknowledge queued sends, and a client connected to it. */
async function connectPair(): Promise<{ server: Server; serverSocket: WebSocket; client: WebSocket }> {
  const server = createServer();
  const webSocketServer = new WebSocketServer({ server });
  const accepted = new Promise<WebSocket>((resolve) =>
    webSocketServer.on('connection', (socket) => {
      acknowledgeQueuedSends(socket);
      resolve(socket);
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const [serverSocket] = await Promise.all([accepted, once(client, 'open')]);
  servers.push({ server, webSocketServer, client });
  return { server, serverSocket, client };
}

const servers: Array<{ server: Server; webSocketServer: WebSocketServer; client: WebSocket }> = [];
afterEach(async () => {
  for (const { server, webSocketServer, client } of servers.splice(0)) {
    client.terminate();
    webSocketServer.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('acknowledgeQueuedSends', () => {
  it('calls a send back at once while the socket holds little, and the client gets every message in order', async () => {
    const { serverSocket, client } = await connectPair();
    const received: string[] = [];
    const allReceived = new Promise<void>((resolve) =>
      client.on('message', (data) => {
        received.push(String(data));
        if (received.length === 3) resolve();
      }),
    );
    const acknowledged: string[] = [];
    for (const message of ['one', 'two', 'three']) serverSocket.send(message, () => acknowledged.push(message));
    // Acknowledged before any of it could have been written (writes complete in a later turn).
    expect(acknowledged).toEqual(['one', 'two', 'three']);
    await allReceived;
    expect(received).toEqual(['one', 'two', 'three']);
  });

  it('keeps back-pressure: with the limit unsent, a send waits until the client reads', async () => {
    const { serverSocket, client } = await connectPair();
    // The client stops reading: the kernel's buffers fill, then the server socket keeps the rest.
    const clientSocket = (client as unknown as { _socket: Socket })._socket;
    clientSocket.pause();
    const chunk = 'x'.repeat(1024 * 1024);
    let sent = 0;
    while (serverSocket.bufferedAmount < QUEUED_SEND_LIMIT_BYTES && sent < 256) {
      serverSocket.send(chunk);
      sent += 1;
      // Let the socket hand what it can to the kernel, so bufferedAmount counts only what is held back.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(serverSocket.bufferedAmount).toBeGreaterThanOrEqual(QUEUED_SEND_LIMIT_BYTES);

    let acknowledged = false;
    const written = new Promise<Error | null | undefined>((resolve) =>
      serverSocket.send('last', (error) => {
        acknowledged = true;
        resolve(error);
      }),
    );
    expect(acknowledged).toBe(false);

    let count = 0;
    const lastReceived = new Promise<string>((resolve) =>
      client.on('message', (data) => {
        count += 1;
        if (count === sent + 1) resolve(String(data));
      }),
    );
    clientSocket.resume();
    expect(await written).toBeFalsy(); // ws passes null or undefined for a completed write
    expect(await lastReceived).toBe('last');
  });

  it('leaves sends on a closed socket as ws has them (called back with an error)', async () => {
    const { serverSocket, client } = await connectPair();
    const closed = once(serverSocket, 'close');
    client.close();
    await closed;
    const error = await new Promise<Error | undefined>((resolve) => serverSocket.send('late', resolve));
    expect(error).toBeInstanceOf(Error);
  });
});
