/**
 * The REST API's OpenAPI document (`GET /v1/openapi.json`): served without a key, a valid OpenAPI
 * 3.1 document (swagger-parser), and every kind of real response of the routes — JSON replies,
 * each event of a streamed reply, and the errors — valid against the schema the document gives for
 * that path, status and content type (ajv, JSON Schema 2020-12). Real parts: the server on port 0,
 * the real local model, the fake OpenAI-compatible upstream for images, PGlite in memory for usage.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { dataLines, postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const KEY = 'openapi-test-key-0123456789';
const authorization = { authorization: `Bearer ${KEY}` };

type OpenApiDocument = {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }> }>>;
  components: { schemas: Record<string, unknown> };
};

let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let document: OpenApiDocument;
let ajv: Ajv2020;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
  started = await startApp({
    API_KEYS: KEY,
    DATABASE_URL: 'memory://',
    BREAKER_ENABLED: 'false',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['stream?tokens=3'], imageModels: ['fake-image'] }]),
  });
  const response = await fetch(`${started.url}/v1/openapi.json`);
  document = (await response.json()) as OpenApiDocument;
  ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'openapi', components: document.components });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

/** The validator of the schema the document gives for `method path`, `status` and `contentType`. */
function validatorFor(method: string, path: string, status: number, contentType = 'application/json'): ValidateFunction {
  const schema = document.paths[path]?.[method]?.responses[String(status)]?.content?.[contentType]?.schema;
  if (!schema) throw new Error(`the document has no ${contentType} schema for ${method.toUpperCase()} ${path} ${status}`);
  // `#/components/…` references resolve against the document added as `openapi`.
  const rewritten = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi#/components/')) as Record<string, unknown>;
  return ajv.compile(rewritten);
}

/** Checks `body` against the document's schema for the response; fails with ajv's errors. */
function expectConforms(body: unknown, method: string, path: string, status: number, contentType?: string): void {
  const validate = validatorFor(method, path, status, contentType);
  const valid = validate(body);
  expect(validate.errors ?? [], `${method.toUpperCase()} ${path} ${status}: ${JSON.stringify(body).slice(0, 300)}`).toEqual([]);
  expect(valid).toBe(true);
}

describe('GET /v1/openapi.json', () => {
  it('is served without a key and is a valid OpenAPI 3.1 document naming every route', async () => {
    const response = await fetch(`${started.url}/v1/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    await SwaggerParser.validate(structuredClone(document) as never);
    expect(Object.keys(document.paths).sort()).toEqual(
      ['/v1/chat/completions', '/v1/images/generate', '/v1/images/generations', '/v1/models', '/v1/models/{id}', '/v1/openapi.json', '/v1/providers', '/v1/providers/{id}', '/v1/usage'].sort(),
    );
  });
});

describe('real responses conform to the document', () => {
  it('chat completions: a JSON reply, every event of a streamed one, and its errors', async () => {
    const request = { model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 6 };
    const reply = await postJson(started.url, '/v1/chat/completions', request, { headers: { 'content-type': 'application/json', ...authorization } });
    expect(reply.status).toBe(200);
    expectConforms(await reply.json(), 'post', '/v1/chat/completions', 200);

    const streamed = await postJson(started.url, '/v1/chat/completions', { ...request, stream: true }, { headers: { 'content-type': 'application/json', ...authorization } });
    expect(streamed.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events: string[] = [];
    for await (const data of dataLines(streamed)) events.push(data);
    expect(events.at(-1)).toBe('[DONE]');
    for (const data of events.slice(0, -1)) expectConforms(JSON.parse(data), 'post', '/v1/chat/completions', 200, 'text/event-stream');

    const unknownModel = await postJson(started.url, '/v1/chat/completions', { ...request, model: 'no-such-model' }, { headers: { 'content-type': 'application/json', ...authorization } });
    expect(unknownModel.status).toBe(404);
    expectConforms(await unknownModel.json(), 'post', '/v1/chat/completions', 404);
    const badBody = await postJson(started.url, '/v1/chat/completions', { messages: 'hello' }, { headers: { 'content-type': 'application/json', ...authorization } });
    expect(badBody.status).toBe(400);
    expectConforms(await badBody.json(), 'post', '/v1/chat/completions', 400);
    const noKey = await postJson(started.url, '/v1/chat/completions', request);
    expect(noKey.status).toBe(401);
    expectConforms(await noKey.json(), 'post', '/v1/chat/completions', 401);
  });

  it('images, models, providers and usage', async () => {
    for (const path of ['/v1/images/generations', '/v1/images/generate'] as const) {
      const images = await postJson(started.url, path, { model: 'fake:fake-image', prompt: 'a lighthouse', response_format: 'b64_json' }, { headers: { 'content-type': 'application/json', ...authorization } });
      expect(images.status).toBe(200);
      expectConforms(await images.json(), 'post', path, 200);
    }

    const models = await fetch(`${started.url}/v1/models`, { headers: authorization });
    expectConforms(await models.json(), 'get', '/v1/models', 200);
    const model = await fetch(`${started.url}/v1/models/stories260K`, { headers: authorization });
    expectConforms(await model.json(), 'get', '/v1/models/{id}', 200);
    const noModel = await fetch(`${started.url}/v1/models/no-such-model`, { headers: authorization });
    expect(noModel.status).toBe(404);
    expectConforms(await noModel.json(), 'get', '/v1/models/{id}', 404);

    const providers = await fetch(`${started.url}/v1/providers`, { headers: authorization });
    expectConforms(await providers.json(), 'get', '/v1/providers', 200);
    const provider = await fetch(`${started.url}/v1/providers/llama-cpp`, { headers: authorization });
    expectConforms(await provider.json(), 'get', '/v1/providers/{id}', 200);

    await started.app.usageRecorder!.flush();
    const usage = await fetch(`${started.url}/v1/usage?group_by=model,day`, { headers: authorization });
    expect(usage.status).toBe(200);
    const report = (await usage.json()) as { data: unknown[] };
    expect(report.data.length).toBeGreaterThan(0);
    expectConforms(report, 'get', '/v1/usage', 200);
    const badUsage = await fetch(`${started.url}/v1/usage?scope=everyone`, { headers: authorization });
    expect(badUsage.status).toBe(400);
    expectConforms(await badUsage.json(), 'get', '/v1/usage', 400);
  });

  it('the response schemas refuse what the routes must not answer', () => {
    const completion = validatorFor('post', '/v1/chat/completions', 200);
    expect(completion({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'm', provider: 'p', choices: [] })).toBe(false);
    expect(completion({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', provider: 'p', choices: [{ index: 0, message: { role: 'assistant', content: 'x' }, finish_reason: 'stop' }] })).toBe(false);
    const error = validatorFor('get', '/v1/models/{id}', 404);
    expect(error({ error: { message: 'x', type: 'not_a_type', param: null, code: 'MODEL_NOT_FOUND' } })).toBe(false);
    expect(error({ message: 'x' })).toBe(false);
  });

  it('the request schemas accept what the SDKs send and refuse what the server refuses', () => {
    const chatRequest = ajv.compile({ $ref: 'openapi#/components/schemas/ChatCompletionRequest' });
    expect(chatRequest({ model: '', messages: [{ role: 'user', content: 'Hi' }], stream: true, max_tokens: 10, conversation_id: 'c1', provider: 'llama-cpp' })).toBe(true);
    expect(chatRequest({ messages: 'hello' })).toBe(false);
    const imageRequest = ajv.compile({ $ref: 'openapi#/components/schemas/ImageGenerationRequest' });
    expect(imageRequest({ prompt: 'a cat', size: '1024x1024', response_format: 'url' })).toBe(true);
    expect(imageRequest({ prompt: 'a cat', response_format: 'png' })).toBe(false);
  });
});
