/**
 * gpt4free's provider names as scripts written for it send them (`docs/protocols.md` §6), in a few
 * casings, over REST and GraphQL: each reaches the right provider of this gateway, and a name of one
 * Space reaches that Space. The app runs on port 0 against local fakes: one Gradio Space per preset
 * (each serving only its Space's `infer` signature), Pollinations' image API, and an
 * OpenAI-compatible server as Pollinations' text API. An unknown name is a 404 listing ours.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGradioSpace, type FakeGradioSpace } from '../helpers/fake-gradio-space.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { startFakePollinations, type FakePollinations } from '../helpers/fake-pollinations.js';
import { FLUX_DEV_INFER, FLUX_SCHNELL_INFER, SD_3_5_LARGE_INFER } from '../helpers/gradio-space-apis.js';
import { collectServerSentEvents, graphqlRequest } from '../helpers/graphql-clients.js';
import { IMAGE_GENERATION_SUBSCRIPTION, type ImageEvent } from '../helpers/image-operations.js';
import { postJson } from '../helpers/rest-clients.js';
import { scriptedProvider } from '../helpers/scripted-provider.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

let schnell: FakeGradioSpace;
let dev: FakeGradioSpace;
let stableDiffusion: FakeGradioSpace;
let pollinations: FakePollinations;
let pollinationsText: FakeOpenAIUpstream;
let started: StartedApp;

beforeAll(async () => {
  [schnell, dev, stableDiffusion, pollinations, pollinationsText] = await Promise.all([
    startFakeGradioSpace({ signatures: [FLUX_SCHNELL_INFER] }),
    startFakeGradioSpace({ signatures: [FLUX_DEV_INFER] }),
    startFakeGradioSpace({ signatures: [SD_3_5_LARGE_INFER] }),
    startFakePollinations({ renderSize: { width: 8, height: 8 } }),
    startFakeOpenAIUpstream({ models: ['openai'] }),
  ]);
  started = await startApp({
    BREAKER_ENABLED: 'false',
    HF_SPACES_ENABLED: 'true',
    HF_FLUX_SCHNELL_URL: schnell.baseURL,
    HF_FLUX_DEV_ENABLED: 'true',
    HF_FLUX_DEV_URL: dev.baseURL,
    HF_SD_3_5_LARGE_ENABLED: 'true',
    HF_SD_3_5_LARGE_URL: stableDiffusion.baseURL,
    HF_SPACE_TIMEOUT_MS: '20000',
    POLLINATIONS_ENABLED: 'true',
    POLLINATIONS_IMAGE_BASE_URL: pollinations.baseURL,
    POLLINATIONS_TEXT_BASE_URL: pollinationsText.baseURL,
  });
});

afterAll(async () => {
  await started?.stop();
  await Promise.all([schnell?.close(), dev?.close(), stableDiffusion?.close(), pollinations?.close(), pollinationsText?.close()]);
});

let promptCounter = 0;
/** A prompt no other request sends, to find the request a fake received. */
const uniquePrompt = () => `a lantern number ${++promptCounter}`;

/** Whether `space` received a call whose prompt (the first data item) is `prompt`. */
const spaceGot = (space: FakeGradioSpace, prompt: string) => space.requests.some((call) => (call.body as { data: unknown[] }).data[0] === prompt);

const pollinationsGot = (prompt: string) => pollinations.promptRequests().some((request) => request.prompt === prompt);

/** Each gpt4free name in three casings, the provider and model it runs here, and the fake that must receive the call. */
const IMAGE_NAMES: Array<[name: string, provider: string, model: string, receivedBy: () => (prompt: string) => boolean]> = [
  ['PollinationsAI', 'pollinations', 'flux', () => pollinationsGot],
  ['pollinationsai', 'pollinations', 'flux', () => pollinationsGot],
  ['POLLINATIONSAI', 'pollinations', 'flux', () => pollinationsGot],
  ['Pollinations', 'pollinations', 'flux', () => pollinationsGot],
  ['PollinationsImage', 'pollinations', 'flux', () => pollinationsGot],
  ['HuggingSpace', 'hf-space', 'flux-1-schnell', () => (prompt) => spaceGot(schnell, prompt)],
  ['huggingspace', 'hf-space', 'flux-1-schnell', () => (prompt) => spaceGot(schnell, prompt)],
  ['BlackForestLabs_Flux1Schnell', 'hf-space', 'flux-1-schnell', () => (prompt) => spaceGot(schnell, prompt)],
  ['blackforestlabs_flux1schnell', 'hf-space', 'flux-1-schnell', () => (prompt) => spaceGot(schnell, prompt)],
  ['BLACKFORESTLABS_FLUX1SCHNELL', 'hf-space', 'flux-1-schnell', () => (prompt) => spaceGot(schnell, prompt)],
  ['BlackForestLabs_Flux1Dev', 'hf-space', 'flux-1-dev', () => (prompt) => spaceGot(dev, prompt)],
  ['blackforestlabs_flux1dev', 'hf-space', 'flux-1-dev', () => (prompt) => spaceGot(dev, prompt)],
  ['StabilityAI_SD35Large', 'hf-space', 'sd-3.5-large', () => (prompt) => spaceGot(stableDiffusion, prompt)],
  ['STABILITYAI_SD35LARGE', 'hf-space', 'sd-3.5-large', () => (prompt) => spaceGot(stableDiffusion, prompt)],
];

describe('gpt4free provider names for images', () => {
  it.each(IMAGE_NAMES)('REST provider "%s" runs %s:%s on the right upstream', async (name, provider, model, receivedBy) => {
    const prompt = uniquePrompt();
    const response = await postJson(started.url, '/v1/images/generations', { provider: name, model: '', prompt, response_format: 'b64_json' });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ provider, model });
    expect(receivedBy()(prompt)).toBe(true);
  });

  it.each(IMAGE_NAMES.filter(([name]) => name !== name.toLowerCase()))(
    'GraphQL provider, providers and "%s:" model prefix run %s:%s',
    async (name, provider, model, receivedBy) => {
      for (const input of [{ provider: name }, { providers: [name] }, { model: `${name}:` }]) {
        const prompt = uniquePrompt();
        const results = await collectServerSentEvents(started.graphqlUrl, IMAGE_GENERATION_SUBSCRIPTION, { input: { ...input, prompt } });
        const events = results.map((result) => result.data?.imageGeneration as ImageEvent);
        expect(results.flatMap((result) => result.errors ?? []), JSON.stringify(input)).toEqual([]);
        expect(events[0], JSON.stringify(input)).toMatchObject({ __typename: 'ImageGenerationStarted', provider, model });
        expect(events.at(-1)?.__typename, JSON.stringify(input)).toBe('ImageGenerationCompleted');
        expect(receivedBy()(prompt), JSON.stringify(input)).toBe(true);
      }
    },
  );

  it("takes gpt4free's model names under a name of one Space, and refuses another model of hf-space", async () => {
    const route = async (provider: string, model: string) =>
      (await started.app.registry.imageCandidates({ provider, model })).map((candidate) => `${candidate.provider.id}:${candidate.model}`);
    // gpt4free's BlackForestLabs_Flux1Dev answers to flux, flux-dev and its own id; so does the name here.
    expect(await route('BlackForestLabs_Flux1Dev', 'flux')).toEqual(['hf-space:flux-1-dev']);
    expect(await route('BlackForestLabs_Flux1Dev', 'black-forest-labs-flux-1-dev')).toEqual(['hf-space:flux-1-dev']);
    expect(await route('StabilityAI_SD35Large', 'sd-3.5-large')).toEqual(['hf-space:sd-3.5-large']);
    // HuggingSpace is all of hf-space: the model picks the Space.
    expect(await route('HuggingSpace', 'sd-3.5-large')).toEqual(['hf-space:sd-3.5-large']);

    const response = await postJson(started.url, '/v1/images/generations', { provider: 'BlackForestLabs_Flux1Schnell', model: 'sd-3.5-large', prompt: uniquePrompt() });
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('MODEL_NOT_FOUND');
    expect(body.error.message).toContain('hf-space:flux-1-schnell only');
  });
});

describe('gpt4free provider names for chat and the catalog', () => {
  it('REST chat with provider "PollinationsAI" streams from Pollinations\' text API', async () => {
    const before = pollinationsText.chatRequests().length;
    const response = await postJson(started.url, '/v1/chat/completions', { provider: 'PollinationsAI', model: '', messages: [{ role: 'user', content: 'hi' }] });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ provider: 'pollinations', model: 'openai' });
    expect(pollinationsText.chatRequests().length).toBe(before + 1);
  });

  it.each([
    ['PollinationsAI', 'pollinations'],
    ['pollinationsimage', 'pollinations'],
    ['HUGGINGSPACE', 'hf-space'],
    ['StabilityAI_SD35Large', 'hf-space'],
  ])('GET /v1/providers/%s answers %s', async (name, id) => {
    const response = await fetch(`${started.url}/v1/providers/${name}`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { id: string }).id).toBe(id);
  });
});

describe('an unknown provider name', () => {
  const listsOurs = (message: string) => {
    expect(message).toContain('Unknown provider "Blackbox"');
    for (const id of ['llama-cpp', 'hf-space', 'pollinations']) expect(message).toContain(id);
    for (const name of ['PollinationsAI', 'HuggingSpace', 'BlackForestLabs_Flux1Schnell', 'StabilityAI_SD35Large']) expect(message).toContain(name);
  };

  it('is a 404 PROVIDER_NOT_FOUND over REST (chat, images, the catalog) listing our ids and the names accepted', async () => {
    const chat = await postJson(started.url, '/v1/chat/completions', { provider: 'Blackbox', model: '', messages: [{ role: 'user', content: 'hi' }] });
    const images = await postJson(started.url, '/v1/images/generations', { provider: 'Blackbox', prompt: 'x' });
    const catalog = await fetch(`${started.url}/v1/providers/Blackbox`);
    for (const response of [chat, images, catalog]) {
      expect(response.status).toBe(404);
      const body = (await response.json()) as { error: { code: string; type: string; param: string; message: string } };
      expect(body.error).toMatchObject({ code: 'PROVIDER_NOT_FOUND', type: 'invalid_request_error', param: 'provider' });
      listsOurs(body.error.message);
    }
  });

  it('is PROVIDER_NOT_FOUND over GraphQL, with the same message', async () => {
    const result = await graphqlRequest(started.graphqlUrl, 'mutation($input: ChatCompletionInput!) { startChatCompletion(input: $input) { id } }', {
      input: { provider: 'Blackbox', messages: [{ role: 'USER', content: 'hi' }] },
    });
    expect(result.errors?.[0]?.extensions?.code).toBe('PROVIDER_NOT_FOUND');
    listsOurs(result.errors![0]!.message);
  });

  it('names the provider a gpt4free name stands for when that provider is off here', async () => {
    const withoutPollinations = await startApp({ HF_SPACES_ENABLED: 'true', HF_FLUX_SCHNELL_URL: schnell.baseURL });
    try {
      const response = await postJson(withoutPollinations.url, '/v1/images/generations', { provider: 'PollinationsAI', prompt: 'x' });
      expect(response.status).toBe(404);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('PROVIDER_NOT_FOUND');
      expect(body.error.message).toContain('"PollinationsAI" stands for "pollinations", which is not configured');
      expect(body.error.message).not.toContain('PollinationsImage'); // names of providers that are off are not offered
      // A name of a Space preset that is off: its provider is here, its model is not.
      const off = await postJson(withoutPollinations.url, '/v1/images/generations', { provider: 'BlackForestLabs_Flux1Dev', prompt: 'x' });
      expect(off.status).toBe(404);
      expect(((await off.json()) as { error: { code: string; message: string } }).error).toMatchObject({
        code: 'MODEL_NOT_FOUND',
        message: expect.stringContaining('hf-space:flux-1-dev, which this server does not serve'),
      });
    } finally {
      await withoutPollinations.stop();
    }
  });
});

describe("gpt4free's Copilot", () => {
  it('needs no name of its own: a provider whose id is copilot answers to "Copilot" in any case', async () => {
    const withCopilot = await startApp({}, { providers: [{ ...scriptedProvider(3), id: 'copilot', label: 'Copilot' }] });
    try {
      for (const name of ['Copilot', 'COPILOT', 'copilot']) {
        const response = await postJson(withCopilot.url, '/v1/chat/completions', { provider: name, model: '', messages: [{ role: 'user', content: 'hi' }] });
        expect(response.status, name).toBe(200);
        expect(await response.json()).toMatchObject({ provider: 'copilot', model: 'script' });
      }
    } finally {
      await withCopilot.stop();
    }
  });
});
