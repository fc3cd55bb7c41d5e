/**
 * Image generations end to end: the app on port 0, the real graphql-ws client and SSE over fetch,
 * and local servers speaking the Gradio call API, Pollinations' image API and OpenAI's images API.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGradioSpace, type FakeGradioSpace } from '../helpers/fake-gradio-space.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { startFakePollinations, type FakePollinations } from '../helpers/fake-pollinations.js';
import { collectServerSentEvents, collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import {
  IMAGE_GENERATION_EVENTS_SUBSCRIPTION,
  IMAGE_GENERATION_QUERY,
  IMAGE_GENERATION_SUBSCRIPTION,
  START_IMAGE_GENERATION,
  type ImageEvent,
} from '../helpers/image-operations.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const PUBLIC_BASE_URL = 'https://gateway.example.test/ai';
let space: FakeGradioSpace;
let pollinations: FakePollinations;
let upstream: FakeOpenAIUpstream;
let started: StartedApp;
let client: Client;

beforeAll(async () => {
  [space, pollinations, upstream] = await Promise.all([startFakeGradioSpace(), startFakePollinations(), startFakeOpenAIUpstream()]);
  started = await startApp({
    HF_SPACES_ENABLED: 'true',
    HF_FLUX_SCHNELL_URL: space.baseURL,
    HF_SPACE_TIMEOUT_MS: '5000',
    POLLINATIONS_ENABLED: 'true',
    POLLINATIONS_IMAGE_BASE_URL: pollinations.baseURL,
    POLLINATIONS_TEXT_BASE_URL: upstream.baseURL,
    PUBLIC_BASE_URL,
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([
      { id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'], imageModels: ['fake-image'] },
    ]),
  });
  client = createWebSocketClient(started.webSocketUrl);
});

afterAll(async () => {
  await client?.dispose();
  await started?.stop();
  await Promise.all([space?.close(), pollinations?.close(), upstream?.close()]);
});

async function generate(input: Record<string, unknown>): Promise<ImageEvent[]> {
  const results = await collectWebSocket(client, IMAGE_GENERATION_SUBSCRIPTION, { input });
  for (const result of results) expect(result.errors).toBeUndefined();
  return results.map((result) => result.data!.imageGeneration as ImageEvent);
}

/** Fetches a URL this service handed out, on the real listener (the public base URL is only a name). */
function localUrl(publicUrl: string): string {
  expect(publicUrl.startsWith(`${PUBLIC_BASE_URL}/images/`)).toBe(true);
  return `${started.url}${publicUrl.slice(PUBLIC_BASE_URL.length)}`;
}

function storedFiles(): string[] {
  try {
    return readdirSync(join(started.dataDir, 'images'));
  } catch {
    return [];
  }
}

function expectContiguous(events: ImageEvent[]): void {
  expect(events.map((event) => event.sequence)).toEqual(events.map((_, index) => index + 1));
  expect(new Set(events.map((event) => event.generationId)).size).toBe(1);
}

describe('image generations over GraphQL', () => {
  it('hf-space: started, progress, completed with a stored image served with immutable caching and 304', async () => {
    const events = await generate({ prompt: 'a red fox in the snow', model: 'flux-1-schnell', width: 1001, height: 39, seed: 42 });
    expectContiguous(events);
    expect(events[0]).toMatchObject({ __typename: 'ImageGenerationStarted', provider: 'hf-space', model: 'flux-1-schnell' });
    expect(events.some((event) => event.__typename === 'ImageGenerationProgress')).toBe(true);
    const completed = events.at(-1)!;
    expect(completed.__typename).toBe('ImageGenerationCompleted');
    expect(completed.images).toHaveLength(1);
    const image = completed.images![0]!;
    expect(image).toMatchObject({ mimeType: 'image/png', width: 1000, height: 32, seed: 42, b64Json: null });
    expect(image.url).toMatch(/^https:\/\/gateway\.example\.test\/ai\/images\/[a-f0-9]{64}\.png$/);
    expect(image.sourceUrl).toContain(space.baseURL);

    const call = space.requests.at(-1)!;
    expect(call.body).toEqual({ data: ['a red fox in the snow', 42, false, 1000, 32, 4] });

    const response = await fetch(localUrl(image.url!));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const etag = response.headers.get('etag');
    expect(etag).toMatch(/^"[a-f0-9]{64}"$/);
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.equals(space.imageBytes(image.sourceUrl!)!)).toBe(true);

    const again = await fetch(localUrl(image.url!), { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    expect(storedFiles()).toContain(image.url!.split('/').at(-1));

    const generation = await graphqlRequest(started.graphqlUrl, IMAGE_GENERATION_QUERY, { id: completed.generationId });
    expect(generation.data.generation).toMatchObject({
      __typename: 'ImageGeneration',
      status: 'COMPLETED',
      prompt: 'a red fox in the snow',
      images: [{ url: image.url, mimeType: 'image/png' }],
      error: null,
    });
  });

  it('B64_JSON returns the same bytes inline and stores nothing', async () => {
    const before = storedFiles();
    const events = await generate({ prompt: 'a blue whale', provider: 'hf-space', responseFormat: 'B64_JSON', seed: 7 });
    const image = events.at(-1)!.images![0]!;
    expect(image.url).toBeNull();
    const bytes = Buffer.from(image.b64Json!, 'base64');
    expect(bytes.equals(space.imageBytes(image.sourceUrl!)!)).toBe(true);
    expect(storedFiles()).toEqual(before);
  });

  it('pollinations: n = 3 gives three different stored images whose bytes equal the upstream bytes', async () => {
    const requestsBefore = pollinations.promptRequests().length;
    const events = await generate({ prompt: 'three little pigs', provider: 'pollinations', n: 3, aspectRatio: '16:9' });
    const images = events.at(-1)!.images!;
    expect(images).toHaveLength(3);
    expect(new Set(images.map((image) => image.url)).size).toBe(3);
    const requests = pollinations.promptRequests().slice(requestsBefore);
    expect(requests).toHaveLength(3);
    for (const request of requests) expect(request.query).toMatchObject({ width: '832', height: '480', model: 'flux', nologo: 'true' });
    const served = requests.map((request) => pollinations.servedBytes(request)!.toString('base64')).sort();
    const stored = await Promise.all(
      images.map(async (image) => Buffer.from(await (await fetch(localUrl(image.url!))).arrayBuffer()).toString('base64')),
    );
    expect(stored.sort()).toEqual(served);
    expect(images.every((image) => image.mimeType === 'image/jpeg')).toBe(true);
  });

  it('openai-compatible: url and b64_json replies both become stored images', async () => {
    for (const format of ['url', 'b64_json'] as const) {
      upstream.setImageScenario({ type: 'images', format });
      const events = await generate({ prompt: 'a lighthouse', model: 'fake:fake-image', n: 2 });
      const images = events.at(-1)!.images!;
      expect(images).toHaveLength(2);
      const request = upstream.imageRequests().at(-1)!;
      expect(request.body).toMatchObject({ model: 'fake-image', prompt: 'a lighthouse', n: 2, size: '1024x1024' });
      const served = upstream.servedImages(request).map((bytes) => bytes.toString('base64'));
      const stored = await Promise.all(
        images.map(async (image) => Buffer.from(await (await fetch(localUrl(image.url!))).arrayBuffer()).toString('base64')),
      );
      expect(stored).toEqual(served);
      if (format === 'url') expect(images.every((image) => image.sourceUrl?.startsWith(upstream.baseURL.replace(/\/v1$/, '')))).toBe(true);
      else expect(images.every((image) => image.sourceUrl === null)).toBe(true);
    }
    upstream.setImageScenario(undefined);
  });

  it('streams the same events over SSE', async () => {
    const results = await collectServerSentEvents(started.graphqlUrl, IMAGE_GENERATION_SUBSCRIPTION, {
      input: { prompt: 'a green frog', provider: 'hf-space', seed: 3 },
    });
    const events = results.map((result) => result.data.imageGeneration as ImageEvent);
    expectContiguous(events);
    expect(events[0]!.__typename).toBe('ImageGenerationStarted');
    expect(events.at(-1)!.__typename).toBe('ImageGenerationCompleted');
  });

  it('starts with a mutation and replays to a late subscriber, honouring after', async () => {
    const start = await graphqlRequest(started.graphqlUrl, START_IMAGE_GENERATION, { input: { prompt: 'a cat', provider: 'hf-space' } });
    expect(start.errors).toBeUndefined();
    expect(start.data.startImageGeneration).toMatchObject({ status: 'RUNNING', provider: 'hf-space', prompt: 'a cat', images: [] });
    const id = start.data.startImageGeneration.id;
    const live = (await collectWebSocket(client, IMAGE_GENERATION_EVENTS_SUBSCRIPTION, { generationId: id })).map(
      (result) => result.data!.imageGenerationEvents as ImageEvent,
    );
    expectContiguous(live);
    const replay = (await collectWebSocket(client, IMAGE_GENERATION_EVENTS_SUBSCRIPTION, { generationId: id, after: 1 })).map(
      (result) => result.data!.imageGenerationEvents as ImageEvent,
    );
    expect(replay).toEqual(live.slice(1));
  });

  it('a space error fails the generation with UPSTREAM_ERROR and the message', async () => {
    space.setScenario({ type: 'error', message: 'GPU quota exceeded' });
    const events = await generate({ prompt: 'anything', provider: 'hf-space' });
    space.setScenario(undefined);
    expect(events.at(-1)).toMatchObject({
      __typename: 'GenerationFailed',
      error: { code: 'UPSTREAM_ERROR', provider: 'hf-space' },
    });
    expect(events.at(-1)!.error!.message).toContain('GPU quota exceeded');
  });

  it('bytes that are not an image fail with INVALID_IMAGE and leave no file', async () => {
    const before = storedFiles();
    pollinations.setScenario({ type: 'not-an-image' });
    const events = await generate({ prompt: 'html instead of jpeg', provider: 'pollinations' });
    pollinations.setScenario(undefined);
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'INVALID_IMAGE', provider: 'pollinations' } });
    expect(storedFiles()).toEqual(before);
  });

  it('a download that fails gives IMAGE_DOWNLOAD_FAILED', async () => {
    upstream.setImageScenario({ type: 'raw', status: 200, body: JSON.stringify({ created: 1, data: [{ url: `${upstream.baseURL}/files/missing.png` }] }) });
    const events = await generate({ prompt: 'a missing file', model: 'fake:fake-image' });
    upstream.setImageScenario(undefined);
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationFailed', error: { code: 'IMAGE_DOWNLOAD_FAILED', provider: 'fake' } });
    expect(events.at(-1)!.error!.message).toMatch(/404/);
  });

  it('closing the subscription cancels: the space sees the connection close and no file is written', async () => {
    const before = storedFiles();
    const closesBefore = space.clientCloses();
    space.setScenario({ type: 'hang' });
    const generationId = await new Promise<string>((resolve, reject) => {
      const unsubscribe = client.subscribe<{ imageGeneration: ImageEvent }>(
        { query: IMAGE_GENERATION_SUBSCRIPTION, variables: { input: { prompt: 'never finishes', provider: 'hf-space' } } },
        {
          next: (result) => {
            const event = result.data?.imageGeneration;
            if (event?.__typename === 'ImageGenerationProgress') {
              unsubscribe();
              resolve(event.generationId);
            }
          },
          error: reject,
          complete: () => {},
        },
      );
    });
    await space.waitForClientClose(closesBefore + 1);
    space.setScenario(undefined);
    const events = (await collectWebSocket(client, IMAGE_GENERATION_EVENTS_SUBSCRIPTION, { generationId })).map(
      (result) => result.data!.imageGenerationEvents as ImageEvent,
    );
    expect(events.at(-1)).toMatchObject({ __typename: 'GenerationCancelled', reason: 'subscription closed' });
    expect(storedFiles()).toEqual(before);
  });

  it.each([
    ['an empty prompt', { prompt: '   ' }, 'BAD_USER_INPUT', /prompt/],
    ['n = 5', { prompt: 'x', n: 5 }, 'BAD_USER_INPUT', /n must be between 1 and 4/],
    ['n = 0', { prompt: 'x', n: 0 }, 'BAD_USER_INPUT', /n must be between 1 and 4/],
    ['width 4000', { prompt: 'x', width: 4000 }, 'BAD_USER_INPUT', /width/],
    ['height 16', { prompt: 'x', height: 16 }, 'BAD_USER_INPUT', /height/],
    ['an unknown aspect ratio', { prompt: 'x', aspectRatio: '5:7' }, 'BAD_USER_INPUT', /aspectRatio/],
    ['both a size and a ratio', { prompt: 'x', width: 512, aspectRatio: '1:1' }, 'BAD_USER_INPUT', /not both/],
    ['an unknown model', { prompt: 'x', model: 'no-such-image-model' }, 'MODEL_NOT_FOUND', /no-such-image-model/],
    ['an unknown provider', { prompt: 'x', provider: 'no-such-provider' }, 'PROVIDER_NOT_FOUND', /no-such-provider/],
    ['a chat-only provider', { prompt: 'x', provider: 'llama-cpp' }, 'PROVIDER_NOT_FOUND', /does not serve image models/],
  ])('startImageGeneration with %s → %s', async (_name, input, code, message) => {
    const sizeBefore = started.app.generations.size;
    const response = await graphqlRequest(started.graphqlUrl, START_IMAGE_GENERATION, { input });
    expect(response.errors![0]!.extensions!.code).toBe(code);
    expect(response.errors![0]!.message).toMatch(message);
    expect(started.app.generations.size).toBe(sizeBefore);
  });

  it('lists image models with the IMAGE capability', async () => {
    const response = await graphqlRequest(started.graphqlUrl, '{ models { id provider capabilities } }');
    expect(response.data.models).toEqual(
      expect.arrayContaining([
        { id: 'flux-1-schnell', provider: 'hf-space', capabilities: ['IMAGE'] },
        { id: 'flux', provider: 'pollinations', capabilities: ['IMAGE'] },
        { id: 'fake-image', provider: 'fake', capabilities: ['IMAGE'] },
        { id: 'fake-model', provider: 'fake', capabilities: ['CHAT', 'TOOLS', 'VISION', 'JSON_SCHEMA', 'REASONING'] },
      ]),
    );
  });
});

describe('/images/{file}', () => {
  it.each([
    '/images/../package.json',
    '/images/%2e%2e%2fpackage.json',
    '/images/..%2f..%2fetc%2fpasswd',
    `/images/${'a'.repeat(64)}.png`,
    '/images/not-a-hash.png',
    `/images/${'A'.repeat(64)}.png`,
  ])('answers 404 for %s', async (path) => {
    const response = await fetch(`${started.url}${path}`);
    expect(response.status).toBe(404);
  });
});
