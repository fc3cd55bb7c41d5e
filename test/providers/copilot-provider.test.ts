/**
 * The `copilot` provider against a real local Copilot fake (`test/helpers/fake-copilot.ts`, the
 * frames of `docs/protocols.md` §5): the start request, the `send` frame, every answer event, two
 * turns of one conversation, and each failure.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCopilotProvider, type CopilotProviderOptions } from '../../src/providers/copilot/copilot-provider.js';
import { ProviderError, type ChatMessage, type ChatRequest, type ChatStreamPart } from '../../src/providers/provider.js';
import { FAKE_ANONYMOUS_COOKIE, startFakeCopilot, type FakeCopilot, type FakeCopilotStep } from '../helpers/fake-copilot.js';
import { unusedBaseURL } from '../helpers/fake-openai-upstream.js';

const ACCESS_TOKEN = 'copilot-access-token-secret-0123456789';
const COOKIES = `__Host-copilot-anon=${FAKE_ANONYMOUS_COOKIE}; MUID=ABCDEF0123456789`;

let fake: FakeCopilot;

beforeEach(async () => {
  fake = await startFakeCopilot({ accessToken: ACCESS_TOKEN });
});

afterEach(async () => {
  await fake.close();
});

function provider(overrides: Partial<CopilotProviderOptions> = {}, now?: () => number) {
  return createCopilotProvider(
    { baseURL: fake.baseURL, cookies: COOKIES, connectTimeoutMs: 5_000, idleTimeoutMs: 5_000, maxConversations: 100, conversationIdleMs: 60_000, ...overrides },
    { timeZone: 'Europe/Berlin', ...(now && { now }) },
  );
}

function request(content: string, overrides: Partial<ChatRequest> = {}): ChatRequest {
  return { model: 'Copilot', messages: [{ role: 'user', content }], ...overrides };
}

/** Reads a whole stream; returns the parts and the error it ended with, if any. */
async function collect(stream: AsyncIterable<ChatStreamPart>): Promise<{ parts: ChatStreamPart[]; text: string; reasoning: string; error?: unknown }> {
  const parts: ChatStreamPart[] = [];
  let error: unknown;
  try {
    for await (const part of stream) parts.push(part);
  } catch (caught) {
    error = caught;
  }
  const join = (type: 'text-delta' | 'reasoning-delta') => parts.map((part) => (part.type === type ? part.text : '')).join('');
  return { parts, text: join('text-delta'), reasoning: join('reasoning-delta'), error };
}

const run = (chat: ReturnType<typeof provider>, chatRequest: ChatRequest, signal = new AbortController().signal) => collect(chat.streamChat(chatRequest, { signal }));

function expectProviderError(error: unknown, code: ProviderError['code']): ProviderError {
  expect(error).toBeInstanceOf(ProviderError);
  const providerError = error as ProviderError;
  expect({ code: providerError.code, provider: providerError.provider }).toEqual({ code, provider: 'copilot' });
  for (const secret of [ACCESS_TOKEN, FAKE_ANONYMOUS_COOKIE]) expect(providerError.message).not.toContain(secret);
  return providerError;
}

/** A turn whose frames are `steps` (the fake's default opening and ending left out). */
function scenario(steps: FakeCopilotStep[]): void {
  fake.setScenario(() => steps);
}

describe('models and availability', () => {
  it('lists Copilot (the default), Think Deeper with reasoning, and Smart (GPT-5); chat only', async () => {
    const chat = provider();
    expect(chat.id).toBe('copilot');
    expect(chat.capabilities).toEqual(['chat']);
    expect(await chat.listModels()).toEqual([
      { id: 'Copilot', capabilities: ['chat'] },
      { id: 'Think Deeper', capabilities: ['chat', 'reasoning'] },
      { id: 'Smart (GPT-5)', capabilities: ['chat'] },
    ]);
    expect(await chat.checkAvailability()).toEqual({ available: true });
  });

  it('is unavailable without a session, naming what to configure', async () => {
    const availability = await provider({ cookies: undefined }).checkAvailability();
    expect(availability.available).toBe(false);
    for (const setting of ['COPILOT_COOKIES', 'COPILOT_ACCESS_TOKEN', 'COPILOT_HAR_FILE']) expect(availability.reason).toContain(setting);
  });
});

describe('one turn', () => {
  it('starts a conversation, sends one send frame, streams appendText and finishes with stop', async () => {
    const { parts, text, error } = await run(provider(), request('Hello there'));
    expect(error).toBeUndefined();
    expect(text).toBe('You said: Hello there');
    expect(parts.filter((part) => part.type === 'text-delta').length).toBe(4);
    expect(parts.at(-1)).toEqual({ type: 'finish', finishReason: 'stop' });

    expect(fake.starts).toHaveLength(1);
    const start = fake.starts[0]!;
    expect(start.body).toEqual({
      timeZone: 'Europe/Berlin',
      startNewConversation: true,
      teenSupportEnabled: true,
      correctPersonalizationSetting: true,
      performUserMerge: true,
      deferredDataUseCapable: true,
    });
    expect(start.headers).toMatchObject({ origin: fake.baseURL, referer: `${fake.baseURL}/`, 'content-type': 'application/json', cookie: COOKIES });
    expect(start.headers.authorization).toBeUndefined();

    const socket = fake.sockets[0]!;
    expect(socket.query).toEqual({ 'api-version': '2', clientSessionId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(socket.headers.origin).toBe(fake.baseURL);
    // The cookie the start set is sent back.
    expect(socket.headers.cookie).toBe(`${COOKIES}; __Host-copilot-session=session-1`);
    expect(socket.received).toEqual([{ event: 'send', conversationId: 'conv-1', content: [{ type: 'text', text: 'Hello there' }], mode: 'chat' }]);
    await fake.waitForSocketClose();
    expect(socket.closedBy).toBe('client');
  });

  it('sends mode reasoning for Think Deeper and streams chainOfThought as reasoning; smart for Smart (GPT-5)', async () => {
    const thought = await run(provider(), request('Why?', { model: 'Think Deeper' }));
    expect(thought).toMatchObject({ reasoning: 'Thinking about it.', text: 'You said: Why?' });
    expect(thought.parts.findIndex((part) => part.type === 'reasoning-delta')).toBeLessThan(thought.parts.findIndex((part) => part.type === 'text-delta'));
    await run(provider(), request('Hi', { model: 'Smart (GPT-5)' }));
    expect(fake.sockets.map((socket) => (socket.received[0] as { mode: string }).mode)).toEqual(['reasoning', 'smart']);
  });

  it('signs in with an access token: Authorization and x-useridentitytype on the start, accessToken on the socket', async () => {
    const { text, error } = await run(provider({ cookies: undefined, accessToken: ACCESS_TOKEN, userIdentityType: 'google' }), request('Hi'));
    expect(error).toBeUndefined();
    expect(text).toBe('You said: Hi');
    expect(fake.starts[0]!.headers).toMatchObject({ authorization: `Bearer ${ACCESS_TOKEN}`, 'x-useridentitytype': 'google' });
    expect(fake.sockets[0]!.query).toMatchObject({ accessToken: ACCESS_TOKEN, 'X-UserIdentityType': 'google' });
  });

  it("sends back the cookies the start set, and drops those it expired", async () => {
    const expiring = await startFakeCopilot({ startSetCookies: ['MUID=; Max-Age=0', 'fresh=1; Expires=Wed, 01 Jan 2099 00:00:00 GMT'] });
    try {
      await run(provider({ baseURL: expiring.baseURL }), request('Hi'));
      expect(expiring.sockets[0]!.headers.cookie).toBe(`__Host-copilot-anon=${FAKE_ANONYMOUS_COOKIE}; __Host-copilot-session=session-1; fresh=1`);
    } finally {
      await expiring.close();
    }
  });

  it('reads the frames that follow done, up to suggestedFollowups', async () => {
    scenario([
      { frame: { event: 'appendText', text: 'Answer.' } },
      { frame: { event: 'done' } },
      { frame: { event: 'citation', url: 'https://example.com/source' } },
      { frame: { event: 'appendText', text: ' Late words.' } },
      { frame: { event: 'suggestedFollowups', suggestions: [] } },
      { frame: { event: 'appendText', text: ' Never read.' } },
    ]);
    const { text, parts } = await run(provider(), request('Hi'));
    expect(text).toBe('Answer. Late words.');
    expect(parts.at(-1)).toEqual({ type: 'finish', finishReason: 'stop' });
  });

  it('ends after done when the server closes the socket, or stays silent (bounded wait), or sends an error', async () => {
    scenario([{ frame: { event: 'appendText', text: 'Closed.' } }, { frame: { event: 'done' } }, { close: 1000 }]);
    expect(await run(provider(), request('Hi'))).toMatchObject({ text: 'Closed.', error: undefined });
    let release!: () => void;
    scenario([{ frame: { event: 'appendText', text: 'Silent.' } }, { frame: { event: 'done' } }, { hold: new Promise<void>((resolve) => (release = resolve)) }]);
    expect(await run(provider(), request('Hi'))).toMatchObject({ text: 'Silent.', error: undefined });
    release();
    scenario([{ frame: { event: 'appendText', text: 'Done.' } }, { frame: { event: 'done' } }, { frame: { event: 'error', message: 'late' } }]);
    expect(await run(provider(), request('Hi'))).toMatchObject({ text: 'Done.', error: undefined });
  });

  it('hands on replaceText as what it adds: the new end of an extension, nothing for the same text, a correction after a paragraph break', async () => {
    scenario([
      { frame: { event: 'appendText', text: 'The capital is' } },
      { frame: { event: 'replaceText', text: 'The capital is Paris' } },
      { frame: { event: 'replaceText', text: 'The capital is Paris' } },
      { frame: { event: 'appendText', text: '.' } },
      { frame: { event: 'replaceText', text: 'Sorry, I cannot answer that.' } },
      { frame: { event: 'appendText', text: ' Ask another.' } },
      { frame: { event: 'done' } },
      { frame: { event: 'suggestedFollowups', suggestions: [] } },
    ]);
    const { parts, text } = await run(provider(), request('Capital?'));
    expect(parts.filter((part) => part.type === 'text-delta').map((part) => (part as { text: string }).text)).toEqual([
      'The capital is',
      ' Paris',
      '.',
      '\n\nSorry, I cannot answer that.',
      ' Ask another.',
    ]);
    expect(text).toBe('The capital is Paris.\n\nSorry, I cannot answer that. Ask another.');
  });

  it('shows a generated image as Markdown with its prompt, in a paragraph of its own', async () => {
    scenario([
      { frame: { event: 'appendText', text: 'Here it is:' } },
      { frame: { event: 'generatingImage', prompt: 'a red [fox]' } },
      { frame: { event: 'partialImageGenerated', content: 'iVBORw0KGgo=' } },
      { frame: { event: 'imageGenerated', url: 'https://images.example.com/fox (1).png', thumbnailUrl: 'https://images.example.com/t.png' } },
      { frame: { event: 'appendText', text: 'Enjoy.' } },
      { frame: { event: 'done' } },
      { frame: { event: 'suggestedFollowups', suggestions: [] } },
    ]);
    const { text } = await run(provider(), request('Draw a fox'));
    expect(text).toBe('Here it is:\n\n![a red fox](https://images.example.com/fox%20%281%29.png)\n\nEnjoy.');
  });
});

describe('conversations', () => {
  /** The seed client's two turns: the second request holds the gateway's history and the new message. */
  async function twoTurns(chat: ReturnType<typeof provider>, conversationId = 'gateway-conversation-1') {
    const first = await run(chat, request('Hello, i am Heiner. How are you?', { conversationId }));
    const history: ChatMessage[] = [
      { role: 'user', content: 'Hello, i am Heiner. How are you?' },
      { role: 'assistant', content: first.text },
    ];
    const second = await run(chat, { model: 'Copilot', conversationId, historyLength: 2, messages: [...history, { role: 'user', content: 'Tell me somethings about my name' }] });
    return { first, second };
  }

  it('continues one Copilot conversation, sending only the newest user message', async () => {
    const { first, second } = await twoTurns(provider());
    expect(first.text).toBe('Nice to meet you, Heiner!');
    expect(second.text).toBe('Your name is Heiner.');
    expect(fake.starts).toHaveLength(1);
    expect(fake.sockets.map((socket) => socket.received)).toEqual([
      [{ event: 'send', conversationId: 'conv-1', content: [{ type: 'text', text: 'Hello, i am Heiner. How are you?' }], mode: 'chat' }],
      [{ event: 'send', conversationId: 'conv-1', content: [{ type: 'text', text: 'Tell me somethings about my name' }], mode: 'chat' }],
    ]);
  });

  it('starts anew, with the history as the prompt, when the last reply is not the one Copilot gave', async () => {
    const chat = provider();
    await run(chat, request('Hello, i am Heiner.', { conversationId: 'c' }));
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello, i am Heiner.' },
      { role: 'assistant', content: 'An answer another provider gave.' },
      { role: 'user', content: 'What now?' },
    ];
    const { text } = await run(chat, { model: 'Copilot', conversationId: 'c', historyLength: 3, messages });
    const prompt = 'System: Be brief.\nUser: Hello, i am Heiner.\nAssistant: An answer another provider gave.\nUser: What now?\nAssistant:';
    expect(text).toBe(`You said: ${prompt}`);
    expect(fake.starts).toHaveLength(2);
    expect((fake.sockets[1]!.received[0] as { conversationId: string }).conversationId).toBe('conv-2');
  });

  it('keeps at most maxConversations, and forgets one unused for conversationIdleMs', async () => {
    let now = 0;
    const chat = provider({ maxConversations: 1, conversationIdleMs: 1_000 }, () => now);
    const first = await run(chat, request('Hello, i am Ada.', { conversationId: 'a' }));
    await run(chat, request('Hello, i am Bob.', { conversationId: 'b' }));
    const again = (id: string, reply: string) =>
      run(chat, { model: 'Copilot', conversationId: id, messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: reply }, { role: 'user', content: 'my name?' }] });
    expect((await again('b', 'Nice to meet you, Bob!')).text).toBe('Your name is Bob.');
    const a = await again('a', first.text);
    expect(a.text).toMatch(/^You said: User: x\n/); // pushed out by "b": a new conversation with the history
    now += 999;
    expect((await again('a', a.text)).text).toBe('I do not know your name.'); // continued
    now += 1_000;
    expect((await again('a', 'I do not know your name.')).text).toMatch(/^You said: User: x\n/); // idle too long
    expect(fake.starts).toHaveLength(4);
  });

  it('forgets the conversation after a failed turn, so the next starts afresh from the history', async () => {
    const chat = provider();
    const first = await run(chat, request('Hello, i am Heiner.', { conversationId: 'c' }));
    scenario([{ frame: { event: 'appendText', text: 'Half' } }, { terminate: true }]);
    const history: ChatMessage[] = [{ role: 'user', content: 'Hello, i am Heiner.' }, { role: 'assistant', content: first.text }];
    expectProviderError((await run(chat, { model: 'Copilot', conversationId: 'c', messages: [...history, { role: 'user', content: 'One' }] })).error, 'UPSTREAM_CONNECTION_LOST');
    fake.setScenario(undefined);
    await run(chat, { model: 'Copilot', conversationId: 'c', messages: [...history, { role: 'user', content: 'Two' }] });
    expect(fake.starts).toHaveLength(2);
  });
});

describe('failures', () => {
  it('without a session: UNAUTHORIZED naming the settings, before any request', async () => {
    const { error } = await run(provider({ cookies: undefined }), request('Hi'));
    const providerError = expectProviderError(error, 'UNAUTHORIZED');
    for (const setting of ['COPILOT_COOKIES', 'COPILOT_ACCESS_TOKEN', 'COPILOT_HAR_FILE']) expect(providerError.message).toContain(setting);
    expect(fake.starts).toHaveLength(0);
  });

  it('a 401 from the start: UNAUTHORIZED with status 401, naming the settings', async () => {
    const { error } = await run(provider({ cookies: '__Host-copilot-anon=expired-cookie-value-987654321' }), request('Hi'));
    const providerError = expectProviderError(error, 'UNAUTHORIZED');
    expect(providerError.statusCode).toBe(401);
    expect(providerError.message).toContain('Invalid session');
    expect(providerError.message).toContain('COPILOT_COOKIES');
    expect(providerError.message).not.toContain('expired-cookie-value-987654321');
  });

  it('a session without the anonymous cookie after the start: UNAUTHORIZED naming the cookie', async () => {
    fake.setStartReply({ status: 200, body: JSON.stringify({ currentConversationId: 'conv-x' }) });
    const { error } = await run(provider({ cookies: 'MUID=ABCDEF0123456789' }), request('Hi'));
    expect(expectProviderError(error, 'UNAUTHORIZED').message).toContain('__Host-copilot-anon');
    expect(fake.sockets).toHaveLength(0);
  });

  it('a refused socket handshake: UNAUTHORIZED (401) or FORBIDDEN (403) with the status', async () => {
    fake.setSocketRefusal(401);
    expect(expectProviderError((await run(provider(), request('Hi'))).error, 'UNAUTHORIZED').statusCode).toBe(401);
    fake.setSocketRefusal(403);
    expect(expectProviderError((await run(provider(), request('Hi'))).error, 'FORBIDDEN').statusCode).toBe(403);
  });

  it('an error frame: UPSTREAM_ERROR with its message, secrets redacted', async () => {
    scenario([{ frame: { event: 'error', message: `Rate limit for ${FAKE_ANONYMOUS_COOKIE}`, errorCode: 'rate-limited' } }]);
    const providerError = expectProviderError((await run(provider(), request('Hi'))).error, 'UPSTREAM_ERROR');
    expect(providerError.message).toBe('upstream copilot sent an error: Rate limit for ***');
  });

  it('a socket closed before done: UPSTREAM_CONNECTION_LOST, after text or before it', async () => {
    scenario([{ frame: { event: 'appendText', text: 'Half an ans' } }, { close: 1011 }]);
    const closed = await run(provider(), request('Hi'));
    expect(closed.text).toBe('Half an ans');
    expect(expectProviderError(closed.error, 'UPSTREAM_CONNECTION_LOST').message).toContain('close code 1011');
    scenario([{ terminate: true }]);
    expectProviderError((await run(provider(), request('Hi'))).error, 'UPSTREAM_CONNECTION_LOST');
  });

  it('suggestedFollowups without done: UPSTREAM_BAD_RESPONSE', async () => {
    scenario([{ frame: { event: 'appendText', text: 'x' } }, { frame: { event: 'suggestedFollowups', suggestions: [] } }]);
    expectProviderError((await run(provider(), request('Hi'))).error, 'UPSTREAM_BAD_RESPONSE');
  });

  it('frames it cannot read: not JSON, binary, too large, an answer beyond the bound', async () => {
    scenario([{ raw: 'not json' }]);
    expectProviderError((await run(provider(), request('Hi'))).error, 'UPSTREAM_BAD_RESPONSE');
    scenario([{ binary: Buffer.from([1, 2, 3]) }]);
    expectProviderError((await run(provider(), request('Hi'))).error, 'UPSTREAM_BAD_RESPONSE');
    scenario([{ frame: { event: 'appendText', text: 'x'.repeat(2_000) } }]);
    expect(expectProviderError((await run(provider({ maxFrameBytes: 1_024 }), request('Hi'))).error, 'UPSTREAM_BAD_RESPONSE').message).toContain('1024 bytes');
    scenario([{ frame: { event: 'appendText', text: 'x'.repeat(60) } }, { frame: { event: 'appendText', text: 'x'.repeat(60) } }]);
    const tooLong = await run(provider({ maxReplyCharacters: 100 }), request('Hi'));
    expect(tooLong.text).toHaveLength(60);
    expect(expectProviderError(tooLong.error, 'UPSTREAM_BAD_RESPONSE').message).toContain('100 characters');
  });

  it('no frame within the idle timeout: UPSTREAM_TIMEOUT, and the socket is closed', async () => {
    let release!: () => void;
    scenario([{ frame: { event: 'received' } }, { hold: new Promise<void>((resolve) => (release = resolve)) }]);
    expect(expectProviderError((await run(provider({ idleTimeoutMs: 300 }), request('Hi'))).error, 'UPSTREAM_TIMEOUT').message).toContain('300 ms');
    await fake.waitForSocketClose();
    expect(fake.sockets[0]!.closedBy).toBe('client');
    release();
  });

  it('a start that does not answer within the connect timeout: UPSTREAM_TIMEOUT', async () => {
    let release!: () => void;
    fake.setStartReply({ status: 200, body: '{}', hold: new Promise<void>((resolve) => (release = resolve)) });
    expect(expectProviderError((await run(provider({ connectTimeoutMs: 300 }), request('Hi'))).error, 'UPSTREAM_TIMEOUT').message).toContain(
      'did not answer POST /c/api/start within 300 ms',
    );
    release();
  });

  it('an unreachable site: UPSTREAM_ERROR', async () => {
    const baseURL = (await unusedBaseURL()).replace(/\/v1$/, '');
    expectProviderError((await run(provider({ baseURL }), request('Hi'))).error, 'UPSTREAM_ERROR');
  });

  it("the caller's abort closes the socket at once and ends with its reason", async () => {
    let release!: () => void;
    scenario([{ frame: { event: 'appendText', text: 'Start' } }, { hold: new Promise<void>((resolve) => (release = resolve)) }]);
    const controller = new AbortController();
    const reason = new Error('cancelled by the test');
    const parts: ChatStreamPart[] = [];
    let caught: unknown;
    try {
      for await (const part of provider().streamChat(request('Hi'), { signal: controller.signal })) {
        parts.push(part);
        controller.abort(reason);
      }
    } catch (error) {
      caught = error;
    }
    expect(caught).toBe(reason);
    expect(parts).toEqual([{ type: 'text-delta', text: 'Start' }]);
    await fake.waitForSocketClose();
    expect(fake.sockets[0]!.closedBy).toBe('client');
    release();
  });
});
