/**
 * Tool calls, images, JSON schemas and reasoning through `POST /v1/chat/completions` with the
 * official `openai` SDK (and plain `fetch` for gpt4free's fields): the app on port 0 and a local
 * server speaking OpenAI's exact SSE format behind it (`test/helpers/fake-openai-upstream.ts`).
 */
import OpenAI, { BadRequestError, InternalServerError } from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fakeReasoning, fakeTokens, fakeToolCalls, startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const WEATHER_JSON = '{"city":"Paris","celsius":21}';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let openai: OpenAI;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream({
    scenarios: {
      weather: { type: 'tool-calls', callCount: 2, pieceSize: 3 },
      reasoner: { type: 'reasoning', reasoningCount: 5, tokenCount: 4 },
      echo: { type: 'echo' },
      'json-writer': { type: 'stream', tokens: WEATHER_JSON.match(/.{1,4}/g)! },
      'no-tools': { type: 'http-error', status: 400, message: "'tools' is not supported with this model.", code: 'unsupported_parameter' },
    },
  });
  started = await startApp({
    BREAKER_ENABLED: 'false',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      { id: 'fake', baseURL: upstream.baseURL, models: ['weather', 'reasoner', 'echo', 'json-writer', 'no-tools'], idleTimeoutMs: 20_000 },
    ]),
  });
  openai = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city now.',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
    strict: true,
  },
};

/** The tool as the upstream receives it: as the client sent it, `strict` included. */
const upstreamWeatherTool = {
  type: 'function',
  function: { name: 'get_weather', description: weatherTool.function.description, parameters: weatherTool.function.parameters, strict: true },
};

const question = [{ role: 'user' as const, content: 'What is the weather in Paris and Tokyo?' }];

/** The fake's calls as OpenAI writes them in a message. */
const expectedToolCalls = fakeToolCalls(2).map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }));

/** The body the upstream received for the last chat request. */
const lastUpstreamBody = () => upstream.chatRequests().at(-1)!.body as Record<string, unknown>;

describe('tool calls with the official openai SDK', () => {
  it('streams tool calls the SDK assembles: finalChatCompletion() has both calls, parsed, and finish_reason "tool_calls"', async () => {
    const stream = openai.chat.completions.stream({ model: 'fake:weather', messages: question, tools: [weatherTool] });
    const argumentsDone: Array<{ index: number; name: string; parsed_arguments: unknown }> = [];
    stream.on('tool_calls.function.arguments.done', (event) => argumentsDone.push(event));
    const completion = await stream.finalChatCompletion();

    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toEqual(
      expectedToolCalls.map((call) => ({ ...call, function: { ...call.function, parsed_arguments: JSON.parse(call.function.arguments) } })),
    );
    expect(argumentsDone).toMatchObject([
      { index: 0, name: 'get_weather', parsed_arguments: { city: 'Paris', unit: 'celsius' } },
      { index: 1, name: 'get_weather', parsed_arguments: { city: 'Tokyo', unit: 'celsius' } },
    ]);
    expect(lastUpstreamBody()).toMatchObject({ tools: [upstreamWeatherTool] });
  });

  it('streams the pieces as OpenAI does: id, type and name with the first piece of each call, arguments after', async () => {
    const stream = await openai.chat.completions.create({ model: 'fake:weather', messages: question, tools: [weatherTool], stream: true });
    const pieces: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    const finishReasons: Array<string | null> = [];
    for await (const chunk of stream) {
      pieces.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
      finishReasons.push(chunk.choices[0]?.finish_reason ?? null);
    }
    for (const [index, call] of expectedToolCalls.entries()) {
      const ofCall = pieces.filter((piece) => piece.index === index);
      expect(ofCall[0]).toMatchObject({ index, id: call.id, type: 'function', function: { name: 'get_weather' } });
      expect(ofCall.slice(1).every((piece) => piece.id === undefined && piece.function?.name === undefined)).toBe(true);
      expect(ofCall.map((piece) => piece.function?.arguments ?? '').join('')).toBe(call.function.arguments);
    }
    expect(finishReasons.filter((reason) => reason !== null)).toEqual(['tool_calls']);
  });

  it('answers a non-streamed completion with message.tool_calls and null content', async () => {
    const completion = await openai.chat.completions.create({ model: 'fake:weather', messages: question, tools: [weatherTool], tool_choice: 'required' });
    expect(completion.choices[0]).toMatchObject({ finish_reason: 'tool_calls', message: { role: 'assistant', content: null } });
    expect(completion.choices[0]!.message.tool_calls).toEqual(expectedToolCalls);
    expect(lastUpstreamBody()).toMatchObject({ tool_choice: 'required' });
  });

  it('hands a tool-result turn (assistant tool_calls, tool messages), tool_choice and parallel_tool_calls to the upstream intact', async () => {
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      ...question,
      { role: 'assistant', content: null, tool_calls: expectedToolCalls as OpenAI.Chat.Completions.ChatCompletionMessageToolCall[] },
      { role: 'tool', tool_call_id: 'call_fake_0', content: '{"celsius":21}' },
      { role: 'tool', tool_call_id: 'call_fake_1', content: '{"celsius":9}' },
    ];
    const completion = await openai.chat.completions.create({
      model: 'fake:echo',
      messages,
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
    });
    const expected = {
      messages: [
        { role: 'user', content: 'What is the weather in Paris and Tokyo?' },
        { role: 'assistant', content: null, tool_calls: expectedToolCalls },
        { role: 'tool', tool_call_id: 'call_fake_0', content: '{"celsius":21}' },
        { role: 'tool', tool_call_id: 'call_fake_1', content: '{"celsius":9}' },
      ],
      tools: [upstreamWeatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
    };
    expect(lastUpstreamBody()).toMatchObject(expected);
    // The echo scenario answers the body it received: what the client reads is what the upstream got.
    expect(JSON.parse(completion.choices[0]!.message.content!)).toMatchObject(expected);
  });

  it("keeps an upstream's own 400 about a parameter it does not support as UPSTREAM_BAD_REQUEST with its message", async () => {
    const error = await openai.chat.completions.create({ model: 'fake:no-tools', messages: question, tools: [weatherTool] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 502, code: 'UPSTREAM_BAD_REQUEST' });
    expect((error as InternalServerError).message).toContain("'tools' is not supported with this model.");
  });

  it('refuses tools for a model whose provider lists no tools capability: 400 UNSUPPORTED_INPUT, nothing sent upstream', async () => {
    const requestsBefore = upstream.chatRequests().length;
    const newestGeneration = async () => (await started.app.generations.listGenerations({ first: 1 })).records[0]?.id;
    const newestBefore = await newestGeneration();
    for (const stream of [false, true]) {
      const error = await openai.chat.completions
        .create({ model: 'llama-cpp:stories260K', messages: question, tools: [weatherTool], stream })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error).toMatchObject({ status: 400, code: 'UNSUPPORTED_INPUT' });
      expect((error as BadRequestError).message).toContain('tools');
    }
    expect(upstream.chatRequests()).toHaveLength(requestsBefore);
    // The start failed before a generation existed.
    expect(await newestGeneration()).toBe(newestBefore);
  });
});

describe('response_format with the official openai SDK', () => {
  it('parses a json_schema reply with zodResponseFormat (zod 4), and the schema reaches the upstream as sent', async () => {
    const Weather = z.object({ city: z.string(), celsius: z.number() });
    const responseFormat = zodResponseFormat(Weather, 'weather');
    const completion = await openai.chat.completions.parse({ model: 'fake:json-writer', messages: question, response_format: responseFormat });
    expect(completion.choices[0]!.message.parsed).toEqual({ city: 'Paris', celsius: 21 });
    expect(lastUpstreamBody().response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'weather', schema: responseFormat.json_schema.schema, strict: true },
    });
    expect(responseFormat.json_schema.schema).toMatchObject({ type: 'object', properties: { city: { type: 'string' }, celsius: { type: 'number' } } });
  });

  it('hands json_object on as it is', async () => {
    await openai.chat.completions.create({ model: 'fake:json-writer', messages: question, response_format: { type: 'json_object' } });
    expect(lastUpstreamBody().response_format).toEqual({ type: 'json_object' });
  });
});

describe('images', () => {
  it('hands image parts to the upstream intact, as a content array', async () => {
    const content: OpenAI.Chat.Completions.ChatCompletionContentPart[] = [
      { type: 'text', text: 'What is in these pictures?' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==', detail: 'high' } },
      { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
    ];
    await openai.chat.completions.create({ model: 'fake:echo', messages: [{ role: 'user', content }] });
    expect(lastUpstreamBody().messages).toEqual([{ role: 'user', content }]);
  });

  it("puts gpt4free's image field on the last user message as an image part", async () => {
    const response = await postJson(started.url, '/v1/chat/completions', {
      model: 'echo',
      provider: 'fake',
      messages: [{ role: 'user', content: 'What is this?' }],
      image: 'data:image/jpeg;base64,/9j/4AAQ',
    });
    expect(response.status).toBe(200);
    expect(lastUpstreamBody().messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ' } },
        ],
      },
    ]);
  });
});

describe('reasoning', () => {
  it('streams delta.reasoning_content before the content, and sends reasoning_effort upstream', async () => {
    const stream = await openai.chat.completions.create({ model: 'fake:reasoner', messages: question, stream: true, reasoning_effort: 'low' });
    let reasoning = '';
    let content = '';
    let reasoningAfterContent = false;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      if (delta?.reasoning_content) {
        reasoning += delta.reasoning_content;
        if (content !== '') reasoningAfterContent = true;
      }
      content += delta?.content ?? '';
    }
    expect(reasoning).toBe(fakeReasoning(5).join(''));
    expect(content).toBe(fakeTokens(4).join(''));
    expect(reasoningAfterContent).toBe(false);
    expect(lastUpstreamBody().reasoning_effort).toBe('low');
  });

  it('answers a non-streamed completion with message.reasoning_content', async () => {
    const completion = await openai.chat.completions.create({ model: 'fake:reasoner', messages: question });
    const message = completion.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning_content?: string };
    expect(message.content).toBe(fakeTokens(4).join(''));
    expect(message.reasoning_content).toBe(fakeReasoning(5).join(''));
  });
});
