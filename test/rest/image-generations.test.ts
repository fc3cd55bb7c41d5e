/**
 * `POST /v1/images/generations` (and `/v1/images/generate`) end to end: the app on port 0, the
 * official `openai` npm client and plain `fetch`, against a local Gradio space (FLUX.1-schnell's
 * call API) and a local OpenAI-compatible images endpoint.
 */
import OpenAI, { BadRequestError, NotFoundError, RateLimitError } from 'openai';
import { PNG } from 'pngjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGradioSpace, type FakeGradioSpace } from '../helpers/fake-gradio-space.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

let space: FakeGradioSpace;
let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let openai: OpenAI;

beforeAll(async () => {
  [space, upstream] = await Promise.all([startFakeGradioSpace(), startFakeOpenAIUpstream()]);
  started = await startApp({
    BREAKER_ENABLED: 'false',
    HF_SPACES_ENABLED: 'true',
    HF_FLUX_SCHNELL_URL: space.baseURL,
    HF_SPACE_TIMEOUT_MS: '20000',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'], imageModels: ['fake-image'] }]),
  });
  openai = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterEach(() => {
  space.setScenario(undefined);
  upstream.setImageScenario(undefined);
});

afterAll(async () => {
  await started?.stop();
  await Promise.all([space?.close(), upstream?.close()]);
});

/** The image at a URL this server handed out (`http://localhost:PORT/images/…`), fetched on the real listener. */
async function fetchStored(url: string): Promise<{ contentType: string | null; bytes: Buffer }> {
  expect(url).toMatch(/^http:\/\/localhost:\d+\/images\/[a-f0-9]{64}\.png$/);
  const response = await fetch(`${started.url}${new URL(url).pathname}`);
  expect(response.status).toBe(200);
  return { contentType: response.headers.get('content-type'), bytes: Buffer.from(await response.arrayBuffer()) };
}

function pngSize(bytes: Buffer): { width: number; height: number } {
  const { width, height } = PNG.sync.read(bytes);
  return { width, height };
}

describe('the official openai client: images.generate', () => {
  it('response_format "url": a stored image served by this server, at the requested size', async () => {
    const result = await openai.images.generate({ model: 'flux-1-schnell', prompt: 'a red fox in the snow', size: '64x48', response_format: 'url' });
    expect(result).toMatchObject({ model: 'flux-1-schnell', provider: 'hf-space' });
    expect(result.created).toBeGreaterThan(1_600_000_000);
    expect(result.data).toHaveLength(1);
    const image = result.data![0]!;
    expect(image.b64_json).toBeUndefined();
    const stored = await fetchStored(image.url!);
    expect(stored.contentType).toBe('image/png');
    expect(pngSize(stored.bytes)).toEqual({ width: 64, height: 48 });
    expect(space.requests.at(-1)!.body).toMatchObject({ data: ['a red fox in the snow', expect.any(Number), true, 64, 48, 4] });
  });

  it('response_format "b64_json": the bytes inline', async () => {
    const result = await openai.images.generate({ model: 'flux-1-schnell', prompt: 'a blue whale', size: '40x32', response_format: 'b64_json' });
    const image = result.data![0]!;
    expect(image.url).toBeUndefined();
    expect(pngSize(Buffer.from(image.b64_json!, 'base64'))).toEqual({ width: 40, height: 32 });
  });

  it('n images with revised_prompt from an OpenAI-compatible upstream', async () => {
    upstream.setImageScenario({ type: 'images', revisedPrompt: 'A watercolour lighthouse at dusk' });
    const result = await openai.images.generate({
      model: 'fake:fake-image',
      prompt: 'a lighthouse',
      n: 2,
      size: '32x32',
      response_format: 'b64_json',
    });
    expect(result).toMatchObject({ provider: 'fake', model: 'fake-image' });
    expect(result.data).toHaveLength(2);
    for (const image of result.data!) {
      expect(image.revised_prompt).toBe('A watercolour lighthouse at dusk');
      expect(pngSize(Buffer.from(image.b64_json!, 'base64'))).toEqual({ width: 32, height: 32 });
    }
    const served = upstream.servedImages(upstream.imageRequests().at(-1)!);
    expect(result.data!.map((image) => Buffer.from(image.b64_json!, 'base64'))).toEqual(served);
  });

  it('raises NotFoundError for an unknown image model and BadRequestError for a bad size', async () => {
    const unknown = await openai.images.generate({ model: 'no-such-image-model', prompt: 'x' }).catch((caught: unknown) => caught);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect(unknown).toMatchObject({ code: 'MODEL_NOT_FOUND' });
    const size = await openai.images.generate({ model: 'flux-1-schnell', prompt: 'x', size: 'huge' as '1024x1024' }).catch((caught: unknown) => caught);
    expect(size).toBeInstanceOf(BadRequestError);
    expect(size).toMatchObject({ code: 'BAD_USER_INPUT', param: 'size' });
  });

  it('raises RateLimitError when the space answers 429', async () => {
    const error = await openai.images.generate({ model: 'flux-1-schnell', prompt: 'scenario:http-error?status=429' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ code: 'RATE_LIMITED' });
  });
});

describe('plain fetch', () => {
  it('/v1/images/generate with gpt4free fields, the "flux" alias and response_format null gives a stored URL', async () => {
    const response = await postJson(started.url, '/v1/images/generate', {
      prompt: 'a green hill',
      model: 'flux',
      response_format: null,
      width: 48,
      height: 40,
      seed: 7,
      num_inference_steps: 2,
      negative_prompt: '',
      guidance_scale: 3,
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { provider: string; data: Array<{ url?: string }> };
    expect(body.provider).toBe('hf-space');
    expect(pngSize((await fetchStored(body.data[0]!.url!)).bytes)).toEqual({ width: 48, height: 40 });
    expect(space.requests.at(-1)!.body).toMatchObject({ data: ['a green hill', 7, false, 48, 40, 2] });
  });

  it.each([
    ['no prompt', { model: 'flux-1-schnell' }, 400, 'BAD_USER_INPUT', 'prompt'],
    ['an empty prompt', { prompt: '  ', model: 'flux-1-schnell' }, 400, 'BAD_USER_INPUT', 'prompt'],
    ['an unknown response_format', { prompt: 'x', response_format: 'png' }, 400, 'BAD_USER_INPUT', 'response_format'],
    ['n = 9', { prompt: 'x', model: 'flux-1-schnell', n: 9 }, 400, 'BAD_USER_INPUT', 'n'],
    ['width and aspect_ratio together', { prompt: 'x', model: 'flux-1-schnell', width: 64, aspect_ratio: '16:9' }, 400, 'BAD_USER_INPUT', 'aspect_ratio'],
    ['an unknown provider', { prompt: 'x', provider: 'nope' }, 404, 'PROVIDER_NOT_FOUND', 'provider'],
  ])('%s → %i %s', async (_name, body, status, code, param) => {
    const response = await postJson(started.url, '/v1/images/generations', body);
    expect(response.status).toBe(status);
    const json = (await response.json()) as { error: { code: string; message: string; type: string; param: string | null } };
    expect(json.error).toMatchObject({ code, type: 'invalid_request_error', param });
    if (status === 400) expect(json.error.message).toMatch(new RegExp(`^${param}: `));
  });

  it('a space that reports an error → 502 UPSTREAM_ERROR naming the provider', async () => {
    const response = await postJson(started.url, '/v1/images/generations', { prompt: 'scenario:error?message=Out%20of%20memory', model: 'flux-1-schnell' });
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({
      error: { code: 'UPSTREAM_ERROR', type: 'server_error', provider: 'hf-space', message: expect.stringContaining('Out of memory') },
    });
  });

  it('a client that leaves cancels the generation and closes the space stream', async () => {
    const resultRequestsBefore = space.resultRequests.length;
    const closesBefore = space.clientCloses();
    const controller = new AbortController();
    const pending = postJson(started.url, '/v1/images/generations', { prompt: 'scenario:hang', model: 'flux-1-schnell' }, { signal: controller.signal }).catch(
      (error: unknown) => error,
    );
    await space.waitForResultRequest(resultRequestsBefore + 1);
    controller.abort();
    expect(await pending).toMatchObject({ name: 'AbortError' });
    await space.waitForClientClose(closesBefore + 1);
  });
});
