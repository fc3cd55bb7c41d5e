/**
 * The Pollinations provider against real HTTP fakes: `test/helpers/fake-pollinations.ts` for images
 * (`docs/protocols.md` §4) and `test/helpers/fake-openai-upstream.ts` for chat (§2).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createPollinationsProvider,
  type PollinationsProviderOptions,
} from '../../src/providers/pollinations/pollinations-provider.js';
import { ProviderError, type ImageRequest, type ImageStreamPart, type ProviderImage } from '../../src/providers/provider.js';
import { fakeTokens, startFakeOpenAIUpstream, unusedBaseURL, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { colourForSeed, startFakePollinations, type FakePollinations, type FakePollinationsRequest } from '../helpers/fake-pollinations.js';
import { decodeJpeg, pngSize } from '../helpers/test-images.js';

let fake: FakePollinations;
let text: FakeOpenAIUpstream;

beforeEach(async () => {
  fake = await startFakePollinations({ renderSize: { width: 16, height: 16 } });
  text = await startFakeOpenAIUpstream({ models: ['openai'] });
});

afterEach(async () => {
  await fake.close();
  await text.close();
});

function providerOptions(overrides: Partial<PollinationsProviderOptions> = {}): PollinationsProviderOptions {
  return {
    imageBaseURL: fake.baseURL,
    textBaseURL: text.baseURL,
    imageModels: ['flux', 'turbo'],
    textModels: ['openai', 'mistral'],
    connectTimeoutMs: 5_000,
    idleTimeoutMs: 5_000,
    downloadTimeoutMs: 5_000,
    ...overrides,
  };
}

function imageRequest(overrides: Partial<ImageRequest> = {}): ImageRequest {
  return { model: 'flux', prompt: 'a red fox in the snow', n: 1, width: 64, height: 48, ...overrides };
}

/** Reads a whole stream; returns the parts and the error it ended with, if any. */
async function collect(stream: AsyncIterable<ImageStreamPart>): Promise<{ parts: ImageStreamPart[]; error?: unknown }> {
  const parts: ImageStreamPart[] = [];
  try {
    for await (const part of stream) parts.push(part);
    return { parts };
  } catch (error) {
    return { parts, error };
  }
}

function imagesOf(parts: ImageStreamPart[]): ProviderImage[] {
  return parts.flatMap((part) => (part.type === 'image' ? [part.image] : []));
}

function expectProviderError(error: unknown, code: ProviderError['code']): ProviderError {
  expect(error).toBeInstanceOf(ProviderError);
  const providerError = error as ProviderError;
  expect(providerError.code).toBe(code);
  expect(providerError.provider).toBe('pollinations');
  return providerError;
}

/** The URL the provider requested, rebuilt from what the fake received. */
function requestedURL(request: FakePollinationsRequest): string {
  return `${fake.baseURL}${request.path}?${new URLSearchParams(request.query).toString()}`;
}

const signal = () => new AbortController().signal;

describe('identity and models', () => {
  it('is the pollinations provider serving chat and images', () => {
    const provider = createPollinationsProvider(providerOptions());
    expect(provider.id).toBe('pollinations');
    expect(provider.label).toBe('Pollinations');
    expect(provider.capabilities).toEqual(['chat', 'image']);
    expect(typeof provider.streamChat).toBe('function');
    expect(typeof provider.generateImages).toBe('function');
  });

  it('lists the text models for chat and the image models for images, without a request', async () => {
    const provider = createPollinationsProvider(providerOptions());
    expect(await provider.listModels()).toEqual([
      { id: 'openai', capabilities: ['chat', 'tools', 'vision', 'json-schema', 'reasoning'] },
      { id: 'mistral', capabilities: ['chat', 'tools', 'vision', 'json-schema', 'reasoning'] },
      { id: 'flux', capabilities: ['image'] },
      { id: 'turbo', capabilities: ['image'] },
    ]);
    expect(fake.requests).toHaveLength(0);
    expect(text.requests).toHaveLength(0);
  });
});

describe('generateImages', () => {
  it('requests the encoded prompt with size, model, seed, nologo and negative_prompt, and yields the served bytes', async () => {
    const provider = createPollinationsProvider(providerOptions());
    const prompt = 'a cat & a dog / 100% ☕? #1';
    const { parts, error } = await collect(
      provider.generateImages(imageRequest({ prompt, model: 'turbo', seed: 7, negativePrompt: 'blurry, text' }), { signal: signal() }),
    );
    expect(error).toBeUndefined();
    const [request] = fake.promptRequests();
    expect(fake.promptRequests()).toHaveLength(1);
    expect(request!.method).toBe('GET');
    expect(request!.path).toBe(`/prompt/${encodeURIComponent(prompt)}`);
    expect(request!.prompt).toBe(prompt);
    expect(request!.query).toEqual({ width: '64', height: '48', model: 'turbo', seed: '7', nologo: 'true', negative_prompt: 'blurry, text' });

    expect(parts).toHaveLength(2);
    expect(parts[1]).toEqual({ type: 'finish' });
    const [image] = imagesOf(parts);
    const served = fake.servedBytes(request!)!;
    expect(served.byteLength).toBeGreaterThan(100);
    expect(Buffer.from(image!.data!).equals(served)).toBe(true);
    expect(image).toMatchObject({ mimeType: 'image/jpeg', width: 64, height: 48, seed: 7, url: requestedURL(request!) });
    expect(decodeJpeg(image!.data!).width).toBe(16);
  });

  it.each([
    [{ aspectRatio: '16:9' }, '832', '480'],
    [{ aspectRatio: '9:16' }, '480', '832'],
    [{ aspectRatio: '1:1' }, '1024', '1024'],
    [{}, '1024', '1024'],
    [{ width: 300 }, '300', '1024'],
  ])('sizes %j as %sx%s', async (size, width, height) => {
    const provider = createPollinationsProvider(providerOptions());
    const { parts, error } = await collect(
      provider.generateImages({ model: 'flux', prompt: 'p', n: 1, seed: 1, ...size }, { signal: signal() }),
    );
    expect(error).toBeUndefined();
    expect(fake.promptRequests()[0]!.query).toMatchObject({ width, height });
    expect(imagesOf(parts)[0]).toMatchObject({ width: Number(width), height: Number(height) });
  });

  it('sends n = 3 requests at once with distinct seeds and yields 3 images', async () => {
    fake.setScenario({ type: 'ok', hold: fake.waitForPromptRequest(3) }); // no answer before all three arrived
    const provider = createPollinationsProvider(providerOptions(), { random: () => 0.25 });
    const { parts, error } = await collect(provider.generateImages(imageRequest({ n: 3 }), { signal: signal() }));
    expect(error).toBeUndefined();
    const requests = fake.promptRequests();
    expect(requests).toHaveLength(3);
    expect(requests.map((request) => request.query.seed).sort()).toEqual(['250000000', '250000001', '250000002']);
    const images = imagesOf(parts);
    expect(images).toHaveLength(3);
    expect(parts.at(-1)).toEqual({ type: 'finish' });
    expect(new Set(images.map((image) => image.seed))).toEqual(new Set([250_000_000, 250_000_001, 250_000_002]));
    for (const image of images) {
      const request = requests.find((candidate) => candidate.query.seed === String(image.seed))!;
      expect(Buffer.from(image.data!).equals(fake.servedBytes(request)!)).toBe(true);
      expect(image.url).toBe(requestedURL(request));
    }
    // Different seeds, different pictures.
    expect(new Set(images.map((image) => Buffer.from(image.data!).toString('base64'))).size).toBe(3);
  });

  it('uses seed, seed + 1, … when a seed is given, and a fresh random base otherwise', async () => {
    const provider = createPollinationsProvider(providerOptions());
    const seeded = await collect(provider.generateImages(imageRequest({ n: 2, seed: 41 }), { signal: signal() }));
    expect(imagesOf(seeded.parts).map((image) => image.seed).sort()).toEqual([41, 42]);
    const first = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    const second = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    const seeds = [imagesOf(first.parts)[0]!.seed, imagesOf(second.parts)[0]!.seed];
    expect(seeds.every((seed) => Number.isInteger(seed) && seed! >= 0)).toBe(true);
    expect(seeds[0]).not.toBe(seeds[1]);
  });

  it('passes PNG bytes through with their content type', async () => {
    fake.setScenario({ type: 'ok', format: 'png' });
    const provider = createPollinationsProvider(providerOptions());
    const { parts } = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    const [image] = imagesOf(parts);
    expect(image!.mimeType).toBe('image/png');
    expect(Buffer.from(image!.data!).equals(fake.servedBytes(fake.promptRequests()[0]!)!)).toBe(true);
    expect(pngSize(image!.data!)).toEqual({ width: 16, height: 16 });
  });

  it('follows a redirect to the image and reports the prompt URL', async () => {
    fake.setScenario({ type: 'redirect' });
    const provider = createPollinationsProvider(providerOptions());
    const { parts, error } = await collect(provider.generateImages(imageRequest({ seed: 3 }), { signal: signal() }));
    expect(error).toBeUndefined();
    expect(fake.requests.map((request) => request.path.split('/')[1])).toEqual(['prompt', 'image']);
    const [promptRequest] = fake.promptRequests();
    const [image] = imagesOf(parts);
    expect(Buffer.from(image!.data!).equals(fake.servedBytes(promptRequest!)!)).toBe(true);
    expect(decodeJpeg(image!.data!).firstPixel.map((value, index) => Math.abs(value - colourForSeed(3)[index]!) <= 3)).toEqual([
      true,
      true,
      true,
    ]);
    expect(image!.url).toBe(requestedURL(promptRequest!));
  });

  it('reads a body that arrives in pieces', async () => {
    fake.setScenario({ type: 'slow', delayMs: 30 });
    const provider = createPollinationsProvider(providerOptions());
    const { parts, error } = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    expect(error).toBeUndefined();
    expect(Buffer.from(imagesOf(parts)[0]!.data!).equals(fake.servedBytes(fake.promptRequests()[0]!)!)).toBe(true);
  });

  it('passes bytes that are not an image through when they claim to be one (the service sniffs them)', async () => {
    fake.setScenario({ type: 'not-an-image' });
    const provider = createPollinationsProvider(providerOptions());
    const { parts, error } = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    expect(error).toBeUndefined();
    const [image] = imagesOf(parts);
    expect(image!.mimeType).toBe('image/jpeg');
    expect(Buffer.from(image!.data!).toString('utf8')).toContain('<html>');
  });

  it('HTTP 500 → UPSTREAM_ERROR with the upstream message', async () => {
    fake.setScenario({ type: 'http-error', status: 500, body: '{"error":"Internal Server Error: model overloaded"}' });
    const provider = createPollinationsProvider(providerOptions());
    const { parts, error } = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    expect(parts).toEqual([]);
    const providerError = expectProviderError(error, 'UPSTREAM_ERROR');
    expect(providerError.message).toBe('upstream pollinations answered 500: Internal Server Error: model overloaded');
    expect(providerError.statusCode).toBe(500);
    expect(providerError.isRetryable).toBe(true);
  });

  it('HTTP 429 → RATE_LIMITED with Retry-After in ms', async () => {
    fake.setScenario({ type: 'http-error', status: 429, body: 'Too many requests, queue full', contentType: 'text/plain', headers: { 'Retry-After': '7' } });
    const provider = createPollinationsProvider(providerOptions());
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    const providerError = expectProviderError(error, 'RATE_LIMITED');
    expect(providerError.retryAfterMs).toBe(7_000);
    expect(providerError.statusCode).toBe(429);
    expect(providerError.message).toBe('upstream pollinations answered 429: Too many requests, queue full');
  });

  it.each([
    [400, 'UPSTREAM_BAD_REQUEST'],
    [403, 'FORBIDDEN'],
    [404, 'UPSTREAM_NOT_FOUND'],
    [504, 'UPSTREAM_TIMEOUT'],
  ] as const)('HTTP %i → %s', async (status, code) => {
    fake.setScenario({ type: 'http-error', status });
    const provider = createPollinationsProvider(providerOptions());
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    expect(expectProviderError(error, code).statusCode).toBe(status);
  });

  it('a 2xx reply that is declared as HTML → UPSTREAM_BAD_RESPONSE', async () => {
    fake.setScenario({ type: 'ok', contentType: 'text/html; charset=utf-8' });
    const provider = createPollinationsProvider(providerOptions());
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    expect(expectProviderError(error, 'UPSTREAM_BAD_RESPONSE').message).toMatch(/^upstream pollinations answered 200 with text\/html instead of an image/);
  });

  it('an image larger than maxImageBytes → UPSTREAM_BAD_RESPONSE', async () => {
    const provider = createPollinationsProvider(providerOptions({ maxImageBytes: 100 }));
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    expect(expectProviderError(error, 'UPSTREAM_BAD_RESPONSE').message).toBe('upstream pollinations sent an image larger than 100 bytes');
  });

  it('no image within downloadTimeoutMs → UPSTREAM_TIMEOUT, and the request is closed', async () => {
    fake.setScenario({ type: 'hang' });
    const provider = createPollinationsProvider(providerOptions({ downloadTimeoutMs: 150 }));
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    expect(expectProviderError(error, 'UPSTREAM_TIMEOUT').message).toBe('upstream pollinations sent no complete image within 150 ms');
    await fake.waitForClientClose();
    expect(await fake.promptRequests()[0]!.ended).toBe('client-closed');
  });

  it('an unreachable host → UPSTREAM_ERROR naming the cause', async () => {
    const provider = createPollinationsProvider(providerOptions({ imageBaseURL: (await unusedBaseURL()).replace(/\/v1$/, '') }));
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: signal() }));
    expect(expectProviderError(error, 'UPSTREAM_ERROR').message).toMatch(/^cannot reach upstream pollinations: .*ECONNREFUSED/);
  });

  it('when one of n requests fails, the others are aborted and the failure is thrown', async () => {
    fake.setScenario((request) =>
      request.id === 1 ? { type: 'http-error', status: 500, body: 'boom' } : { type: 'hang' },
    );
    const provider = createPollinationsProvider(providerOptions());
    const iterator = provider.generateImages(imageRequest({ n: 3 }), { signal: signal() })[Symbol.asyncIterator]();
    const firstFailure = iterator.next().then(
      () => undefined,
      (reason: unknown) => reason,
    );
    await fake.waitForPromptRequest(3);
    const error = await firstFailure;
    expect(expectProviderError(error, 'UPSTREAM_ERROR').message).toBe('upstream pollinations answered 500: boom');
    await fake.waitForClientClose(2);
    const endings = await Promise.all(fake.promptRequests().map((request) => request.ended));
    expect(endings.sort()).toEqual(['client-closed', 'client-closed', 'finished']);
  });

  it('aborting during a hanging request closes it and throws the abort reason', async () => {
    fake.setScenario({ type: 'hang' });
    const provider = createPollinationsProvider(providerOptions());
    const controller = new AbortController();
    const reason = new Error('the client went away');
    const iterator = provider.generateImages(imageRequest({ n: 2 }), { signal: controller.signal })[Symbol.asyncIterator]();
    const pending = iterator.next();
    await fake.waitForPromptRequest(2);
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await fake.waitForClientClose(2);
    expect(await Promise.all(fake.promptRequests().map((request) => request.ended))).toEqual(['client-closed', 'client-closed']);
  });

  it('a consumer that stops after the first image closes the other requests', async () => {
    fake.setScenario((request) => (request.id === 1 ? { type: 'ok' } : { type: 'hang' }));
    const provider = createPollinationsProvider(providerOptions());
    const received: ImageStreamPart[] = [];
    for await (const part of provider.generateImages(imageRequest({ n: 2 }), { signal: signal() })) {
      received.push(part);
      break;
    }
    expect(received[0]!.type).toBe('image');
    await fake.waitForClientClose(1);
    expect(fake.closedRequests()).toBe(1);
  });

  it('an already aborted signal sends no request', async () => {
    const provider = createPollinationsProvider(providerOptions());
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: AbortSignal.abort() }));
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(fake.requests).toHaveLength(0);
  });

  it('uses an injected fetch', async () => {
    const seen: string[] = [];
    const recordingFetch: typeof fetch = (input, init) => {
      seen.push(String(input));
      return fetch(input, init);
    };
    const provider = createPollinationsProvider(providerOptions(), { fetch: recordingFetch });
    await collect(provider.generateImages(imageRequest({ seed: 5 }), { signal: signal() }));
    expect(seen).toEqual([requestedURL(fake.promptRequests()[0]!)]);
  });
});

describe('chat', () => {
  it('streams chat through the OpenAI-compatible text endpoint without a key', async () => {
    const provider = createPollinationsProvider(providerOptions());
    let content = '';
    const parts = [];
    for await (const part of provider.streamChat(
      { model: 'openai', messages: [{ role: 'user', content: 'hello' }] },
      { signal: signal() },
    )) {
      parts.push(part);
      if (part.type === 'text-delta') content += part.text;
    }
    expect(content).toBe(fakeTokens(8).join(''));
    expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'stop' });
    const [request] = text.chatRequests();
    expect(request!.path).toBe('/v1/chat/completions');
    expect(request!.headers.authorization).toBeUndefined();
    expect(request!.body).toMatchObject({ model: 'openai', stream: true });
  });

  it('reports chat failures as pollinations errors', async () => {
    text.setScenario({ type: 'server-error', status: 502, message: 'text backend down' });
    const provider = createPollinationsProvider(providerOptions());
    let error: unknown;
    try {
      for await (const part of provider.streamChat({ model: 'openai', messages: [{ role: 'user', content: 'hi' }] }, { signal: signal() })) {
        expect(part).toBeUndefined();
      }
    } catch (caught) {
      error = caught;
    }
    expect(expectProviderError(error, 'UPSTREAM_ERROR').message).toBe('upstream pollinations answered 502: text backend down');
  });
});

describe('checkAvailability', () => {
  it('is available when GET /models answers, and caches the answer', async () => {
    const provider = createPollinationsProvider(providerOptions());
    expect(await provider.checkAvailability()).toEqual({ available: true });
    expect(await provider.checkAvailability()).toEqual({ available: true });
    expect(fake.requests.map((request) => `${request.method} ${request.path}`)).toEqual(['GET /models']);
  });

  it('is unavailable with a reason on 5xx', async () => {
    fake.setModels({ status: 503, body: 'maintenance' });
    const provider = createPollinationsProvider(providerOptions());
    expect(await provider.checkAvailability()).toEqual({ available: false, reason: `GET ${fake.baseURL}/models failed: HTTP 503: maintenance` });
  });

  it('counts a 4xx as available (the image endpoint may still work)', async () => {
    fake.setModels({ status: 404 });
    const provider = createPollinationsProvider(providerOptions());
    expect(await provider.checkAvailability()).toEqual({ available: true });
  });

  it('is unavailable when the host is unreachable', async () => {
    const imageBaseURL = (await unusedBaseURL()).replace(/\/v1$/, '');
    const provider = createPollinationsProvider(providerOptions({ imageBaseURL }));
    const availability = await provider.checkAvailability();
    expect(availability.available).toBe(false);
    expect(availability.reason).toMatch(new RegExp(`^GET ${imageBaseURL}/models failed: .*ECONNREFUSED`));
  });

  it('gives up after min(connectTimeoutMs, 5000) ms', async () => {
    fake.setModels('hang');
    const provider = createPollinationsProvider(providerOptions({ connectTimeoutMs: 120 }));
    expect(await provider.checkAvailability()).toEqual({ available: false, reason: `GET ${fake.baseURL}/models failed: no response within 120 ms` });
    await fake.waitForClientClose();
  });
});
