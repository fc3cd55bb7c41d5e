/**
 * The `copilot` provider over GraphQL: one turn through the `chatCompletion` subscription on
 * graphql-ws (a real WebSocket), against the local Copilot fake (`docs/protocols.md` §5).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectWellFormedChatEvents, type ChatEvent } from '../helpers/chat-operations.js';
import { FAKE_ANONYMOUS_COOKIE, startFakeCopilot, type FakeCopilot } from '../helpers/fake-copilot.js';
import { collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const CHAT = `subscription Chat($input: ChatCompletionInput!) {
  chatCompletion(input: $input) {
    __typename
    ... on GenerationEvent { generationId sequence }
    ... on ChatCompletionStarted { provider model }
    ... on ChatTokenDelta { text }
    ... on ChatReasoningDelta { text }
    ... on ChatCompletionCompleted { finishReason text reasoning conversationId }
    ... on GenerationFailed { error { code message provider } }
  }
}`;

let fake: FakeCopilot;
let started: StartedApp;

beforeAll(async () => {
  fake = await startFakeCopilot();
  started = await startApp({ COPILOT_ENABLED: 'true', COPILOT_BASE_URL: fake.baseURL, COPILOT_COOKIES: `__Host-copilot-anon=${FAKE_ANONYMOUS_COOKIE}` });
});

afterAll(async () => {
  await started?.stop();
  await fake?.close();
});

describe('chatCompletion over graphql-ws', () => {
  it('streams a Think Deeper turn: reasoning, then text, completed with stop in its conversation', async () => {
    const client = createWebSocketClient(started.webSocketUrl);
    try {
      const results = await collectWebSocket<{ chatCompletion: ChatEvent & { reasoning?: string; conversationId?: string } }>(client, CHAT, {
        input: { provider: 'Copilot', model: 'Think Deeper', conversationId: 'graphql-conversation', messages: [{ role: 'USER', content: 'Hello, i am Ada.' }] },
      });
      const events = results.map((result) => result.data!.chatCompletion);
      const text = expectWellFormedChatEvents(events);
      expect(text).toBe('Nice to meet you, Ada!');
      expect(events[0]).toMatchObject({ __typename: 'ChatCompletionStarted', provider: 'copilot', model: 'Think Deeper' });
      expect(events.findIndex((event) => event.__typename === 'ChatReasoningDelta')).toBeLessThan(events.findIndex((event) => event.__typename === 'ChatTokenDelta'));
      expect(events.at(-1)).toMatchObject({
        __typename: 'ChatCompletionCompleted',
        finishReason: 'STOP',
        text: 'Nice to meet you, Ada!',
        reasoning: 'Thinking about it.',
        conversationId: 'graphql-conversation',
      });
      expect(fake.sockets.at(-1)!.received).toEqual([
        { event: 'send', conversationId: 'conv-1', content: [{ type: 'text', text: 'Hello, i am Ada.' }], mode: 'reasoning' },
      ]);
    } finally {
      await client.dispose();
    }
  });
});
