/**
 * Images of the OpenAI-compatible provider (`POST {baseURL}/images/generations`,
 * `docs/protocols.md` §2) against the real HTTP fake upstream.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpenAICompatibleUpstreamConfig } from '../../src/config.js';
import { createOpenAICompatibleProvider } from '../../src/providers/openai-compatible/openai-compatible-provider.js';
import { ProviderError, type ImageRequest, type ImageStreamPart, type ProviderImage } from '../../src/providers/provider.js';
import { fakeImageColour, startFakeOpenAIUpstream, unusedBaseURL, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { createPng, pngSize } from '../helpers/test-images.js';

const API_KEY = 'sk-test-very-secret-image-key-0987654321';

let upstream: FakeOpenAIUpstream;

beforeEach(async () => {
  upstream = await startFakeOpenAIUpstream({ models: ['llama-3.1-8b', 'dall-e-3'] });
});

afterEach(async () => {
  await upstream.close();
});

function upstreamConfig(overrides: Partial<OpenAICompatibleUpstreamConfig> = {}): OpenAICompatibleUpstreamConfig {
  return {
    id: 'openai',
    baseURL: upstream.baseURL,
    apiKey: API_KEY,
    imageModels: ['dall-e-3', 'gpt-image-1'],
    connectTimeoutMs: 5_000,
    idleTimeoutMs: 5_000,
    ...overrides,
  };
}

function imageRequest(overrides: Partial<ImageRequest> = {}): ImageRequest {
  return { model: 'dall-e-3', prompt: 'a lighthouse at dusk', n: 1, width: 48, height: 40, ...overrides };
}

/** The provider's `generateImages`, asserting it exists. */
function imagesOf(provider: ReturnType<typeof createOpenAICompatibleProvider>) {
  const generate = provider.generateImages;
  if (!generate) throw new Error('generateImages is missing');
  return generate;
}

async function collect(stream: AsyncIterable<ImageStreamPart>): Promise<{ parts: ImageStreamPart[]; images: ProviderImage[]; error?: unknown }> {
  const parts: ImageStreamPart[] = [];
  let error: unknown;
  try {
    for await (const part of stream) parts.push(part);
  } catch (caught) {
    error = caught;
  }
  return { parts, images: parts.flatMap((part) => (part.type === 'image' ? [part.image] : [])), error };
}

function expectProviderError(error: unknown, code: ProviderError['code']): ProviderError {
  expect(error).toBeInstanceOf(ProviderError);
  const providerError = error as ProviderError;
  expect(providerError.code).toBe(code);
  expect(providerError.provider).toBe('openai');
  expect(providerError.message).not.toContain(API_KEY);
  return providerError;
}

const signal = () => new AbortController().signal;

describe('capabilities and models', () => {
  it('serves images only when image models are configured', () => {
    const withImages = createOpenAICompatibleProvider(upstreamConfig());
    expect(withImages.capabilities).toEqual(['chat', 'image']);
    expect(typeof withImages.generateImages).toBe('function');

    for (const imageModels of [undefined, []]) {
      const chatOnly = createOpenAICompatibleProvider(upstreamConfig({ imageModels }));
      expect(chatOnly.capabilities).toEqual(['chat']);
      expect(chatOnly.generateImages).toBeUndefined();
      expect('generateImages' in chatOnly).toBe(false);
    }
  });

  it('lists configured chat models, then the image models', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig({ models: ['gpt-4o-mini'] }));
    expect(await provider.listModels()).toEqual([
      { id: 'gpt-4o-mini', capabilities: ['chat', 'tools', 'vision', 'json-schema', 'reasoning'] },
      { id: 'dall-e-3', capabilities: ['image'] },
      { id: 'gpt-image-1', capabilities: ['image'] },
    ]);
    expect(upstream.requests).toHaveLength(0);
  });

  it('never discovers image models, and keeps configured image ids out of the discovered chat list', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    expect(await provider.listModels()).toEqual([
      { id: 'llama-3.1-8b', capabilities: ['chat', 'tools', 'vision', 'json-schema', 'reasoning'] },
      { id: 'dall-e-3', capabilities: ['image'] },
      { id: 'gpt-image-1', capabilities: ['image'] },
    ]);
    // Second call from the cache: same answer, no new request.
    expect(await provider.listModels()).toHaveLength(3);
    expect(upstream.requests.map((request) => `${request.method} ${request.path}`)).toEqual(['GET /v1/models']);
  });

  it('lists an id configured for chat and images once, with both capabilities', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig({ models: ['omni'], imageModels: ['omni'] }));
    expect(await provider.listModels()).toEqual([{ id: 'omni', capabilities: ['chat', 'image', 'tools', 'vision', 'json-schema', 'reasoning'] }]);
  });

  it('counts a 404 on /models as available when only image models are configured', async () => {
    upstream.setModels({ status: 404 });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    expect(await provider.checkAvailability()).toEqual({ available: true });
  });
});

describe('generateImages', () => {
  it('posts model, prompt, n and size with the key, and yields the URLs of a url reply', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig({ headers: { 'X-Team': 'imaging' } }));
    const { parts, images, error } = await collect(imagesOf(provider)(imageRequest({ n: 2 }), { signal: signal() }));
    expect(error).toBeUndefined();
    const [request] = upstream.imageRequests();
    expect(request!.method).toBe('POST');
    expect(request!.path).toBe('/v1/images/generations');
    expect(request!.body).toEqual({ model: 'dall-e-3', prompt: 'a lighthouse at dusk', n: 2, size: '48x40' });
    expect(request!.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.headers['x-team']).toBe('imaging');

    expect(parts.map((part) => part.type)).toEqual(['image', 'image', 'finish']);
    const served = upstream.servedImages(request!);
    expect(served).toHaveLength(2);
    for (const [index, image] of images.entries()) {
      expect(image.data).toBeUndefined();
      expect(image.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/files\/image-\d+\.png$/);
      const download = await fetch(image.url!);
      expect(download.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await download.arrayBuffer()).equals(served[index]!)).toBe(true);
    }
  });

  it('decodes a b64_json reply into the PNG bytes, with no MIME type', async () => {
    upstream.setImageScenario({ type: 'images', format: 'b64_json' });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { images, error } = await collect(imagesOf(provider)(imageRequest(), { signal: signal() }));
    expect(error).toBeUndefined();
    expect(images).toHaveLength(1);
    const [image] = images;
    const expected = createPng(48, 40, fakeImageColour(0));
    expect(Buffer.from(image!.data!).equals(expected)).toBe(true);
    expect(Buffer.from(image!.data!).equals(upstream.servedImages(upstream.imageRequests()[0]!)[0]!)).toBe(true);
    expect(pngSize(image!.data!)).toEqual({ width: 48, height: 40 });
    expect(image!.mimeType).toBeUndefined();
    expect(image!.url).toBeUndefined();
  });

  it('accepts url and b64_json entries mixed in one reply, in order, with revised prompts', async () => {
    upstream.setImageScenario({ type: 'images', format: 'mixed', revisedPrompt: 'A tall lighthouse glowing at dusk' });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { images, parts, error } = await collect(imagesOf(provider)(imageRequest({ n: 3 }), { signal: signal() }));
    expect(error).toBeUndefined();
    expect(parts.at(-1)).toEqual({ type: 'finish' });
    const served = upstream.servedImages(upstream.imageRequests()[0]!);
    expect(images.map((image) => (image.url ? 'url' : 'data'))).toEqual(['url', 'data', 'url']);
    expect(Buffer.from(images[1]!.data!).equals(served[1]!)).toBe(true);
    expect(images.every((image) => image.revisedPrompt === 'A tall lighthouse glowing at dusk')).toBe(true);
  });

  it('leaves revisedPrompt out when the upstream sends none', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { images } = await collect(imagesOf(provider)(imageRequest(), { signal: signal() }));
    expect(Object.keys(images[0]!)).toEqual(['url']);
  });

  it.each([
    [{}, '1024x1024'],
    [{ aspectRatio: '1:1' }, '1024x1024'],
    [{ aspectRatio: '16:9' }, '1792x1024'],
    [{ aspectRatio: '9:16' }, '1024x1792'],
    [{ width: 512, height: 768 }, '512x768'],
  ])('sends size for %j as %s', async (size, expected) => {
    upstream.setImageScenario({ type: 'images', renderSize: { width: 8, height: 8 } });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { error } = await collect(imagesOf(provider)({ model: 'gpt-image-1', prompt: 'p', n: 1, ...size }, { signal: signal() }));
    expect(error).toBeUndefined();
    expect((upstream.imageRequests()[0]!.body as { size: string }).size).toBe(expected);
  });

  it('passes seed and negative_prompt when given', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    await collect(imagesOf(provider)(imageRequest({ seed: 1234, negativePrompt: 'fog' }), { signal: signal() }));
    expect(upstream.imageRequests()[0]!.body).toEqual({
      model: 'dall-e-3',
      prompt: 'a lighthouse at dusk',
      n: 1,
      size: '48x40',
      seed: 1234,
      negative_prompt: 'fog',
    });
  });

  it('decodes data URLs and resolves relative URLs', async () => {
    const png = createPng(4, 4, [1, 2, 3]);
    upstream.setImageScenario({
      type: 'raw',
      body: JSON.stringify({
        created: 1,
        data: [{ b64_json: `data:image/png;base64,${png.toString('base64')}` }, { url: '/files/elsewhere.png' }],
      }),
    });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { images, error } = await collect(imagesOf(provider)(imageRequest({ n: 2 }), { signal: signal() }));
    expect(error).toBeUndefined();
    expect(Buffer.from(images[0]!.data!).equals(png)).toBe(true);
    expect(images[0]!.mimeType).toBe('image/png');
    expect(images[1]!.url).toBe(`${new URL(upstream.baseURL).origin}/files/elsewhere.png`);
  });
});

describe('errors', () => {
  it('429 → RATE_LIMITED with Retry-After in ms', async () => {
    upstream.setImageScenario({ type: 'rate-limited', retryAfter: 3 });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { parts, error } = await collect(imagesOf(provider)(imageRequest(), { signal: signal() }));
    expect(parts).toEqual([]);
    const providerError = expectProviderError(error, 'RATE_LIMITED');
    expect(providerError.retryAfterMs).toBe(3_000);
    expect(providerError.statusCode).toBe(429);
    expect(providerError.message).toBe('upstream openai answered 429: Rate limit reached for images. Please try again in 3s.');
  });

  it('500 → UPSTREAM_ERROR', async () => {
    upstream.setImageScenario({ type: 'server-error', message: 'image backend crashed' });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { error } = await collect(imagesOf(provider)(imageRequest(), { signal: signal() }));
    const providerError = expectProviderError(error, 'UPSTREAM_ERROR');
    expect(providerError.message).toBe('upstream openai answered 500: image backend crashed');
    expect(providerError.isRetryable).toBe(true);
  });

  it('401 → UNAUTHORIZED with the echoed key redacted', async () => {
    upstream.setImageScenario({ type: 'unauthorized' });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { error } = await collect(imagesOf(provider)(imageRequest(), { signal: signal() }));
    expect(expectProviderError(error, 'UNAUTHORIZED').message).toBe('upstream openai answered 401: Incorrect API key provided: ***.');
  });

  it('400 → UPSTREAM_BAD_REQUEST with the upstream message', async () => {
    upstream.setImageScenario({ type: 'http-error', status: 400, message: 'Your request was rejected by the safety system.' });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { error } = await collect(imagesOf(provider)(imageRequest(), { signal: signal() }));
    expect(expectProviderError(error, 'UPSTREAM_BAD_REQUEST').message).toBe(
      'upstream openai answered 400: Your request was rejected by the safety system.',
    );
  });

  it.each([
    ['malformed JSON', '{"created":1,"data":[{"url":', /image reply that is not JSON/],
    ['no images', '{"created":1,"data":[]}', /wrong shape \(data: the reply holds no images\)/],
    ['an entry with neither field', '{"created":1,"data":[{"revised_prompt":"x"}]}', /wrong shape \(data\.0: an image has neither "url" nor "b64_json"\)/],
    ['invalid base64', '{"created":1,"data":[{"b64_json":"not base64!!"}]}', /invalid base64 in data\.0\.b64_json/],
    ['a non-http URL', '{"created":1,"data":[{"url":"ftp://example.com/a.png"}]}', /not http\(s\) in data\.0\.url/],
  ])('%s → UPSTREAM_BAD_RESPONSE', async (_name, body, message) => {
    upstream.setImageScenario({ type: 'raw', body });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { parts, error } = await collect(imagesOf(provider)(imageRequest(), { signal: signal() }));
    expect(parts).toEqual([]);
    expect(expectProviderError(error, 'UPSTREAM_BAD_RESPONSE').message).toMatch(message);
  });

  it('a 200 reply holding only an error → UPSTREAM_ERROR', async () => {
    upstream.setImageScenario({ type: 'raw', body: '{"error":{"message":"GPU out of memory"}}' });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { error } = await collect(imagesOf(provider)(imageRequest(), { signal: signal() }));
    expect(expectProviderError(error, 'UPSTREAM_ERROR').message).toBe('upstream openai reported an error: GPU out of memory');
  });

  it('no answer within imageTimeoutMs → UPSTREAM_TIMEOUT, and the request is closed', async () => {
    upstream.setImageScenario({ type: 'hang' });
    const provider = createOpenAICompatibleProvider(upstreamConfig({ connectTimeoutMs: 100, imageTimeoutMs: 150 }));
    const { error } = await collect(imagesOf(provider)(imageRequest(), { signal: signal() }));
    expect(expectProviderError(error, 'UPSTREAM_TIMEOUT').message).toBe('upstream openai sent no image within 150 ms');
    await upstream.waitForClientClose();
  });

  it('an unreachable upstream → UPSTREAM_ERROR naming the cause', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig({ baseURL: await unusedBaseURL() }));
    const { error } = await collect(imagesOf(provider)(imageRequest(), { signal: signal() }));
    expect(expectProviderError(error, 'UPSTREAM_ERROR').message).toMatch(/^cannot reach upstream openai: .*ECONNREFUSED/);
  });
});

describe('abort', () => {
  it('aborting while the upstream works closes the request and throws the reason', async () => {
    upstream.setImageScenario({ type: 'hang' });
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const controller = new AbortController();
    const reason = new Error('the client went away');
    const pending = imagesOf(provider)(imageRequest(), { signal: controller.signal })[Symbol.asyncIterator]().next();
    await upstream.waitForImageRequest();
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await upstream.waitForClientClose();
    expect(await upstream.imageRequests()[0]!.ended).toBe('client-closed');
  });

  it('an already aborted signal sends no request', async () => {
    const provider = createOpenAICompatibleProvider(upstreamConfig());
    const { error } = await collect(imagesOf(provider)(imageRequest(), { signal: AbortSignal.abort() }));
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(upstream.requests).toHaveLength(0);
  });
});
