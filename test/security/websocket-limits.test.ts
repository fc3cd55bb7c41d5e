/**
 * What a graphql-ws socket may send, end to end against the real server: frames over
 * MAX_REQUEST_BODY_BYTES close with 1009; before the connection is acknowledged (the API key
 * accepted) a socket may send 64 KiB at most, counted as the bytes arrive, and a socket refused
 * before then is dropped at once. Raw TCP sockets speak WebSocket by hand where a test needs to
 * send a frame in pieces or to see when the server ends the TCP connection.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { UNACKNOWLEDGED_SOCKET_LIMIT_BYTES } from '../../src/transport/limit-unacknowledged-socket.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const KEY = 'websocket-limits-key-0123456789';
const BODY_LIMIT_BYTES = 256 * 1024;
/** Over the limit before acknowledgement, under the body limit. */
const LARGE_INIT_BYTES = 128 * 1024;
const CHAT_SUBSCRIPTION = `subscription { chatCompletion(input: { model: "fake-model", messages: [{ role: USER, content: "hi" }] }) {
  __typename ... on ChatCompletionCompleted { text } } }`;

let upstream: FakeOpenAIUpstream;
let started: StartedApp;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream({ tokenCount: 3 });
  started = await startApp({
    API_KEYS: KEY,
    MAX_REQUEST_BODY_BYTES: String(BODY_LIMIT_BYTES),
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'] }]),
  });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

/** A graphql-ws message of `type` whose payload is padded so that its JSON text is `bytes` long. */
function paddedMessage(type: string, bytes: number, payload: Record<string, unknown> = {}): string {
  const bare = JSON.stringify({ type, payload: { ...payload, padding: '' } });
  return JSON.stringify({ type, payload: { ...payload, padding: 'x'.repeat(bytes - bare.length) } });
}

/** The first thing a `ws` client sees from the server: a message (parsed) or the close (code and reason). */
function firstEvent(socket: WebSocket): Promise<{ message: unknown } | { closeCode: number; closeReason: string }> {
  return new Promise((resolve, reject) => {
    const onMessage = (data: WebSocket.RawData) => {
      socket.off('close', onClose);
      resolve({ message: JSON.parse(String(data)) });
    };
    const onClose = (code: number, reason: Buffer) => {
      socket.off('message', onMessage);
      resolve({ closeCode: code, closeReason: reason.toString() });
    };
    socket.once('message', onMessage);
    socket.once('close', onClose);
    socket.once('error', reject);
  });
}

/** A `ws` client on the graphql-transport-ws subprotocol, open. */
async function openWebSocket(): Promise<WebSocket> {
  const socket = new WebSocket(started.webSocketUrl, 'graphql-transport-ws');
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** A WebSocket spoken by hand on a TCP connection: frames written as raw bytes, the server's close frame and the end of the connection observed. */
interface RawWebSocket {
  connection: Socket;
  /** The code of the server's close frame; undefined when the connection ended without one. */
  closeCode: Promise<number | undefined>;
  /** Settles when the TCP connection is closed (by the server, a reset included). */
  closed: Promise<void>;
}

/** Opens a {@link RawWebSocket} on `/graphql` with the graphql-transport-ws subprotocol. */
function openRawWebSocket(): Promise<RawWebSocket> {
  return new Promise((resolveOpen, rejectOpen) => {
    const connection = connect(Number(new URL(started.url).port), '127.0.0.1');
    let resolveCloseCode: (code: number | undefined) => void = () => {};
    const closeCode = new Promise<number | undefined>((resolve) => (resolveCloseCode = resolve));
    const closed = new Promise<void>((resolve) =>
      connection.once('close', () => {
        resolveCloseCode(undefined);
        resolve();
      }),
    );
    connection.on('error', () => {}); // a reset once the server has dropped the connection
    let received = Buffer.alloc(0);
    let open = false;
    connection.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!open) {
        const end = received.indexOf('\r\n\r\n');
        if (end === -1) return;
        const statusLine = received.subarray(0, received.indexOf('\r\n')).toString('latin1');
        if (!statusLine.startsWith('HTTP/1.1 101 ')) return rejectOpen(new Error(`no upgrade: ${statusLine}`));
        open = true;
        received = received.subarray(end + 4);
        resolveOpen({ connection, closeCode, closed });
      }
      // Server frames are unmasked; until a close frame only short ones (pongs) can come.
      while (received.length >= 2 && (received[1]! & 0x7f) < 126 && received.length >= 2 + (received[1]! & 0x7f)) {
        const length = received[1]! & 0x7f;
        if ((received[0]! & 0x0f) === 0x8) resolveCloseCode(length >= 2 ? received.readUInt16BE(2) : undefined);
        received = received.subarray(2 + length);
      }
    });
    connection.once('connect', () =>
      connection.write(
        `GET /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n` +
          `sec-websocket-key: ${randomBytes(16).toString('base64')}\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: graphql-transport-ws\r\n\r\n`,
      ),
    );
  });
}

/**
 * The header of a client text frame carrying `length` payload bytes, masked with the key 0 0 0 0
 * (RFC 6455 §5.2: the payload is then sent as it is).
 */
function clientFrameHeader(length: number): Buffer {
  if (length < 126) return Buffer.from([0x81, 0x80 | length, 0, 0, 0, 0]);
  const header = Buffer.alloc(14);
  header[0] = 0x81;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  return header;
}

describe('frames over MAX_REQUEST_BODY_BYTES', () => {
  it('close an authenticated socket with 1009', async () => {
    const socket = await openWebSocket();
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${KEY}` } }));
    expect(await firstEvent(socket)).toEqual({ message: { type: 'connection_ack' } });
    socket.send(paddedMessage('ping', BODY_LIMIT_BYTES + 1));
    expect(await firstEvent(socket)).toMatchObject({ closeCode: 1009 });
  });
});

describe('before the connection is acknowledged', () => {
  it('closes a keyless socket whose connection_init is over the limit with 1009, not 4403', async () => {
    const socket = await openWebSocket();
    socket.send(paddedMessage('connection_init', LARGE_INIT_BYTES));
    expect(await firstEvent(socket)).toEqual({ closeCode: 1009, closeReason: `Message too big: more than ${UNACKNOWLEDGED_SOCKET_LIMIT_BYTES} bytes before connection_ack` });
  });

  it('counts the bytes as they arrive: a frame is cut off before it is whole', async () => {
    const socket = await openRawWebSocket();
    const payload = Buffer.from(paddedMessage('connection_init', LARGE_INIT_BYTES));
    socket.connection.write(clientFrameHeader(payload.length));
    // Only part of the frame: the server would wait for the rest if it counted whole frames.
    socket.connection.write(payload.subarray(0, UNACKNOWLEDGED_SOCKET_LIMIT_BYTES + 1024));
    expect(await socket.closeCode).toBe(1009);
    await socket.closed;
  });

  it('refuses a connection_init over the limit even with a valid key: the limit comes before authentication', async () => {
    const socket = await openWebSocket();
    socket.send(paddedMessage('connection_init', LARGE_INIT_BYTES, { authorization: `Bearer ${KEY}` }));
    expect(await firstEvent(socket)).toMatchObject({ closeCode: 1009 });
  });

  it('drops a socket refused with 4403 without waiting for the client\'s close frame', { timeout: 10_000 }, async () => {
    const socket = await openRawWebSocket();
    const init = Buffer.from(JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer wrong-key' } }));
    socket.connection.write(Buffer.concat([clientFrameHeader(init.length), init]));
    expect(await socket.closeCode).toBe(4403);
    await socket.closed; // this client never answers the close frame
  });

  it('drops a socket that sends nothing once graphql-ws closes it (4408, connectionInitWaitTimeout: 3 s)', { timeout: 10_000 }, async () => {
    const socket = await openRawWebSocket();
    expect(await socket.closeCode).toBe(4408);
    await socket.closed;
  });
});

describe('after the connection is acknowledged', () => {
  it('streams a subscription for a client with a key and ordinary connectionParams', async () => {
    const client = createWebSocketClient(started.webSocketUrl, { connectionParams: { authorization: `Bearer ${KEY}`, note: 'n'.repeat(8 * 1024) } });
    const results = await collectWebSocket(client, CHAT_SUBSCRIPTION);
    expect(results.at(-1)).toEqual({ data: { chatCompletion: { __typename: 'ChatCompletionCompleted', text: 'Once upon a' } } });
    await client.dispose();
  });

  it('lifts the limit: messages beyond 64 KiB in all, each under the body limit, are answered', async () => {
    const socket = await openWebSocket();
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${KEY}` } }));
    expect(await firstEvent(socket)).toEqual({ message: { type: 'connection_ack' } });
    for (let index = 0; index < 3; index += 1) {
      socket.send(paddedMessage('ping', 48 * 1024));
      expect(await firstEvent(socket)).toMatchObject({ message: { type: 'pong' } });
    }
    socket.close();
  });
});
