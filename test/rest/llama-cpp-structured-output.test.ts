/**
 * Structured output and tool calls over the REST API with the real ChatML test model
 * (`chat/stories260K-chatml`): the app on port 0, plain `fetch`, the official `openai` client and
 * the Vercel AI SDK (`ai` + `@ai-sdk/openai-compatible`) against `/v1`. The replies are held to the
 * JSON schema by llama.cpp's grammar, so they parse and match it (checked with zod).
 */
import { join } from 'node:path';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateObject } from 'ai';
import OpenAI, { BadRequestError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { collectChatStream, postJson } from '../helpers/rest-clients.js';
import { SHARED_MODELS_DIR, startApp, type StartedApp } from '../helpers/start-app.js';

const MODEL = 'stories260K-chatml';

/** A JSON schema as OpenAI's `response_format.json_schema.schema` carries it (strict: every property required, no others). */
const STORY_SCHEMA = {
  type: 'object',
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 40 },
    hero: { type: 'object', properties: { name: { type: 'string', maxLength: 20 }, animal: { enum: ['cat', 'dog', 'bird'] } }, required: ['name', 'animal'], additionalProperties: false },
    happy: { type: 'boolean' },
    pages: { type: 'number' },
  },
  required: ['title', 'hero', 'happy', 'pages'],
  additionalProperties: false,
};
/** Whether `value` is valid against the JSON Schema `schema` (zod 4's `z.fromJSONSchema` validates it). */
const matchesSchema = (schema: object, value: unknown): boolean => z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]).safeParse(value).success;
const matchesStorySchema = (text: string): boolean => matchesSchema(STORY_SCHEMA, JSON.parse(text));

let started: StartedApp;
let openai: OpenAI;

beforeAll(async () => {
  // A context large enough for the tool documentation node-llama-cpp writes into the prompt.
  started = await startApp({ MODELS_DIR: join(SHARED_MODELS_DIR, 'chat'), LLAMA_CONTEXT_SIZE: '2048' });
  openai = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await started?.stop();
});

const messages = [{ role: 'user' as const, content: 'Write a short story as JSON.' }];
const jsonSchemaFormat = { type: 'json_schema' as const, json_schema: { name: 'story', schema: STORY_SCHEMA, strict: true } };

describe('structured output over REST with llama-cpp', () => {
  it('plain fetch, not streaming: the message content parses and matches the schema', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', { model: MODEL, messages, max_tokens: 300, temperature: 0, response_format: jsonSchemaFormat });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: Array<{ message: { content: string }; finish_reason: string }> };
    expect(body.choices[0]!.finish_reason).toBe('stop');
    expect(matchesStorySchema(body.choices[0]!.message.content)).toBe(true);
  });

  it('plain fetch, streaming: the concatenated deltas parse and match the schema', async () => {
    const response = await postJson(started.url, '/v1/chat/completions', {
      model: MODEL,
      messages,
      max_tokens: 300,
      temperature: 0.7,
      seed: 7,
      stream: true,
      response_format: jsonSchemaFormat,
    });
    const { text, done, error } = await collectChatStream(response);
    expect(error).toBeUndefined();
    expect(done).toBe(true);
    expect(matchesStorySchema(text)).toBe(true);
  });

  it('the openai client with response_format json_schema: the reply parses and matches the schema', async () => {
    const completion = await openai.chat.completions.create({ model: MODEL, messages, max_tokens: 300, temperature: 0, response_format: jsonSchemaFormat });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    expect(matchesStorySchema(completion.choices[0]!.message.content!)).toBe(true);
  });

  it('the openai client with a schema the grammar cannot enforce: refused with the keyword named', async () => {
    const error = await openai.chat.completions
      .create({
        model: MODEL,
        messages,
        response_format: { type: 'json_schema', json_schema: { name: 'code', schema: { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]{3}$' } } } } },
      })
      .catch((caught: unknown) => caught);
    // The generation fails before any text: the REST reply is a 400 naming the keyword.
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).code).toBe('UNSUPPORTED_INPUT');
    expect((error as Error).message).toMatch(/"pattern" at #\/properties\/code/);
  });

  it('the Vercel AI SDK generateObject with a zod schema: the object arrives and matches', async () => {
    // The request bodies the SDK sends, to see that it asks for a JSON schema (not just JSON).
    const sentBodies: Array<{ response_format?: { type: string; json_schema?: { name?: string } } }> = [];
    const gateway = createOpenAICompatible({
      name: 'gateway',
      baseURL: `${started.url}/v1`,
      supportsStructuredOutputs: true,
      fetch: (input, init) => {
        sentBodies.push(JSON.parse(String(init?.body)));
        return fetch(input, init);
      },
    });
    const schema = z.object({ name: z.string().max(30), age: z.number(), pet: z.enum(['cat', 'dog']), friends: z.array(z.string().max(15)).max(2) });
    const { object, finishReason } = await generateObject({
      model: gateway.chatModel(MODEL),
      schema,
      schemaName: 'child',
      prompt: 'Describe a child.',
      temperature: 0,
      maxOutputTokens: 300,
      maxRetries: 0,
    });
    expect(sentBodies).toHaveLength(1);
    expect(sentBodies[0]!.response_format).toMatchObject({ type: 'json_schema', json_schema: { name: 'child' } });
    expect(finishReason).toBe('stop');
    expect(schema.parse(object)).toEqual(object);
  });
});

describe('tool calls over REST with llama-cpp', () => {
  const weatherParameters = { type: 'object', properties: { city: { type: 'string', maxLength: 20 } }, required: ['city'] };
  const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
    { type: 'function', function: { name: 'get_weather', description: 'Get the weather in a city', parameters: weatherParameters } },
  ];

  it('a forced tool call arrives as tool_calls with finish_reason tool_calls, and its result makes the next turn', async () => {
    const question: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const completion = await openai.chat.completions.create({ model: MODEL, messages: question, tools, tool_choice: 'required', max_tokens: 100, temperature: 0 });
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls![0]!;
    expect(call).toMatchObject({ type: 'function', id: expect.stringMatching(/^call_/), function: { name: 'get_weather' } });
    if (call.type !== 'function') throw new Error('expected a function call');
    expect(matchesSchema(weatherParameters, JSON.parse(call.function.arguments))).toBe(true);

    const next = await openai.chat.completions.create({
      model: MODEL,
      messages: [...question, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature":21}' }],
      tools,
      max_tokens: 10,
      temperature: 0,
    });
    expect(next.choices[0]!.finish_reason).toBe('length');
    expect(next.choices[0]!.message.content!.length).toBeGreaterThan(0);
  });

  it('tools together with a JSON reply format are refused (node-llama-cpp takes one or the other)', async () => {
    const error = await openai.chat.completions
      .create({ model: MODEL, messages, tools, response_format: { type: 'json_object' } })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).code).toBe('UNSUPPORTED_INPUT');
    expect((error as Error).message).toMatch(/JSON format while it may call tools/);
  });
});
