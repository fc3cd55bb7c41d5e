/**
 * `GET /v1/models`, `GET /v1/providers` (and their `/{id}` forms) and the REST router's answers to
 * unknown paths and wrong methods: the app on port 0, the official `openai` client and plain `fetch`.
 */
import OpenAI, { NotFoundError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const ODD_ID = 'meta-llama/Llama-3.1-8B-Instruct:free';
let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let openai: OpenAI;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
  started = await startApp({
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      { id: 'fake', label: 'Fake upstream', baseURL: upstream.baseURL, models: ['shared-model', ODD_ID], imageModels: ['fake-image'] },
      { id: 'fake-two', label: 'Second fake', baseURL: upstream.baseURL, models: ['shared-model'] },
    ]),
  });
  openai = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

async function getJson(path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${started.url}${path}`);
  return { status: response.status, body: await response.json() };
}

describe('models', () => {
  it('models.list() lists every model once, with all the providers serving it', async () => {
    const models = [];
    for await (const model of openai.models.list()) models.push(model);
    const ids = models.map((model) => model.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(models).toContainEqual({
      id: 'stories260K',
      object: 'model',
      created: 0,
      owned_by: 'llama-cpp',
      provider: 'llama-cpp',
      providers: ['llama-cpp'],
      type: 'chat',
      capabilities: ['chat', 'json-schema'],
    });
    expect(models).toContainEqual(
      expect.objectContaining({ id: 'shared-model', owned_by: 'fake', provider: 'fake', providers: ['fake', 'fake-two'], type: 'chat' }),
    );
    expect(models).toContainEqual(expect.objectContaining({ id: 'fake-image', provider: 'fake', type: 'image', capabilities: ['image'] }));

    const { status, body } = await getJson('/v1/models');
    expect(status).toBe(200);
    expect(body.object).toBe('list');
    expect(body.data).toEqual(models);
  });

  it('models.retrieve() finds ids with "/" and ":", plain or percent-encoded', async () => {
    expect(await openai.models.retrieve(ODD_ID)).toMatchObject({ id: ODD_ID, object: 'model', provider: 'fake' });
    const plain = await getJson(`/v1/models/${ODD_ID}`);
    expect(plain).toMatchObject({ status: 200, body: { id: ODD_ID, providers: ['fake'] } });
    const encoded = await getJson(`/v1/models/${encodeURIComponent(ODD_ID)}`);
    expect(encoded).toMatchObject({ status: 200, body: { id: ODD_ID } });
    expect((await getJson('/v1/models/%E0%A4%A')).status).toBe(400);
    const shared = await getJson('/v1/models/shared-model');
    expect(shared.body.providers).toEqual(['fake', 'fake-two']);
  });

  it('an unknown model is a 404 with an OpenAI error body (NotFoundError)', async () => {
    const error = await openai.models.retrieve('no-such-model').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    const { status, body } = await getJson('/v1/models/no-such-model');
    expect(status).toBe(404);
    expect(body).toEqual({
      error: { message: expect.stringContaining('no-such-model'), type: 'invalid_request_error', param: 'model', code: 'MODEL_NOT_FOUND' },
    });
  });
});

describe('providers', () => {
  it('GET /v1/providers lists every provider with availability, models and capabilities', async () => {
    const { status, body } = await getJson('/v1/providers');
    expect(status).toBe(200);
    expect(Array.isArray(body)).toBe(true);
    expect(body.map((provider: { id: string }) => provider.id)).toEqual(['llama-cpp', 'fake', 'fake-two']);
    expect(body[1]).toEqual({
      id: 'fake',
      object: 'provider',
      created: 0,
      label: 'Fake upstream',
      available: true,
      unavailable_reason: null,
      models: ['shared-model', ODD_ID, 'fake-image'],
      image_models: ['fake-image'],
      capabilities: ['chat', 'image'],
    });
  });

  it('GET /v1/providers/{id} gives one provider, or a 404', async () => {
    const one = await getJson('/v1/providers/fake-two');
    expect(one).toMatchObject({ status: 200, body: { id: 'fake-two', object: 'provider', label: 'Second fake', models: ['shared-model'] } });
    const missing = await getJson('/v1/providers/nope');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: { code: 'PROVIDER_NOT_FOUND', type: 'invalid_request_error', message: expect.stringContaining('nope') } });
  });
});

describe('routing', () => {
  it('a known path with the wrong method is a 405 with Allow', async () => {
    const get = await fetch(`${started.url}/v1/chat/completions`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(await get.json()).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED', type: 'invalid_request_error' } });
    const post = await postJson(started.url, '/v1/models', {});
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const remove = await fetch(`${started.url}/v1/images/generations`, { method: 'DELETE' });
    expect(remove.status).toBe(405);
  });

  it('an unknown /v1 path is a 404 with an OpenAI error body', async () => {
    for (const path of ['/v1/completions', '/v1', '/v1/chat', '/v1/models/']) {
      const response = await fetch(`${started.url}${path}`, { method: path === '/v1/models/' ? 'GET' : 'POST' });
      if (path === '/v1/models/') {
        // A trailing slash is ignored: the list.
        expect(response.status).toBe(200);
        continue;
      }
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ error: { code: 'ROUTE_NOT_FOUND', type: 'invalid_request_error' } });
    }
  });

  it('HEAD works where GET does', async () => {
    const response = await fetch(`${started.url}/v1/models`, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('paths outside /v1 are left to the other routes', async () => {
    const health = await fetch(`${started.url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok' });
    const other = await fetch(`${started.url}/v1x/models`);
    const text = await other.text();
    expect(text).not.toContain('ROUTE_NOT_FOUND');
  });

  it('413 for an oversized image request body', async () => {
    const response = await postJson(started.url, '/v1/images/generations', { prompt: 'x'.repeat(4 * 1024 * 1024 + 1) });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: 'REQUEST_TOO_LARGE' } });
  });

  it('413 for an oversized chunked body (no content-length)', async () => {
    const piece = new TextEncoder().encode('x'.repeat(1024 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"messages":[{"role":"user","content":"'));
        if (sent < 5) controller.enqueue(piece);
        else {
          controller.enqueue(new TextEncoder().encode('"}]}'));
          controller.close();
        }
        sent += 1;
      },
    });
    const response = await fetch(`${started.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: 'REQUEST_TOO_LARGE' } });
  });
});
