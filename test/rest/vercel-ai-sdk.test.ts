/**
 * The Vercel AI SDK (`ai` v6 with `@ai-sdk/openai-compatible` v2) pointed at the gateway's `/v1`,
 * with a local server speaking OpenAI's exact SSE format behind the gateway
 * (`test/helpers/fake-openai-upstream.ts`): tool calls arrive parsed, reasoning arrives apart.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { jsonSchema, streamText, tool } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fakeReasoning, fakeTokens, fakeToolCalls, startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let gateway: ReturnType<typeof createOpenAICompatible>;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream({
    scenarios: {
      weather: { type: 'tool-calls', callCount: 2, pieceSize: 4 },
      reasoner: { type: 'reasoning', reasoningCount: 6, tokenCount: 5 },
    },
  });
  started = await startApp({
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['weather', 'reasoner'], idleTimeoutMs: 20_000 }]),
  });
  gateway = createOpenAICompatible({ name: 'gateway', baseURL: `${started.url}/v1`, apiKey: 'unused', includeUsage: true });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

/** The body the upstream received for the last chat request. */
const lastUpstreamBody = () => upstream.chatRequests().at(-1)!.body as Record<string, unknown>;

const expectedInputs = fakeToolCalls(2).map((call) => ({ toolCallId: call.id, toolName: 'get_weather', input: JSON.parse(call.arguments) as unknown }));

describe('the Vercel AI SDK through the gateway', () => {
  it('streamText with a zod tool: both calls arrive parsed, finish reason tool-calls', async () => {
    const result = streamText({
      model: gateway.chatModel('fake:weather'),
      prompt: 'What is the weather in Paris and Tokyo?',
      tools: {
        get_weather: tool({
          description: 'The weather in a city now.',
          inputSchema: z.object({ city: z.string(), unit: z.enum(['celsius', 'fahrenheit']) }),
        }),
      },
    });
    const streamedCalls: unknown[] = [];
    for await (const part of result.fullStream) {
      if (part.type === 'error') throw part.error;
      if (part.type === 'tool-call') streamedCalls.push(part);
    }
    expect(await result.finishReason).toBe('tool-calls');
    expect(await result.toolCalls).toMatchObject(expectedInputs);
    expect(streamedCalls).toMatchObject(expectedInputs);

    const body = lastUpstreamBody();
    expect(body.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'The weather in a city now.',
          parameters: expect.objectContaining({ type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } } }),
        },
      },
    ]);
  });

  it('streamText with a jsonSchema tool runs it and sends the tool result back in the next step', async () => {
    const executed: unknown[] = [];
    const result = streamText({
      model: gateway.chatModel('fake:weather'),
      prompt: 'What is the weather in Paris and Tokyo?',
      tools: {
        get_weather: tool({
          inputSchema: jsonSchema<{ city: string; unit: string }>({
            type: 'object',
            properties: { city: { type: 'string' }, unit: { type: 'string' } },
            required: ['city', 'unit'],
          }),
          execute: async (input) => {
            executed.push(input);
            return { celsius: input.city === 'Paris' ? 21 : 9 };
          },
        }),
      },
    });
    await result.consumeStream({ onError: (error) => expect.fail(String(error)) });
    expect(executed).toEqual(expectedInputs.map((call) => call.input));
    expect(await result.toolResults).toMatchObject(expectedInputs.map((call, index) => ({ ...call, output: { celsius: index === 0 ? 21 : 9 } })));
    // One step (no stopWhen): the tool results are there for the caller to send back; send them.
    const followUp = streamText({
      model: gateway.chatModel('fake:weather'),
      messages: [{ role: 'user', content: 'What is the weather in Paris and Tokyo?' }, ...(await result.response).messages],
    });
    await followUp.consumeStream();
    const messages = lastUpstreamBody().messages as Array<Record<string, unknown>>;
    expect(messages.slice(1)).toEqual([
      {
        role: 'assistant',
        content: null,
        tool_calls: fakeToolCalls(2).map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
      },
      { role: 'tool', tool_call_id: 'call_fake_0', content: JSON.stringify({ celsius: 21 }) },
      { role: 'tool', tool_call_id: 'call_fake_1', content: JSON.stringify({ celsius: 9 }) },
    ]);
  });

  it('streamText from a reasoning model: reasoning and text arrive apart', async () => {
    const result = streamText({ model: gateway.chatModel('fake:reasoner'), prompt: 'Tell me a story.' });
    await result.consumeStream({ onError: (error) => expect.fail(String(error)) });
    expect(await result.reasoningText).toBe(fakeReasoning(6).join(''));
    expect(await result.text).toBe(fakeTokens(5).join(''));
    expect(await result.finishReason).toBe('stop');
  });
});
