/**
 * The built-in Gradio Space presets `flux-1-dev` and `sd-3.5-large` beside `flux-1-schnell`, end to
 * end: the app on port 0, REST and GraphQL clients, and one local fake Space per preset that serves
 * only its Space's `infer` signature (`test/helpers/gradio-space-apis.ts`, from the public sources
 * of `docs/protocols.md` §3) and refuses any other shape. Also: the presets are off by default, and
 * `flux` still goes to FLUX.1-schnell.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGradioSpace, type FakeGradioSpace } from '../helpers/fake-gradio-space.js';
import { FLUX_DEV_INFER, FLUX_SCHNELL_INFER, SD_3_5_LARGE_INFER } from '../helpers/gradio-space-apis.js';
import { collectServerSentEvents } from '../helpers/graphql-clients.js';
import { IMAGE_GENERATION_SUBSCRIPTION, type ImageEvent } from '../helpers/image-operations.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

const TOKEN = 'hf_preset_test_token';
let schnell: FakeGradioSpace;
let dev: FakeGradioSpace;
let stableDiffusion: FakeGradioSpace;
let started: StartedApp;

beforeAll(async () => {
  [schnell, dev, stableDiffusion] = await Promise.all([
    startFakeGradioSpace({ signatures: [FLUX_SCHNELL_INFER] }),
    // No `token` option: a public Space serves its files without one; the calls' headers are checked instead.
    startFakeGradioSpace({ signatures: [FLUX_DEV_INFER] }),
    startFakeGradioSpace({ signatures: [SD_3_5_LARGE_INFER] }),
  ]);
  started = await startApp({
    BREAKER_ENABLED: 'false',
    HF_SPACES_ENABLED: 'true',
    HF_FLUX_SCHNELL_URL: schnell.baseURL,
    HF_FLUX_DEV_ENABLED: 'true',
    HF_FLUX_DEV_URL: dev.baseURL,
    HF_SD_3_5_LARGE_ENABLED: 'true',
    HF_SD_3_5_LARGE_URL: stableDiffusion.baseURL,
    HF_TOKEN: TOKEN,
    HF_SPACE_TIMEOUT_MS: '20000',
  });
});

afterAll(async () => {
  await started?.stop();
  await Promise.all([schnell?.close(), dev?.close(), stableDiffusion?.close()]);
});

/** The `data` list of the last call a fake received, after checking it went to `/call/infer` with the token. */
function lastInferData(space: FakeGradioSpace): unknown[] {
  const call = space.requests.at(-1)!;
  expect(call.endpoint).toBe('infer');
  expect(call.headers.authorization).toBe(`Bearer ${TOKEN}`);
  return (call.body as { data: unknown[] }).data;
}

async function generateOverGraphQL(input: Record<string, unknown>): Promise<ImageEvent[]> {
  const results = await collectServerSentEvents(started.graphqlUrl, IMAGE_GENERATION_SUBSCRIPTION, { input });
  for (const result of results) expect(result.errors).toBeUndefined();
  return results.map((result) => result.data!.imageGeneration as ImageEvent);
}

describe('flux-1-dev (black-forest-labs/FLUX.1-dev)', () => {
  it('sends infer(prompt, seed, randomize_seed, width, height, guidance_scale, num_inference_steps) with the request values over REST', async () => {
    const response = await postJson(started.url, '/v1/images/generations', {
      model: 'flux-1-dev',
      prompt: 'a fox in the snow',
      size: '512x768',
      seed: 7,
      num_inference_steps: 20,
      response_format: 'b64_json',
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ provider: 'hf-space', model: 'flux-1-dev' });
    expect(lastInferData(dev)).toEqual(['a fox in the snow', 7, false, 512, 768, 3.5, 20]);
  });

  it("fills in the Space's defaults: random seed, 1024×1024, 28 steps", async () => {
    const events = await generateOverGraphQL({ model: 'flux-1-dev', prompt: 'a lighthouse' });
    expect(events.at(-1)).toMatchObject({ __typename: 'ImageGenerationCompleted', images: [{ width: 1024, height: 1024 }] });
    expect(events[0]).toMatchObject({ provider: 'hf-space', model: 'flux-1-dev' });
    expect(lastInferData(dev)).toEqual(['a lighthouse', 0, true, 1024, 1024, 3.5, 28]);
  });
});

describe('sd-3.5-large (stabilityai/stable-diffusion-3.5-large)', () => {
  it('sends infer(prompt, negative_prompt, seed, randomize_seed, width, height, guidance_scale, num_inference_steps) over GraphQL', async () => {
    const events = await generateOverGraphQL({
      model: 'sd-3.5-large',
      prompt: 'a castle at dusk',
      negativePrompt: 'fog',
      width: 768,
      height: 512,
      seed: 42,
      numInferenceSteps: 30,
    });
    expect(events.at(-1)).toMatchObject({ __typename: 'ImageGenerationCompleted', images: [{ width: 768, height: 512, seed: 42 }] });
    expect(lastInferData(stableDiffusion)).toEqual(['a castle at dusk', 'fog', 42, false, 768, 512, 4.5, 30]);
  });

  it("sends an empty negative prompt and the Space's defaults (random seed, 1024×1024, 40 steps) over REST", async () => {
    const response = await postJson(started.url, '/v1/images/generations', { model: 'sd-3.5-large', prompt: 'a harbour', response_format: 'b64_json' });
    expect(response.status).toBe(200);
    expect(lastInferData(stableDiffusion)).toEqual(['a harbour', '', 0, true, 1024, 1024, 4.5, 40]);
  });
});

describe('routing beside the presets', () => {
  it('lists the presets under hf-space and keeps flux on FLUX.1-schnell; flux-dev is FLUX.1-dev', async () => {
    const models = (await (await fetch(`${started.url}/v1/models`)).json()) as { data: Array<{ id: string; provider: string }> };
    expect(models.data.filter((model) => model.provider === 'hf-space').map((model) => model.id)).toEqual(['flux-1-schnell', 'flux-1-dev', 'sd-3.5-large']);
    const route = async (model: string) =>
      (await started.app.registry.imageCandidates({ model })).map((candidate) => `${candidate.provider.id}:${candidate.model}`);
    expect(await route('flux')).toEqual(['hf-space:flux-1-schnell']);
    expect(await route('flux-schnell')).toEqual(['hf-space:flux-1-schnell']);
    expect(await route('flux-dev')).toEqual(['hf-space:flux-1-dev']);

    const response = await postJson(started.url, '/v1/images/generations', { model: 'flux', prompt: 'a heron', response_format: 'b64_json' });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ provider: 'hf-space', model: 'flux-1-schnell' });
    expect((schnell.requests.at(-1)!.body as { data: unknown[] }).data).toEqual(['a heron', 0, true, 1024, 1024, 4]);
  });

  it('fails a call of the wrong shape: the fake Space refuses data that does not fit its signature', async () => {
    // FLUX.1-dev's seven inputs sent to a Space with Stable Diffusion 3.5's eight: the check the preset tests rely on.
    const mismatched = await startApp({ HF_SPACES_ENABLED: 'true', HF_FLUX_DEV_ENABLED: 'true', HF_FLUX_DEV_URL: stableDiffusion.baseURL, HF_TOKEN: TOKEN });
    try {
      const response = await postJson(mismatched.url, '/v1/images/generations', { model: 'flux-1-dev', prompt: 'a crane', response_format: 'b64_json' });
      expect(response.status).toBe(502);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('UPSTREAM_ERROR');
      expect(body.error.message).toContain('needed: 8, got: 7');
    } finally {
      await mismatched.stop();
    }
  });
});

describe('presets that need a token are off by default', () => {
  it('serves only flux-1-schnell, and answers 404 MODEL_NOT_FOUND for flux-1-dev, sd-3.5-large and flux-dev', async () => {
    const plain = await startApp({ HF_SPACES_ENABLED: 'true', HF_FLUX_SCHNELL_URL: schnell.baseURL });
    try {
      const models = (await (await fetch(`${plain.url}/v1/models`)).json()) as { data: Array<{ id: string; provider: string }> };
      expect(models.data.filter((model) => model.provider === 'hf-space').map((model) => model.id)).toEqual(['flux-1-schnell']);
      for (const model of ['flux-1-dev', 'sd-3.5-large', 'flux-dev']) {
        const response = await postJson(plain.url, '/v1/images/generations', { model, prompt: 'a wren' });
        expect(response.status, model).toBe(404);
        expect(((await response.json()) as { error: { code: string } }).error.code, model).toBe('MODEL_NOT_FOUND');
      }
      expect(dev.requests.filter((call) => (call.body as { data: unknown[] }).data[0] === 'a wren')).toEqual([]);
    } finally {
      await plain.stop();
    }
  });
});
