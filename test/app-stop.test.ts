/** `stop()` cancels running generations, tells subscribers, closes WebSockets with 1001, and lets go of upstreams. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CHAT_COMPLETION_SUBSCRIPTION, type ChatEvent } from './helpers/chat-operations.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from './helpers/fake-openai-upstream.js';
import { startApp, type StartedApp } from './helpers/start-app.js';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
  started = await startApp({
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['endless?gapMs=5'] }]),
  });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

describe('App.stop', () => {
  it('ends a live subscription with GenerationCancelled, closes the socket with 1001, and aborts the upstream request', async () => {
    // A raw graphql-ws conversation, to see the close code the server sends.
    const socket = new WebSocket(started.webSocketUrl, 'graphql-transport-ws');
    const messages: Array<{ type: string; payload?: { data?: { chatCompletion: ChatEvent } } }> = [];
    let firstDelta!: () => void;
    const deltaArrived = new Promise<void>((resolve) => (firstDelta = resolve));
    const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      messages.push(message);
      if (message.type === 'connection_ack') {
        socket.send(
          JSON.stringify({
            id: '1',
            type: 'subscribe',
            payload: {
              query: CHAT_COMPLETION_SUBSCRIPTION,
              variables: { input: { provider: 'fake', model: 'endless?gapMs=5', messages: [{ role: 'USER', content: 'go' }] } },
            },
          }),
        );
      }
      if (message.payload?.data?.chatCompletion?.__typename === 'ChatTokenDelta') firstDelta();
    });
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
    await deltaArrived;

    await started.app.stop();
    expect(await closed).toBe(1001);
    await upstream.waitForClientClose(1);
    const events = messages.flatMap((message) => (message.payload?.data ? [message.payload.data.chatCompletion] : []));
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationCancelled', reason: 'server shutting down' });
    await expect(fetch(`${started.url}/healthz`)).rejects.toThrow();
  });
});
