/**
 * The `copilot` provider end to end over REST, driven the way gpt4free's seed chat client drives it
 * (`etc/examples/api_completions_copilot.py`: `provider: "Copilot"`, `model: ""`, `stream: true`,
 * one `conversation_id` over two turns, every `data: ` line checked for `error`): the real server on
 * port 0 and a local Copilot fake speaking the frames of `docs/protocols.md` §5.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/operations/logger.js';
import { FAKE_ANONYMOUS_COOKIE, startFakeCopilot, type FakeCopilot } from '../helpers/fake-copilot.js';
import { startFakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectChatStream, postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const COOKIES = `__Host-copilot-anon=${FAKE_ANONYMOUS_COOKIE}; MUID=0123456789ABCDEF0123456789ABCDEF`;
const SECRETS = [FAKE_ANONYMOUS_COOKIE, '0123456789ABCDEF0123456789ABCDEF'];

let fake: FakeCopilot;
let started: StartedApp;
let logText = '';

beforeAll(async () => {
  fake = await startFakeCopilot();
  const logs = new Writable({
    write(chunk, _encoding, callback) {
      logText += String(chunk);
      callback();
    },
  });
  started = await startApp(
    { COPILOT_ENABLED: 'true', COPILOT_BASE_URL: fake.baseURL, COPILOT_COOKIES: COOKIES, BREAKER_ENABLED: 'false' },
    { logger: createLogger({ level: 'debug', destination: logs }) },
  );
});

afterAll(async () => {
  await started?.stop();
  await fake?.close();
});

beforeEach(() => {
  fake.setScenario(undefined);
  fake.setStartReply(undefined);
});

/** One request of the seed client: its body exactly, but for the messages and the conversation. */
function seedClientTurn(content: string, conversationId: string): Promise<Response> {
  return postJson(started.url, '/v1/chat/completions', {
    model: '',
    provider: 'Copilot',
    stream: true,
    messages: [{ role: 'user', content }],
    conversation_id: conversationId,
  });
}

describe("gpt4free's seed chat client", () => {
  it('holds a two-turn conversation: the second turn continues the same Copilot conversation with only the new message', async () => {
    const conversationId = crypto.randomUUID();
    const first = await seedClientTurn('Hello, i am Heiner. How are you?', conversationId);
    expect(first.status).toBe(200); // the client's raise_for_status()
    const firstStream = await collectChatStream(first);
    expect(firstStream).toMatchObject({ text: 'Nice to meet you, Heiner!', done: true, trailing: [] });
    expect(firstStream.error).toBeUndefined();
    expect(firstStream.chunks[0]).toMatchObject({ provider: 'copilot', model: 'Copilot', conversation_id: conversationId });
    expect(firstStream.chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');

    const second = await seedClientTurn('Tell me somethings about my name', conversationId);
    expect(second.status).toBe(200);
    const secondStream = await collectChatStream(second);
    expect(secondStream.error).toBeUndefined();
    expect(secondStream.text).toBe('Your name is Heiner.');

    const copilotConversationId = (fake.sockets.at(-2)!.received[0] as { conversationId: string }).conversationId;
    expect(fake.sockets.slice(-2).map((socket) => socket.received[0])).toEqual([
      { event: 'send', conversationId: copilotConversationId, content: [{ type: 'text', text: 'Hello, i am Heiner. How are you?' }], mode: 'chat' },
      { event: 'send', conversationId: copilotConversationId, content: [{ type: 'text', text: 'Tell me somethings about my name' }], mode: 'chat' },
    ]);
    expect(fake.conversations.get(copilotConversationId)).toEqual(['Hello, i am Heiner. How are you?', 'Tell me somethings about my name']);
    // The gateway kept the conversation too.
    expect((await started.app.conversations.get(conversationId))?.messages.map(({ role, content }) => ({ role, content }))).toEqual([
      { role: 'user', content: 'Hello, i am Heiner. How are you?' },
      { role: 'assistant', content: 'Nice to meet you, Heiner!' },
      { role: 'user', content: 'Tell me somethings about my name' },
      { role: 'assistant', content: 'Your name is Heiner.' },
    ]);
  });

  it('without conversation_id, each request is a new Copilot conversation', async () => {
    const before = fake.starts.length;
    for (const content of ['One', 'Two']) {
      const body = { model: '', provider: 'Copilot', stream: true, messages: [{ role: 'user', content }] };
      expect((await collectChatStream(await postJson(started.url, '/v1/chat/completions', body))).text).toBe(`You said: ${content}`);
    }
    expect(fake.starts.length - before).toBe(2);
  });
});

describe('models and routing', () => {
  it('lists the Copilot models and the provider, available', async () => {
    const models = (await (await fetch(`${started.url}/v1/models`)).json()) as { data: Array<{ id: string; owned_by?: string }> };
    expect(models.data.map((model) => model.id)).toEqual(expect.arrayContaining(['Copilot', 'Think Deeper', 'Smart (GPT-5)']));
    const provider = (await (await fetch(`${started.url}/v1/providers/Copilot`)).json()) as { id: string };
    expect(provider.id).toBe('copilot');
  });

  it('streams Think Deeper with its reasoning as reasoning_content, mode reasoning', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', {
      model: 'copilot:Think Deeper',
      stream: true,
      reasoning_effort: 'high',
      messages: [{ role: 'user', content: 'Why?' }],
    });
    const stream = await collectChatStream(response);
    expect(stream.text).toBe('You said: Why?');
    expect(stream.chunks.map((chunk) => (chunk.choices[0]?.delta as { reasoning_content?: string }).reasoning_content ?? '').join('')).toBe('Thinking about it.');
    expect((fake.sockets.at(-1)!.received[0] as { mode: string }).mode).toBe('reasoning');
  });

  it('routes the gpt-4o alias to Copilot, unless a configured provider serves gpt-4o', async () => {
    const aliased = await postJson(started.url, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] });
    expect(await aliased.json()).toMatchObject({ provider: 'copilot', model: 'Copilot', choices: [{ message: { content: 'You said: Hi' } }] });

    const upstream = await startFakeOpenAIUpstream();
    const withUpstream = await startApp({
      COPILOT_ENABLED: 'true',
      COPILOT_BASE_URL: fake.baseURL,
      COPILOT_COOKIES: COOKIES,
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'openai', baseURL: upstream.baseURL, models: ['gpt-4o'] }]),
    });
    try {
      const candidates = await withUpstream.app.registry.chatCandidates({ model: 'gpt-4o' });
      expect(candidates.map(({ provider, model }) => `${provider.id}:${model}`)).toEqual(['openai:gpt-4o']);
      const sockets = fake.sockets.length;
      const response = await postJson(withUpstream.url, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] });
      expect(await response.json()).toMatchObject({ provider: 'openai', model: 'gpt-4o' });
      expect(fake.sockets.length).toBe(sockets);
    } finally {
      await withUpstream.stop();
      await upstream.close();
    }
  });

  it('refuses tools with UNSUPPORTED_INPUT (400)', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', {
      model: '',
      provider: 'Copilot',
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }],
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 'UNSUPPORTED_INPUT' } });
  });
});

describe('failures', () => {
  it('a 401 from Copilot: HTTP 401 with an OpenAI-style body naming what to configure', async () => {
    fake.setStartReply({ status: 401, body: JSON.stringify({ error: { message: 'Invalid session' } }) });
    const response = await seedClientTurn('Hi', crypto.randomUUID());
    expect(response.status).toBe(401);
    const body = (await response.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error).toMatchObject({ type: 'authentication_error', code: 'UNAUTHORIZED' });
    for (const setting of ['COPILOT_COOKIES', 'COPILOT_ACCESS_TOKEN', 'COPILOT_HAR_FILE']) expect(body.error.message).toContain(setting);
    for (const secret of SECRETS) expect(JSON.stringify(body)).not.toContain(secret);
  });

  it('no session configured: 401 naming the settings, and the provider listed as unavailable with that reason', async () => {
    const bare = await startApp({ COPILOT_ENABLED: 'true', COPILOT_BASE_URL: fake.baseURL });
    try {
      const starts = fake.starts.length;
      const response = await postJson(bare.url, '/v1/chat/completions', { model: '', provider: 'Copilot', stream: true, messages: [{ role: 'user', content: 'Hi' }] });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(/copilot has no browser session: set COPILOT_COOKIES .*COPILOT_ACCESS_TOKEN .*COPILOT_HAR_FILE/);
      expect(fake.starts.length).toBe(starts);
      const provider = (await (await fetch(`${bare.url}/v1/providers/copilot`)).json()) as Record<string, unknown>;
      expect(JSON.stringify(provider)).toContain('COPILOT_COOKIES');
    } finally {
      await bare.stop();
    }
  });

  it('a socket closed before done: 502 UPSTREAM_CONNECTION_LOST before any text, in-band after it', async () => {
    fake.setScenario(() => [{ terminate: true }]);
    const early = await seedClientTurn('Hi', crypto.randomUUID());
    expect(early.status).toBe(502);
    expect(await early.json()).toMatchObject({ error: { code: 'UPSTREAM_CONNECTION_LOST' } });

    fake.setScenario(() => [{ frame: { event: 'appendText', text: 'Half' } }, { close: 1011 }]);
    const late = await seedClientTurn('Hi', crypto.randomUUID());
    expect(late.status).toBe(200);
    const stream = await collectChatStream(late);
    expect(stream).toMatchObject({ text: 'Half', done: true, error: { code: 'UPSTREAM_CONNECTION_LOST' } });
  });

  it('an error frame: 502 UPSTREAM_ERROR with its message', async () => {
    fake.setScenario(() => [{ frame: { event: 'error', message: 'Something went wrong' } }]);
    const response = await seedClientTurn('Hi', crypto.randomUUID());
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ error: { code: 'UPSTREAM_ERROR', message: 'upstream copilot sent an error: Something went wrong' } });
  });

  it('never logs the session cookies', () => {
    expect(logText).toContain('generation failed');
    for (const secret of SECRETS) expect(logText).not.toContain(secret);
  });
});
