/**
 * How requests name providers and models, as new users hit it: provider ids in any case (gpt4free
 * writes `"Copilot"`), a configured upstream's image model `flux` beats the built-in `flux` alias
 * (routing goes where `/v1/models` says), and a REST user is pointed at `GET /v1/models`.
 */
import OpenAI, { NotFoundError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAIUpstream, unusedBaseURL, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { graphqlRequest } from '../helpers/graphql-clients.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';

let upstream: FakeOpenAIUpstream;
let started: StartedApp;

beforeAll(async () => {
  upstream = await startFakeOpenAIUpstream();
  started = await startApp({
    // The built-in flux alias points at hf-space first; nothing listens at its URL here.
    HF_SPACES_ENABLED: 'true',
    HF_FLUX_SCHNELL_URL: await unusedBaseURL(),
    BREAKER_ENABLED: 'false',
    OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'], imageModels: ['flux'] }]),
  });
});

afterAll(async () => {
  await started?.stop();
  await upstream?.close();
});

describe('provider ids', () => {
  it.each(['LLAMA-CPP', 'Llama-Cpp', 'llama-cpp'])('matches %s without regard to case (REST provider, GraphQL provider and provider:model)', async (id) => {
    const rest = await postJson(started.url, '/v1/chat/completions', { model: '', provider: id, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 4 });
    expect(rest.status).toBe(200);
    expect(((await rest.json()) as { provider: string }).provider).toBe('llama-cpp');

    const graphql = await graphqlRequest(started.graphqlUrl, 'mutation($input: ChatCompletionInput!) { startChatCompletion(input: $input) { provider model } }', {
      input: { model: `${id}:stories260K`, messages: [{ role: 'USER', content: 'Once' }], maxTokens: 2 },
    });
    expect(graphql.data.startChatCompletion).toEqual({ provider: 'llama-cpp', model: 'stories260K' });

    const provider = await fetch(`${started.url}/v1/providers/${id}`);
    expect(provider.status).toBe(200);
    expect(((await provider.json()) as { id: string }).id).toBe('llama-cpp');
  });
});

describe('a configured model and a built-in alias of the same name', () => {
  it('routes flux to the upstream that lists it, as /v1/models says', async () => {
    const models = (await (await fetch(`${started.url}/v1/models/flux`)).json()) as { providers: string[] };
    expect(models.providers).toEqual(['fake']);
    const candidates = await started.app.registry.imageCandidates({ model: 'flux' });
    expect(candidates.map((candidate) => `${candidate.provider.id}:${candidate.model}`)).toEqual(['fake:flux']);

    const response = await postJson(started.url, '/v1/images/generations', { model: 'flux', prompt: 'a fox', response_format: 'b64_json' });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ provider: 'fake', model: 'flux' });
    expect((upstream.imageRequests().at(-1)!.body as { model: string }).model).toBe('flux');
  });

  it('keeps the built-in alias where no configured provider serves the name', async () => {
    const app = await startApp({ HF_SPACES_ENABLED: 'true', HF_FLUX_SCHNELL_URL: await unusedBaseURL() });
    try {
      const candidates = await app.app.registry.imageCandidates({ model: 'flux' });
      expect(candidates.map((candidate) => `${candidate.provider.id}:${candidate.model}`)).toEqual(['hf-space:flux-1-schnell']);
    } finally {
      await app.stop();
    }
  });
});

describe('an unknown model over REST', () => {
  it('names GET /v1/models in its message', async () => {
    const openai = new OpenAI({ baseURL: `${started.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const error = await openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).message).toContain('GET /v1/models');
  });
});
