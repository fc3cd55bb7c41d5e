/**
 * Tool calls, images, response formats and reasoning through the OpenAI-compatible provider,
 * against a real HTTP fake upstream (`test/helpers/fake-openai-upstream.ts`) speaking OpenAI's
 * wire format (https://platform.openai.com/docs/api-reference/chat/create and /chat-streaming).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAICompatibleProvider } from '../../src/providers/openai-compatible/openai-compatible-provider.js';
import { createPollinationsProvider } from '../../src/providers/pollinations/pollinations-provider.js';
import { ProviderError, type ChatRequest, type ChatStreamPart } from '../../src/providers/provider.js';
import {
  fakeReasoning,
  fakeTokens,
  fakeToolCalls,
  startFakeOpenAIUpstream,
  unusedBaseURL,
  type FakeOpenAIUpstream,
  type FakeScenario,
} from '../helpers/fake-openai-upstream.js';

let upstream: FakeOpenAIUpstream;

beforeEach(async () => {
  upstream = await startFakeOpenAIUpstream({ models: ['gpt-4o-mini', 'deepseek-reasoner'] });
});

afterEach(async () => {
  await upstream.close();
});

const provider = () => createOpenAICompatibleProvider({ id: 'openai', baseURL: upstream.baseURL, connectTimeoutMs: 5_000, idleTimeoutMs: 5_000 });

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'The weather in a city now.',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
};

/** Streams `request` (model `gpt-4o-mini` unless given) to the end; the parts and the error it ended with. */
async function stream(request: Partial<ChatRequest>, scenario?: FakeScenario): Promise<{ parts: ChatStreamPart[]; error?: unknown }> {
  if (scenario) upstream.setScenario(scenario);
  const parts: ChatStreamPart[] = [];
  try {
    const chat: ChatRequest = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'tell me a story' }], ...request };
    for await (const part of provider().streamChat(chat, { signal: new AbortController().signal })) parts.push(part);
    return { parts };
  } catch (error) {
    return { parts, error };
  }
}

/** The body the upstream received for the last chat request. */
const lastBody = () => upstream.chatRequests().at(-1)!.body as Record<string, unknown>;

type ToolCallDelta = Extract<ChatStreamPart, { type: 'tool-call-delta' }>;
const toolCallDeltas = (parts: ChatStreamPart[]) => parts.filter((part): part is ToolCallDelta => part.type === 'tool-call-delta');
const textOf = (parts: ChatStreamPart[], type: 'text-delta' | 'reasoning-delta') =>
  parts.map((part) => (part.type === type ? part.text : '')).join('');

describe('the request body', () => {
  it('sends image parts as a content array, assistant tool calls as tool_calls and tool results as tool messages', async () => {
    const { error } = await stream({
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: 'What is in these pictures?',
          parts: [
            { type: 'text', text: 'What is in these pictures?' },
            { type: 'image-url', url: 'https://example.com/cat.png', detail: 'low' },
            { type: 'image-url', url: 'data:image/png;base64,iVBORw0KGgo=' },
          ],
        },
        {
          role: 'assistant',
          content: '',
          toolCalls: [
            { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
            { id: 'call_2', name: 'get_weather', arguments: '{"city":"Tokyo"}' },
          ],
        },
        { role: 'tool', content: '{"celsius":21}', toolCallId: 'call_1' },
        { role: 'tool', content: '{"celsius":9}', toolCallId: 'call_2' },
        { role: 'assistant', content: 'Let me look that up.', toolCalls: [{ id: 'call_3', name: 'lookup', arguments: '{}' }] },
        { role: 'tool', content: 'nothing found', toolCallId: 'call_3' },
        { role: 'assistant', content: 'Paris is warmer.' },
        { role: 'user', content: 'Thanks.' },
      ],
    });
    expect(error).toBeUndefined();
    expect(lastBody().messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in these pictures?' },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
        ],
      },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
          { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Tokyo"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"celsius":21}' },
      { role: 'tool', tool_call_id: 'call_2', content: '{"celsius":9}' },
      {
        role: 'assistant',
        content: 'Let me look that up.',
        tool_calls: [{ id: 'call_3', type: 'function', function: { name: 'lookup', arguments: '{}' } }],
      },
      { role: 'tool', tool_call_id: 'call_3', content: 'nothing found' },
      { role: 'assistant', content: 'Paris is warmer.' },
      { role: 'user', content: 'Thanks.' },
    ]);
  });

  it('sends tools, tool_choice, parallel_tool_calls, response_format and reasoning_effort as OpenAI names them', async () => {
    const { error } = await stream({
      tools: [WEATHER_TOOL, { name: 'now' }],
      toolChoice: 'required',
      parallelToolCalls: false,
      responseFormat: { type: 'json-schema', name: 'weather', schema: { type: 'object', properties: { celsius: { type: 'number' } } }, strict: true },
      reasoningEffort: 'high',
      temperature: 0.2,
    });
    expect(error).toBeUndefined();
    expect(lastBody()).toEqual({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'tell me a story' }],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      tools: [
        { type: 'function', function: WEATHER_TOOL },
        { type: 'function', function: { name: 'now' } },
      ],
      tool_choice: 'required',
      parallel_tool_calls: false,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'weather', schema: { type: 'object', properties: { celsius: { type: 'number' } } }, strict: true },
      },
      reasoning_effort: 'high',
    });
  });

  it.each([
    ['auto', 'auto'],
    ['none', 'none'],
    ['required', 'required'],
    [{ name: 'get_weather' }, { type: 'function', function: { name: 'get_weather' } }],
  ] as const)('sends the tool choice %j as %j', async (toolChoice, expected) => {
    await stream({ tools: [WEATHER_TOOL], toolChoice });
    expect(lastBody().tool_choice).toEqual(expected);
  });

  it.each([
    [{ type: 'text' }, { type: 'text' }],
    [{ type: 'json-object' }, { type: 'json_object' }],
    [{ type: 'json-schema', schema: { type: 'object' } }, { type: 'json_schema', json_schema: { name: 'response', schema: { type: 'object' } } }],
    [
      { type: 'json-schema', schema: { type: 'object' }, name: 'answer', strict: false },
      { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object' }, strict: false } },
    ],
  ] as const)('sends the response format %j as %j', async (responseFormat, expected) => {
    await stream({ responseFormat });
    expect(lastBody().response_format).toEqual(expected);
  });

  it('sends no tool, format or reasoning fields when the request has none', async () => {
    await stream({ tools: [] });
    expect(Object.keys(lastBody()).sort()).toEqual(['messages', 'model', 'stream', 'stream_options']);
  });
});

describe('the stream', () => {
  it('maps tool call pieces by index to tool-call-delta parts: id and name with the first piece, the arguments in order', async () => {
    const calls = fakeToolCalls(3);
    const { parts, error } = await stream({ tools: [WEATHER_TOOL] }, { type: 'tool-calls', calls, pieceSize: 4 });
    expect(error).toBeUndefined();
    const deltas = toolCallDeltas(parts);
    expect(deltas.map((part) => part.index)).toEqual([...deltas.map((part) => part.index)].sort());
    for (const [index, call] of calls.entries()) {
      const pieces = deltas.filter((part) => part.index === index);
      expect(pieces[0]).toMatchObject({ id: call.id, name: call.name });
      expect(pieces.slice(1).every((part) => part.id === undefined && part.name === undefined)).toBe(true);
      expect(pieces.map((part) => part.argumentsDelta).join('')).toBe(call.arguments);
    }
    expect(parts.filter((part) => part.type === 'text-delta' || part.type === 'reasoning-delta')).toEqual([]);
    expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'tool-calls', usage: { promptTokens: 4 } });
    expect(parts.filter((part) => part.type === 'finish')).toHaveLength(1);
  });

  it('hands over one read in the order it was written, joining each run of one kind: reasoning, text, each call', async () => {
    const calls = fakeToolCalls(2);
    const { parts, error } = await stream(
      { tools: [WEATHER_TOOL] },
      { type: 'tool-calls', calls, reasoning: ['Think', 'ing', '.'], tokens: ['Sure', '.'], singleWrite: true },
    );
    expect(error).toBeUndefined();
    expect(parts.slice(0, -1)).toEqual([
      // The first content goes out at once; the rest of the read follows.
      { type: 'reasoning-delta', text: 'Think' },
      { type: 'reasoning-delta', text: 'ing.' },
      { type: 'text-delta', text: 'Sure.' },
      { type: 'tool-call-delta', index: 0, id: calls[0]!.id, name: 'get_weather', argumentsDelta: calls[0]!.arguments },
      { type: 'tool-call-delta', index: 1, id: calls[1]!.id, name: 'get_weather', argumentsDelta: calls[1]!.arguments },
    ]);
    expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'tool-calls' });
  });

  it('streams reasoning_content as reasoning-delta parts before the text (a null reasoning_content beside text is plain text)', async () => {
    const { parts, error } = await stream({ model: 'deepseek-reasoner' }, { type: 'reasoning', reasoningCount: 6, tokenCount: 5 });
    expect(error).toBeUndefined();
    expect(textOf(parts, 'reasoning-delta')).toBe(fakeReasoning(6).join(''));
    expect(textOf(parts, 'text-delta')).toBe(fakeTokens(5).join(''));
    const lastReasoning = parts.findLastIndex((part) => part.type === 'reasoning-delta');
    const firstText = parts.findIndex((part) => part.type === 'text-delta');
    expect(lastReasoning).toBeLessThan(firstText);
    expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'stop' });
  });

  it("reads OpenRouter's and vLLM's delta.reasoning the same way", async () => {
    const { parts, error } = await stream({}, { type: 'reasoning', field: 'reasoning', reasoningCount: 3, tokenCount: 2, singleWrite: true });
    expect(error).toBeUndefined();
    expect(parts).toEqual([
      { type: 'reasoning-delta', text: fakeReasoning(1).join('') },
      { type: 'reasoning-delta', text: fakeReasoning(3).slice(1).join('') },
      { type: 'text-delta', text: fakeTokens(2).join('') },
      expect.objectContaining({ type: 'finish', finishReason: 'stop' }),
    ]);
  });

  it('takes reasoning_content once when a server sends the same text as reasoning too', async () => {
    const { parts } = await stream({}, { type: 'chunks', deltas: [{ reasoning_content: 'Hmm.', reasoning: 'Hmm.' }, { content: 'Yes.' }] });
    expect(textOf(parts, 'reasoning-delta')).toBe('Hmm.');
    expect(textOf(parts, 'text-delta')).toBe('Yes.');
  });

  it('reads pieces without index (a new id starts a new call), passes a repeated id or name once, and finishes a stop after tool calls as tool-calls', async () => {
    const { parts, error } = await stream(
      {},
      {
        type: 'chunks',
        singleWrite: true,
        deltas: [
          { tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'lookup', arguments: '{"q":' } }] },
          { tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'lookup', arguments: '"x"}' } }] },
          { tool_calls: [{ id: 'call_b', type: 'function', function: { name: 'lookup', arguments: '{}' } }] },
        ],
      },
    );
    expect(error).toBeUndefined();
    expect(parts).toEqual([
      { type: 'tool-call-delta', index: 0, id: 'call_a', name: 'lookup', argumentsDelta: '{"q":' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '"x"}' },
      { type: 'tool-call-delta', index: 1, id: 'call_b', name: 'lookup', argumentsDelta: '{}' },
      expect.objectContaining({ type: 'finish', finishReason: 'tool-calls' }),
    ]);
  });

  it('gives a call whose first piece has no id one, and keeps it for the later pieces', async () => {
    const { parts, error } = await stream(
      {},
      {
        type: 'chunks',
        deltas: [
          { tool_calls: [{ index: 0, function: { name: 'lookup', arguments: '{"q"' } }] },
          { tool_calls: [{ index: 0, function: { arguments: ':1}' } }] },
        ],
        finishReason: 'tool_calls',
      },
    );
    expect(error).toBeUndefined();
    const deltas = toolCallDeltas(parts);
    expect(deltas[0]!.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(deltas.filter((part) => part.id !== undefined)).toHaveLength(1);
    expect(deltas.map((part) => part.argumentsDelta).join('')).toBe('{"q":1}');
  });

  it('maps the legacy function_call finish reason to tool-calls', async () => {
    const { parts } = await stream({}, { type: 'stream', tokenCount: 1, finishReason: 'function_call' });
    expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'tool-calls' });
  });

  it('fails with UPSTREAM_BAD_RESPONSE on a tool call piece of the wrong shape', async () => {
    const { error } = await stream({}, { type: 'chunks', deltas: [{ tool_calls: [{ index: 'first', function: { arguments: '{}' } }] }] });
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE', message: expect.stringContaining('tool_calls') });
  });

  it("keeps an upstream's own 400 about a parameter it does not support as UPSTREAM_BAD_REQUEST", async () => {
    const { parts, error } = await stream(
      { tools: [WEATHER_TOOL] },
      { type: 'http-error', status: 400, message: "'tools' is not supported with this model.", code: 'unsupported_parameter' },
    );
    expect(parts).toEqual([]);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ code: 'UPSTREAM_BAD_REQUEST', statusCode: 400, provider: 'openai' });
    expect((error as ProviderError).message).toContain("'tools' is not supported with this model.");
  });
});

describe('the model catalog', () => {
  const CHAT_CAPABILITIES = ['chat', 'tools', 'vision', 'json-schema', 'reasoning'];

  it('lists configured and discovered chat models with every chat feature: the upstream decides', async () => {
    const configured = createOpenAICompatibleProvider({ id: 'a', baseURL: upstream.baseURL, models: ['m1'], connectTimeoutMs: 5_000, idleTimeoutMs: 5_000 });
    expect(await configured.listModels()).toEqual([{ id: 'm1', capabilities: CHAT_CAPABILITIES }]);
    expect(await provider().listModels()).toEqual([
      { id: 'gpt-4o-mini', capabilities: CHAT_CAPABILITIES },
      { id: 'deepseek-reasoner', capabilities: CHAT_CAPABILITIES },
    ]);
  });

  it('lists a model configured for chat and images with both', async () => {
    const both = createOpenAICompatibleProvider({
      id: 'a',
      baseURL: upstream.baseURL,
      models: ['omni', 'text'],
      imageModels: ['omni', 'painter'],
      connectTimeoutMs: 5_000,
      idleTimeoutMs: 5_000,
    });
    expect(await both.listModels()).toEqual([
      { id: 'omni', capabilities: ['chat', 'image', 'tools', 'vision', 'json-schema', 'reasoning'] },
      { id: 'text', capabilities: CHAT_CAPABILITIES },
      { id: 'painter', capabilities: ['image'] },
    ]);
  });

  it("pollinations lists its text models with the same features and passes tools to its text endpoint", async () => {
    const pollinations = createPollinationsProvider({
      imageBaseURL: await unusedBaseURL(),
      textBaseURL: upstream.baseURL,
      imageModels: ['flux'],
      textModels: ['openai'],
      connectTimeoutMs: 5_000,
      idleTimeoutMs: 5_000,
    });
    expect(await pollinations.listModels()).toEqual([
      { id: 'openai', capabilities: CHAT_CAPABILITIES },
      { id: 'flux', capabilities: ['image'] },
    ]);
    upstream.setScenario({ type: 'tool-calls', callCount: 1 });
    const parts: ChatStreamPart[] = [];
    const request: ChatRequest = { model: 'openai', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER_TOOL], toolChoice: { name: 'get_weather' } };
    for await (const part of pollinations.streamChat(request, { signal: new AbortController().signal })) parts.push(part);
    expect(lastBody()).toMatchObject({ tools: [{ type: 'function', function: WEATHER_TOOL }], tool_choice: { type: 'function', function: { name: 'get_weather' } } });
    expect(toolCallDeltas(parts).map((part) => part.argumentsDelta).join('')).toBe(fakeToolCalls(1)[0]!.arguments);
    expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'tool-calls' });
  });
});
