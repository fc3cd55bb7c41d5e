/**
 * The `hf-space` provider against a real HTTP fake Gradio Space
 * (`test/helpers/fake-gradio-space.ts`, Gradio "call" API of `docs/protocols.md` §3).
 */
import { PNG } from 'pngjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HuggingFaceSpaceConfig } from '../../src/config.js';
import { buildSpaceData } from '../../src/providers/hf-space/build-space-data.js';
import { createHuggingFaceSpaceProvider, type HuggingFaceSpaceProviderOptions } from '../../src/providers/hf-space/hf-space-provider.js';
import { ProviderError, type ImageRequest, type ImageStreamPart, type ProviderImage } from '../../src/providers/provider.js';
import { startFakeGradioSpace, unusedGradioBaseURL, type FakeGradioSpace } from '../helpers/fake-gradio-space.js';

const TOKEN = 'hf_test_very_secret_token_1234567890';

function fluxSpace(baseURL: string, overrides: Partial<HuggingFaceSpaceConfig> = {}): HuggingFaceSpaceConfig {
  return {
    model: 'flux-1-schnell',
    label: 'FLUX.1 [schnell]',
    baseURL,
    endpoint: 'infer',
    inputs: ['{prompt}', '{seed}', '{randomizeSeed}', '{width}', '{height}', '{steps}'],
    imageIndex: 0,
    seedIndex: 1,
    defaultWidth: 1024,
    defaultHeight: 1024,
    defaultSteps: 4,
    ...overrides,
  };
}

function providerFor(spaces: HuggingFaceSpaceConfig[], overrides: Partial<HuggingFaceSpaceProviderOptions> = {}) {
  return createHuggingFaceSpaceProvider({ spaces, token: TOKEN, timeoutMs: 10_000, maxReads: 3, connectTimeoutMs: 5_000, ...overrides });
}

function imageRequest(overrides: Partial<ImageRequest> = {}): ImageRequest {
  return { model: 'flux-1-schnell', prompt: 'a red fox in the snow', n: 1, width: 256, height: 128, ...overrides };
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
  expect(providerError.provider).toBe('hf-space');
  expect(providerError.message).not.toContain(TOKEN);
  return providerError;
}

const noSignal = () => new AbortController().signal;

let space: FakeGradioSpace;

beforeEach(async () => {
  space = await startFakeGradioSpace({
    token: TOKEN,
    layouts: { generate: { prompt: 0, width: 2, height: 3 } },
  });
});

afterEach(async () => {
  await space.close();
});

describe('identity', () => {
  it('is hf-space with one image model per space', async () => {
    const provider = providerFor([fluxSpace(space.baseURL), fluxSpace(space.baseURL, { model: 'sd-35', endpoint: 'generate' })]);
    expect(provider.id).toBe('hf-space');
    expect(provider.label).toBe('Hugging Face Spaces');
    expect(provider.capabilities).toEqual(['image']);
    expect(await provider.listModels()).toEqual([
      { id: 'flux-1-schnell', capabilities: ['image'] },
      { id: 'sd-35', capabilities: ['image'] },
    ]);
  });
});

describe('generateImages', () => {
  it('streams progress, then the image with its URL and seed, then finish', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { parts, error } = await collect(provider.generateImages(imageRequest(), { signal: noSignal() }));
    expect(error).toBeUndefined();

    const imageAt = parts.findIndex((part) => part.type === 'image');
    const progress = parts.filter((part) => part.type === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress[0]).toMatchObject({ type: 'progress', message: 'generating' });
    expect(parts.findIndex((part) => part.type === 'progress')).toBeLessThan(imageAt);
    expect(parts.at(-1)).toEqual({ type: 'finish' });
    expect(parts.filter((part) => part.type === 'finish')).toHaveLength(1);

    const images = imagesOf(parts);
    expect(images).toHaveLength(1);
    const image = images[0]!;
    expect(image.url).toMatch(new RegExp(`^${space.baseURL}/gradio_api/file=/tmp/gradio/[0-9a-f]+/image\\.png$`));
    expect(image.mimeType).toBe('image/png');
    expect(image.width).toBe(256);
    expect(image.height).toBe(128);
    expect(image.data).toBeUndefined();

    // The seed is the one the output reported (the fake picks one when randomize_seed is true).
    const post = space.requests[0]!;
    expect(post.body).toEqual({ data: ['a red fox in the snow', 0, true, 256, 128, 4] });
    expect(typeof image.seed).toBe('number');
    expect(image.seed).not.toBe(0);

    // The URL serves the PNG the fake made, at the size asked for.
    const response = await fetch(image.url!, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.equals(space.imageBytes(image.url!)!)).toBe(true);
    const png = PNG.sync.read(bytes);
    expect([png.width, png.height]).toEqual([256, 128]);
  });

  it('sends the token as Bearer on every request', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: noSignal() }));
    expect(error).toBeUndefined();
    expect(space.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(space.requests[0]!.headers['content-type']).toBe('application/json');
    expect(space.resultRequests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('rounds sizes down to a multiple of 8 (at least 32) and passes the seed asked for', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { parts, error } = await collect(
      provider.generateImages(imageRequest({ width: 1001, height: 20, seed: 42, numInferenceSteps: 2 }), { signal: noSignal() }),
    );
    expect(error).toBeUndefined();
    expect(space.requests[0]!.body).toEqual({ data: ['a red fox in the snow', 42, false, 1000, 32, 2] });
    const image = imagesOf(parts)[0]!;
    expect(image.seed).toBe(42);
    expect([image.width, image.height]).toEqual([1000, 32]);
  });

  it('passes seed 0 when asked for (not randomized)', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { error } = await collect(provider.generateImages(imageRequest({ seed: 0 }), { signal: noSignal() }));
    expect(error).toBeUndefined();
    expect(space.requests[0]!.body).toEqual({ data: ['a red fox in the snow', 0, false, 256, 128, 4] });
  });

  it('maps an aspect ratio to a size that is a multiple of 8', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const request = imageRequest({ aspectRatio: '16:9' });
    delete request.width;
    delete request.height;
    const { error } = await collect(provider.generateImages(request, { signal: noSignal() }));
    expect(error).toBeUndefined();
    const data = (space.requests[0]!.body as { data: unknown[] }).data;
    const width = data[3] as number;
    const height = data[4] as number;
    expect(width % 8).toBe(0);
    expect(height % 8).toBe(0);
    expect(width / height).toBeGreaterThan(1.7);
    expect(width / height).toBeLessThan(1.85);
  });

  it('uses the space defaults when the request gives no size', async () => {
    const provider = providerFor([fluxSpace(space.baseURL, { defaultWidth: 512, defaultHeight: 768, defaultSteps: 3 })]);
    const request = imageRequest();
    delete request.width;
    delete request.height;
    const { error } = await collect(provider.generateImages(request, { signal: noSignal() }));
    expect(error).toBeUndefined();
    expect(space.requests[0]!.body).toEqual({ data: ['a red fox in the snow', 0, true, 512, 768, 3] });
  });

  it('runs n calls in parallel and yields n images from n event ids', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { parts, error } = await collect(provider.generateImages(imageRequest({ n: 3 }), { signal: noSignal() }));
    expect(error).toBeUndefined();
    const images = imagesOf(parts);
    expect(images).toHaveLength(3);
    expect(new Set(images.map((image) => image.url)).size).toBe(3);
    expect(space.requests).toHaveLength(3);
    expect(new Set(space.requests.map((request) => request.eventId)).size).toBe(3);
    expect(new Set(space.resultRequests.map((request) => request.eventId)).size).toBe(3);
    expect(parts.at(-1)).toEqual({ type: 'finish' });
    for (const image of images) expect(space.imageBytes(image.url!)).toBeDefined();
  });

  it('builds the URL from path when the file object has no url', async () => {
    space.setScenario({ type: 'complete', omitUrl: true, mimeType: null });
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { parts, error } = await collect(provider.generateImages(imageRequest(), { signal: noSignal() }));
    expect(error).toBeUndefined();
    const image = imagesOf(parts)[0]!;
    expect(image.url).toMatch(new RegExp(`^${space.baseURL}/gradio_api/file=/tmp/gradio/[0-9a-f]+/image\\.png$`));
    expect(image.mimeType).toBeUndefined();
    expect(space.imageBytes(image.url!)).toBeDefined();
  });

  it('reports progress numbers when generating events carry them', async () => {
    space.setScenario({
      type: 'complete',
      generatingData: [{ progress_data: [{ index: 1, length: 4 }] }, { rank: 2 }],
    });
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { parts, error } = await collect(provider.generateImages(imageRequest(), { signal: noSignal() }));
    expect(error).toBeUndefined();
    expect(parts.filter((part) => part.type === 'progress')).toEqual([
      { type: 'progress', message: 'generating', progress: 0.25 },
      { type: 'progress', message: 'generating', queuePosition: 2 },
    ]);
  });

  it('sends a second space its own endpoint and data list', async () => {
    const provider = providerFor([
      fluxSpace(space.baseURL),
      fluxSpace(space.baseURL, {
        model: 'sd-35',
        endpoint: 'generate',
        inputs: ['{prompt}', '{negativePrompt}', '{width}', '{height}', 7.5],
        seedIndex: undefined,
      }),
    ]);
    const { parts, error } = await collect(
      provider.generateImages(imageRequest({ model: 'sd-35', negativePrompt: 'blurry', width: 513, height: 771 }), { signal: noSignal() }),
    );
    expect(error).toBeUndefined();
    expect(space.requests[0]!.endpoint).toBe('generate');
    expect(space.requests[0]!.body).toEqual({ data: ['a red fox in the snow', 'blurry', 512, 768, 7.5] });
    expect(space.resultRequests[0]!.endpoint).toBe('generate');
    const image = imagesOf(parts)[0]!;
    expect(image.seed).toBeUndefined();
    expect(PNG.sync.read(space.imageBytes(image.url!)!).width).toBe(512);

    // Without a negative prompt, the placeholder becomes ''.
    await collect(provider.generateImages(imageRequest({ model: 'sd-35' }), { signal: noSignal() }));
    expect(space.requests[1]!.body).toEqual({ data: ['a red fox in the snow', '', 256, 128, 7.5] });
  });

  it('fails with UPSTREAM_NOT_FOUND for a model no space serves', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { error } = await collect(provider.generateImages(imageRequest({ model: 'nope' }), { signal: noSignal() }));
    expectProviderError(error, 'UPSTREAM_NOT_FOUND');
    expect(space.requests).toHaveLength(0);
  });
});

describe('failures', () => {
  it('turns an error event into UPSTREAM_ERROR with the message', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { parts, error } = await collect(provider.generateImages(imageRequest({ prompt: 'scenario:error' }), { signal: noSignal() }));
    const providerError = expectProviderError(error, 'UPSTREAM_ERROR');
    expect(providerError.message).toContain('GPU quota exceeded');
    expect(imagesOf(parts)).toHaveLength(0);
    expect(parts.some((part) => part.type === 'finish')).toBe(false);
  });

  it('turns an error event with null data into UPSTREAM_ERROR', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { error } = await collect(provider.generateImages(imageRequest({ prompt: 'scenario:error-null' }), { signal: noSignal() }));
    const providerError = expectProviderError(error, 'UPSTREAM_ERROR');
    expect(providerError.message).toContain('the space reported an error');
  });

  it('reads the stream again when it ends without complete', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { parts, error } = await collect(
      provider.generateImages(imageRequest({ prompt: 'scenario:ends-early-once' }), { signal: noSignal() }),
    );
    expect(error).toBeUndefined();
    expect(imagesOf(parts)).toHaveLength(1);
    expect(space.requests).toHaveLength(1);
    expect(space.resultRequests).toHaveLength(2);
    expect(space.resultRequests.map((request) => request.readNumber)).toEqual([1, 2]);
    expect(space.resultRequests[1]!.eventId).toBe(space.requests[0]!.eventId);
  });

  it('gives up with UPSTREAM_CONNECTION_LOST after maxReads reads', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)], { maxReads: 3 });
    const { error } = await collect(
      provider.generateImages(imageRequest({ prompt: 'scenario:never-completes' }), { signal: noSignal() }),
    );
    const providerError = expectProviderError(error, 'UPSTREAM_CONNECTION_LOST');
    expect(providerError.message).toContain('stream ended without a result after 3 reads');
    expect(space.resultRequests).toHaveLength(3);
  });

  it('fails with UPSTREAM_TIMEOUT when the whole generation takes too long', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)], { timeoutMs: 300 });
    const { error } = await collect(provider.generateImages(imageRequest({ prompt: 'scenario:hang' }), { signal: noSignal() }));
    const providerError = expectProviderError(error, 'UPSTREAM_TIMEOUT');
    expect(providerError.message).toContain('300 ms');
    // The hanging stream was closed by the provider.
    await space.waitForClientClose(1);
  });

  it('maps POST 429 to RATE_LIMITED with retryAfterMs', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { error } = await collect(
      provider.generateImages(imageRequest({ prompt: 'scenario:http-error?status=429&retryAfter=7&message=Too%20many%20requests' }), {
        signal: noSignal(),
      }),
    );
    const providerError = expectProviderError(error, 'RATE_LIMITED');
    expect(providerError.statusCode).toBe(429);
    expect(providerError.retryAfterMs).toBe(7_000);
    expect(providerError.message).toContain('Too many requests');
    expect(space.resultRequests).toHaveLength(0);
  });

  it('maps POST 500 to UPSTREAM_ERROR with the space message', async () => {
    space.setScenario({ type: 'http-error', status: 500, body: { error: 'CUDA out of memory' } });
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: noSignal() }));
    const providerError = expectProviderError(error, 'UPSTREAM_ERROR');
    expect(providerError.statusCode).toBe(500);
    expect(providerError.message).toContain('CUDA out of memory');
  });

  it('maps POST 422 with a FastAPI detail to UPSTREAM_BAD_REQUEST', async () => {
    space.setScenario({ type: 'http-error', status: 422, body: { detail: 'width must be at most 2048' } });
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: noSignal() }));
    const providerError = expectProviderError(error, 'UPSTREAM_BAD_REQUEST');
    expect(providerError.message).toContain('width must be at most 2048');
  });

  it('aborts the other calls when one of n fails', async () => {
    let call = 0;
    space.setScenario(() => (++call === 2 ? { type: 'error', message: 'second image failed', afterResultRequests: 3 } : { type: 'hang' }));
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const { error } = await collect(provider.generateImages(imageRequest({ n: 3 }), { signal: noSignal() }));
    const providerError = expectProviderError(error, 'UPSTREAM_ERROR');
    expect(providerError.message).toContain('second image failed');
    // The two hanging streams were closed by the provider.
    await space.waitForClientClose(2);
  });

  it('never puts the token in error messages, even when the space echoes it', async () => {
    const strict = await startFakeGradioSpace({ token: 'hf_the_right_token' });
    try {
      const provider = providerFor([fluxSpace(strict.baseURL)]);
      const { error } = await collect(provider.generateImages(imageRequest(), { signal: noSignal() }));
      const providerError = expectProviderError(error, 'UNAUTHORIZED');
      expect(providerError.message).toContain('Invalid credentials');
      expect(providerError.message).toContain('***');
      expect(strict.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    } finally {
      await strict.close();
    }
  });

  it('fails with UPSTREAM_TIMEOUT when a space sends no response headers within connectTimeoutMs', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)], { connectTimeoutMs: 200 });
    const { error } = await collect(provider.generateImages(imageRequest({ prompt: 'scenario:no-response' }), { signal: noSignal() }));
    const providerError = expectProviderError(error, 'UPSTREAM_TIMEOUT');
    expect(providerError.message).toContain('no response headers within 200 ms');
    await space.waitForClientClose(1);
  });

  it('reports an unreachable space as UPSTREAM_ERROR with the cause', async () => {
    const provider = providerFor([fluxSpace(await unusedGradioBaseURL())]);
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: noSignal() }));
    const providerError = expectProviderError(error, 'UPSTREAM_ERROR');
    expect(providerError.message).toContain('ECONNREFUSED');
  });
});

describe('abort', () => {
  it('closes the request in flight and throws the abort reason', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const controller = new AbortController();
    const reason = new Error('client went away');
    const iterator = provider.generateImages(imageRequest({ prompt: 'scenario:hang' }), { signal: controller.signal })[Symbol.asyncIterator]();

    const pending = collect({ [Symbol.asyncIterator]: () => iterator });
    await space.waitForResultRequest(1);
    controller.abort(reason);
    const { error } = await pending;
    expect(error).toBe(reason);
    expect(error).not.toBeInstanceOf(ProviderError);
    await space.waitForClientClose(1);
    expect(space.clientCloses()).toBe(1);
  });

  it('closes the streams in flight when the consumer stops early', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    for await (const part of provider.generateImages(imageRequest({ prompt: 'scenario:hang', n: 2 }), { signal: noSignal() })) {
      expect(part).toMatchObject({ type: 'progress' });
      await space.waitForResultRequest(2);
      break;
    }
    await space.waitForClientClose(2);
  });

  it('throws at once when the signal is already aborted', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    const controller = new AbortController();
    const reason = new Error('already gone');
    controller.abort(reason);
    const { error } = await collect(provider.generateImages(imageRequest(), { signal: controller.signal }));
    expect(error).toBe(reason);
    expect(space.requests).toHaveLength(0);
  });
});

describe('checkAvailability', () => {
  it('is available when a space answers GET /config', async () => {
    const provider = providerFor([fluxSpace(space.baseURL)]);
    expect(await provider.checkAvailability()).toEqual({ available: true });
    expect(space.configRequests()).toBe(1);
    // Cached: no second request.
    expect(await provider.checkAvailability()).toEqual({ available: true });
    expect(space.configRequests()).toBe(1);
  });

  it('is available when at least one of several spaces answers', async () => {
    const provider = providerFor([fluxSpace(await unusedGradioBaseURL()), fluxSpace(space.baseURL, { model: 'other' })]);
    expect(await provider.checkAvailability()).toEqual({ available: true });
  });

  it('is unavailable with a reason naming each failing space', async () => {
    const downURL = await unusedGradioBaseURL();
    const failing = await startFakeGradioSpace({ configStatus: 503 });
    try {
      const provider = providerFor([fluxSpace(downURL), fluxSpace(failing.baseURL, { model: 'sd-35' })]);
      const availability = await provider.checkAvailability();
      expect(availability.available).toBe(false);
      expect(availability.reason).toContain(`flux-1-schnell: GET ${downURL}/config failed: connect ECONNREFUSED`);
      expect(availability.reason).toContain(`sd-35: GET ${failing.baseURL}/config failed: HTTP 503`);
      expect(availability.reason).not.toContain(TOKEN);
    } finally {
      await failing.close();
    }
  });
});

describe('buildSpaceData', () => {
  it('replaces exact placeholders with typed values and passes other items', () => {
    expect(
      buildSpaceData(['{prompt}', '{seed}', '{randomizeSeed}', '{width}', '{height}', '{steps}', '{negativePrompt}', 'a {prompt}', '{unknown}', 7.5, null], {
        prompt: 'p',
        negativePrompt: 'n',
        seed: 3,
        randomizeSeed: false,
        width: 64,
        height: 32,
        steps: 4,
      }),
    ).toEqual(['p', 3, false, 64, 32, 4, 'n', 'a {prompt}', '{unknown}', 7.5, null]);
  });
});
