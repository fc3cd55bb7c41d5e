/**
 * Structured replies, tools and refusals of the `llama-cpp` provider with the real test models:
 * `stories260K` (no chat template: the plain completion path) and `chat/stories260K-chatml` (a
 * ChatML template: node-llama-cpp's chat path). Replies held to a JSON-schema grammar parse and
 * match the schema (checked with zod's `z.fromJSONSchema` of the same schema); a forced tool choice
 * yields a real function call; what the models cannot take is refused with UNSUPPORTED_INPUT.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePartialJson } from 'ai';
import { getLlama, LlamaLogLevel, readGgufFileInfo, type Llama } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { readChatTemplate } from '../../src/providers/llama-cpp/gguf-metadata.js';
import { createLlamaCppProvider } from '../../src/providers/llama-cpp/llama-cpp-provider.js';
import { GrammarCache } from '../../src/providers/llama-cpp/llama-grammar.js';
import { toGrammarSchema, UnsupportedSchemaError } from '../../src/providers/llama-cpp/llama-json-schema.js';
import { ProviderError, type ChatRequest, type ChatStreamPart, type ChatTool } from '../../src/providers/provider.js';
import { SHARED_MODELS_DIR } from '../helpers/start-app.js';

const CHAT_MODELS_DIR = join(SHARED_MODELS_DIR, 'chat');
const plain = createLlamaCppProvider({ modelsDir: SHARED_MODELS_DIR, threads: 1, contextSize: 512, sequences: 1, gpu: false });
// The tool documentation node-llama-cpp writes into the prompt takes about 600 of this model's (small) tokens.
const chat = createLlamaCppProvider({ modelsDir: CHAT_MODELS_DIR, threads: 1, contextSize: 2048, sequences: 1, gpu: false });
const smallChat = createLlamaCppProvider({ modelsDir: CHAT_MODELS_DIR, threads: 1, contextSize: 512, sequences: 1, gpu: false });

afterAll(async () => {
  await Promise.all([plain.close?.(), chat.close?.(), smallChat.close?.()]);
});

type Finish = Extract<ChatStreamPart, { type: 'finish' }>;
type ToolCallDelta = Extract<ChatStreamPart, { type: 'tool-call-delta' }>;

async function run(
  provider: typeof plain,
  request: Omit<ChatRequest, 'model'>,
): Promise<{ text: string; toolCalls: ToolCallDelta[]; finish: Finish; parts: ChatStreamPart[] }> {
  const model = provider === plain ? 'stories260K' : 'stories260K-chatml';
  const parts: ChatStreamPart[] = [];
  for await (const part of provider.streamChat({ model, ...request }, { signal: new AbortController().signal })) parts.push(part);
  const finish = parts.at(-1);
  if (finish?.type !== 'finish') throw new Error('the stream ended without a finish part');
  const text = parts.map((part) => (part.type === 'text-delta' ? part.text : '')).join('');
  return { text, toolCalls: parts.filter((part): part is ToolCallDelta => part.type === 'tool-call-delta'), finish, parts };
}

/** Whether `value` is valid against the JSON Schema `schema` (zod 4's `z.fromJSONSchema` validates it). */
const matchesSchema = (schema: object, value: unknown): boolean => z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]).safeParse(value).success;

const PERSON_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 40 },
    age: { type: 'number' },
    pet: { enum: ['cat', 'dog', 'fish'] },
    toys: { type: 'array', items: { type: 'string', maxLength: 20 }, maxItems: 2 },
  },
  required: ['name', 'age', 'pet', 'toys'],
  additionalProperties: false,
};

/** A schema that needs the rewrites: `anyOf`, a list of types, draft-07 `definitions` and `$ref`, an untyped `properties`. */
const REWRITTEN_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  definitions: { color: { type: 'string', enum: ['red', 'blue'] } },
  properties: {
    nickname: { type: ['string', 'null'], maxLength: 12 },
    favourite: { $ref: '#/definitions/color' },
    size: { anyOf: [{ type: 'integer' }, { const: 'big' }] },
  },
  required: ['favourite'],
};

const WEATHER_TOOL: ChatTool = {
  name: 'get_weather',
  description: 'Get the weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 } }, required: ['city'], additionalProperties: false },
};

/**
 * A GGUF file of version 3 with no tensors and these metadata entries (a string, an array of
 * strings, or an array of float32 zeros), as https://github.com/ggml-org/ggml/blob/master/docs/gguf.md lays it out.
 */
function ggufHeader(entries: Array<[string, { string: string } | { strings: string[] } | { floats: number }]>): Buffer {
  const uint32 = (value: number): Buffer => Buffer.from(new Uint32Array([value]).buffer);
  const uint64 = (value: number): Buffer => Buffer.from(new BigUint64Array([BigInt(value)]).buffer);
  const text = (value: string): Buffer => Buffer.concat([uint64(Buffer.byteLength(value)), Buffer.from(value)]);
  const values = entries.map(([key, value]) => {
    if ('string' in value) return Buffer.concat([text(key), uint32(8), text(value.string)]);
    if ('strings' in value) return Buffer.concat([text(key), uint32(9), uint32(8), uint64(value.strings.length), ...value.strings.map(text)]);
    return Buffer.concat([text(key), uint32(9), uint32(6), uint64(value.floats), Buffer.alloc(4 * value.floats)]);
  });
  return Buffer.concat([Buffer.from('GGUF'), uint32(3), uint64(0), uint64(entries.length), ...values]);
}

const expectUnsupported = async (promise: Promise<unknown>, message: RegExp): Promise<void> => {
  const error = await promise.catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(ProviderError);
  expect(error).toMatchObject({ code: 'UNSUPPORTED_INPUT', provider: 'llama-cpp' });
  expect((error as Error).message).toMatch(message);
};

describe('llama-cpp capabilities', () => {
  it('declares chat and json-schema for every model, tools only with a chat template, never vision or reasoning', async () => {
    expect(await plain.listModels()).toEqual([{ id: 'stories260K', capabilities: ['chat', 'json-schema'] }]);
    expect(await chat.listModels()).toEqual([{ id: 'stories260K-chatml', capabilities: ['chat', 'json-schema', 'tools'] }]);
  });

  it('reads the chat template from the GGUF header as node-llama-cpp does, without loading the model', async () => {
    for (const path of [join(SHARED_MODELS_DIR, 'stories260K.gguf'), join(CHAT_MODELS_DIR, 'stories260K-chatml.gguf')]) {
      const info = await readGgufFileInfo(path, { readTensorInfo: false, logWarnings: false });
      expect(await readChatTemplate(path)).toBe(info.metadata.tokenizer?.chat_template);
    }
    expect(await readChatTemplate(join(CHAT_MODELS_DIR, 'stories260K-chatml.gguf'))).toContain('<|im_start|>');
    await expect(readChatTemplate(join(SHARED_MODELS_DIR, 'README.md'))).rejects.toThrow('not a GGUF file');
  });

  it('finds the chat template behind metadata larger than one read (a big vocabulary and its scores)', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'gguf-header-'));
    try {
      const template = "{% for message in messages %}{{ message['content'] }}{% endfor %}";
      const words = Array.from({ length: 200_000 }, (_, index) => `token-${index}`);
      const path = join(folder, 'big-vocabulary.gguf');
      await writeFile(path, ggufHeader([
        ['general.architecture', { string: 'llama' }],
        ['tokenizer.ggml.tokens', { strings: words }],
        // 1.6 MB of scores: more than one read, skipped without reading.
        ['tokenizer.ggml.scores', { floats: 400_000 }],
        ['tokenizer.chat_template', { string: template }],
      ]));
      expect(await readChatTemplate(path)).toBe(template);
      // node-llama-cpp's own reader sees the same file alike.
      expect((await readGgufFileInfo(path, { readTensorInfo: false, logWarnings: false })).metadata.tokenizer?.chat_template).toBe(template);
      const withoutTemplate = join(folder, 'no-template.gguf');
      await writeFile(withoutTemplate, ggufHeader([['tokenizer.ggml.scores', { floats: 400_000 }]]));
      expect(await readChatTemplate(withoutTemplate)).toBeUndefined();
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('llama-cpp JSON replies', () => {
  it.each([
    ['chat template', () => chat],
    ['plain prompt', () => plain],
  ])('holds the reply to a JSON schema (%s): it parses and matches', async (_, provider) => {
    const { text, finish } = await run(provider(), {
      messages: [{ role: 'user', content: 'Tell me about a child and a pet.' }],
      maxTokens: 300,
      temperature: 0,
      responseFormat: { type: 'json-schema', schema: PERSON_SCHEMA, name: 'person', strict: true },
    });
    expect(finish.finishReason).toBe('stop');
    const value = JSON.parse(text);
    expect(matchesSchema(PERSON_SCHEMA, value)).toBe(true);
  });

  it('rewrites anyOf, type lists, definitions and refs into what the grammar takes, and the reply still matches the original schema', async () => {
    for (const seed of [1, 2, 3]) {
      const { text, finish } = await run(chat, {
        messages: [{ role: 'user', content: 'Describe a balloon.' }],
        maxTokens: 200,
        temperature: 0.8,
        seed,
        responseFormat: { type: 'json-schema', schema: REWRITTEN_SCHEMA },
      });
      expect(finish.finishReason).toBe('stop');
      expect(matchesSchema(REWRITTEN_SCHEMA, JSON.parse(text))).toBe(true);
    }
  });

  it('holds a json-object reply to JSON with an object at the top (this tiny model never closes one before maxTokens)', async () => {
    for (const provider of [chat, plain]) {
      const { text, finish } = await run(provider, { messages: [{ role: 'user', content: 'Give me a JSON object.' }], maxTokens: 60, temperature: 0, responseFormat: { type: 'json-object' } });
      expect(text.trimStart().startsWith('{')).toBe(true);
      // Cut at maxTokens, the text is the start of a JSON object: completing its open strings and brackets makes it parse.
      const parsed = await parsePartialJson(text);
      expect(parsed.state).toBe(finish.finishReason === 'stop' ? 'successful-parse' : 'repaired-parse');
      expect(parsed.value).toBeTypeOf('object');
      expect(Array.isArray(parsed.value)).toBe(false);
    }
  });

  it('refuses a schema the grammar cannot enforce with UNSUPPORTED_INPUT naming each keyword and where', async () => {
    const schema = { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]+$' }, count: { type: 'integer', minimum: 1 } }, allOf: [{}] };
    await expectUnsupported(
      run(chat, { messages: [{ role: 'user', content: 'Hi' }], responseFormat: { type: 'json-schema', schema } }),
      /"allOf" at #; "pattern" at #\/properties\/code; "minimum" at #\/properties\/count/,
    );
  });

  it('converts schemas: keeps what the grammar enforces, rewrites what it can, refuses the rest', () => {
    expect(toGrammarSchema({ type: 'object', properties: { a: { type: 'string' } }, required: ['a'] })).toEqual({ type: 'object', properties: { a: { type: 'string' } } });
    expect(toGrammarSchema({ anyOf: [{ type: 'string' }, { type: 'null' }] })).toEqual({ oneOf: [{ type: 'string' }, { type: 'null' }] });
    expect(toGrammarSchema({ type: ['object', 'null'] })).toEqual({ oneOf: [{ type: 'object', properties: {}, additionalProperties: true }, { type: 'null' }] });
    expect(toGrammarSchema({ type: 'array', items: [{ type: 'string' }], additionalItems: false })).toEqual({ type: 'array', prefixItems: [{ type: 'string' }], maxItems: 1 });
    const refused = (schema: unknown): string[] => {
      try {
        toGrammarSchema(schema);
        return [];
      } catch (error) {
        expect(error).toBeInstanceOf(UnsupportedSchemaError);
        return (error as UnsupportedSchemaError).problems;
      }
    };
    expect(refused({ type: 'object', properties: { a: { type: 'string' } }, required: ['b'] })).toEqual(['the required property "b" that is not among "properties" at #']);
    expect(refused({ type: 'string', format: 'email' })).toEqual(['the format "email" (only date-time, date, time) at #']);
    expect(refused({ $ref: '#/definitions/missing' })).toHaveLength(1);
    expect(refused({ type: 'array', uniqueItems: true, maxItems: 1, minItems: 2 })).toEqual(['"uniqueItems" at #', '"maxItems" below "minItems" at #']);
    expect(refused(false)).toEqual(['the schema false (no value matches it) at #']);
  });

  it('builds a grammar once per schema text and model', async () => {
    const llama: Llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    try {
      const grammars = new GrammarCache(llama);
      const format = { type: 'json-schema' as const, schema: PERSON_SCHEMA };
      const first = await grammars.grammarFor(format);
      expect(await grammars.grammarFor({ type: 'json-schema', schema: JSON.parse(JSON.stringify(PERSON_SCHEMA)) })).toBe(first);
      expect(await grammars.grammarFor({ type: 'json-schema', schema: { ...PERSON_SCHEMA, maxProperties: 4 } })).not.toBe(first);
      expect(await grammars.grammarFor({ type: 'json-object' })).toBe(await grammars.grammarFor({ type: 'json-object' }));
      expect(await grammars.grammarFor({ type: 'text' })).toBeUndefined();
    } finally {
      await llama.dispose();
    }
  });
});

describe('llama-cpp tools', () => {
  let autoReply: Awaited<ReturnType<typeof run>>;

  beforeAll(async () => {
    autoReply = await run(chat, { messages: [{ role: 'user', content: 'What is the weather in Paris?' }], tools: [WEATHER_TOOL], maxTokens: 40, temperature: 0 });
  });

  it.each([['required' as const], [{ name: 'get_weather' }]])('forces a call with toolChoice %j: one tool-call-delta with an id, the name and JSON arguments, then finish tool-calls', async (toolChoice) => {
    const { text, toolCalls, finish } = await run(chat, {
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [WEATHER_TOOL, { name: 'tell_story', description: 'Tell a story' }],
      toolChoice,
      maxTokens: 100,
      temperature: 0,
    });
    expect(text).toBe('');
    expect(toolCalls).toHaveLength(1);
    const [call] = toolCalls;
    expect(call).toMatchObject({ type: 'tool-call-delta', index: 0, id: expect.stringMatching(/^call_[A-Za-z0-9_-]{16}$/) });
    expect(finish).toMatchObject({ finishReason: 'tool-calls', usage: { completionTokens: expect.any(Number) } });
    expect(finish.usage!.completionTokens).toBeGreaterThan(0);
    if (typeof toolChoice === 'object') expect(call!.name).toBe('get_weather');
    // The arguments match the called tool's parameters (`{}` for the tool without any).
    const parameters = call!.name === 'get_weather' ? WEATHER_TOOL.parameters! : { type: 'object', additionalProperties: false };
    expect(matchesSchema(parameters, JSON.parse(call!.argumentsDelta))).toBe(true);
  });

  it('with toolChoice auto offers the tools, and this story model answers with a story instead of a call', () => {
    // The tools are documented in the prompt (hundreds of tokens), but stories260K never writes the call syntax.
    expect(autoReply.finish.usage!.promptTokens).toBeGreaterThan(400);
    expect(autoReply.toolCalls).toEqual([]);
    expect(autoReply.text).toMatch(/[a-z]{3,}/);
    expect(autoReply.finish.finishReason).toBe('length');
  });

  it('with toolChoice none offers no function: the prompt holds no tool documentation', async () => {
    const { finish, toolCalls } = await run(chat, { messages: [{ role: 'user', content: 'What is the weather in Paris?' }], tools: [WEATHER_TOOL], toolChoice: 'none', maxTokens: 5, temperature: 0 });
    expect(toolCalls).toEqual([]);
    expect(finish.usage!.promptTokens).toBeLessThan(60);
  });

  it('takes tool results: an assistant message with tool calls and the tool messages become the model turn it continues', async () => {
    const toolCallTurn = {
      messages: [
        { role: 'user' as const, content: 'What is the weather in Paris?' },
        { role: 'assistant' as const, content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
        { role: 'tool' as const, content: '{"temperature":21,"sky":"sunny"}', toolCallId: 'call_1' },
      ],
      tools: [WEATHER_TOOL],
      maxTokens: 20,
      temperature: 0,
    };
    const { text, finish } = await run(chat, toolCallTurn);
    expect(text.length).toBeGreaterThan(0);
    expect(finish.usage!.completionTokens).toBe(20);
    // The call and its result are part of the prompt.
    expect(finish.usage!.promptTokens).toBeGreaterThan(autoReply.finish.usage!.promptTokens! + 20);
    await expectUnsupported(
      run(chat, { ...toolCallTurn, messages: [...toolCallTurn.messages.slice(0, 2), { role: 'tool', content: '{}', toolCallId: 'call_other' }] }),
      /answers the call "call_other"/,
    );
  });

  it('measures the tool documentation: a context too small for it is refused with CONTEXT_LENGTH_EXCEEDED', async () => {
    const error = await run(smallChat, { messages: [{ role: 'user', content: 'Weather?' }], tools: [WEATHER_TOOL] }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'CONTEXT_LENGTH_EXCEEDED' });
  });

  it('refuses what it cannot do with UNSUPPORTED_INPUT', async () => {
    const question = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];
    await expectUnsupported(run(plain, { messages: question, tools: [WEATHER_TOOL] }), /stories260K has no chat template/);
    await expectUnsupported(
      run(plain, { messages: [...question, { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{}' }] }] }),
      /cannot show tool calls or tool results/,
    );
    await expectUnsupported(run(chat, { messages: question, tools: [WEATHER_TOOL], toolChoice: { name: 'get_time' } }), /"get_time", which is not among the tools/);
    await expectUnsupported(
      run(chat, { messages: question, tools: [WEATHER_TOOL], responseFormat: { type: 'json-object' } }),
      /JSON format while it may call tools/,
    );
    await expectUnsupported(
      run(chat, { messages: question, tools: [{ name: 'lookup', parameters: { type: 'object', properties: { code: { type: 'string', pattern: '^A' } } } }] }),
      /tool "lookup".*"pattern" at #\/properties\/code/,
    );
  });
});

describe('llama-cpp refusals of other inputs', () => {
  it('refuses images and a reasoning effort with UNSUPPORTED_INPUT, on both models', async () => {
    for (const provider of [chat, plain]) {
      await expectUnsupported(
        run(provider, { messages: [{ role: 'user', content: 'What is this?', parts: [{ type: 'text', text: 'What is this?' }, { type: 'image-url', url: 'data:image/png;base64,AAAA' }] }] }),
        /cannot see images/,
      );
      await expectUnsupported(run(provider, { messages: [{ role: 'user', content: 'Hi' }], reasoningEffort: 'low' }), /no reasoning effort/);
    }
  });
});
