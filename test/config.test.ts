/** Configuration: defaults, validation with one clear line, and start-up with unavailable providers. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { unusedBaseURL } from './helpers/fake-openai-upstream.js';
import { graphqlRequest } from './helpers/graphql-clients.js';
import { startApp } from './helpers/start-app.js';

const repositoryRoot = fileURLToPath(new URL('..', import.meta.url));

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 1337,
      host: '127.0.0.1',
      modelsDir: './models',
      llamaContextSize: 2048,
      llamaSequences: 4,
      llamaGpu: 'auto',
      generationRetentionMs: 3_600_000,
      upstreams: [],
      graphiql: true,
      maxTokensLimit: 131_072,
      generationTimeoutMs: 600_000,
      corsOrigins: [],
    });
    expect(config.defaultMaxTokens).toBeUndefined();
    expect(config.llamaThreads).toBeGreaterThan(0);
  });

  it.each([
    [{ PORT: 'abc' }, /^Invalid configuration: PORT: .*\(got "abc"\)$/],
    [{ LLAMA_THREADS: '0' }, /^Invalid configuration: LLAMA_THREADS: .*greater than 0/],
    [{ LLAMA_GPU: 'tpu' }, /^Invalid configuration: LLAMA_GPU: /],
    [{ OPENAI_COMPATIBLE_UPSTREAMS: '[{' }, /^Invalid configuration: OPENAI_COMPATIBLE_UPSTREAMS: .*JSON array/],
    [{ OPENAI_COMPATIBLE_UPSTREAMS: '[{"id":"x","baseURL":"not a url"}]' }, /OPENAI_COMPATIBLE_UPSTREAMS\.0\.baseURL/],
    [{ OPENAI_COMPATIBLE_UPSTREAMS: '[{"id":"Bad Id","baseURL":"http://127.0.0.1:1/v1"}]' }, /OPENAI_COMPATIBLE_UPSTREAMS\.0\.id/],
    [{ OPENAI_COMPATIBLE_UPSTREAMS: '[{"id":"llama-cpp","baseURL":"http://127.0.0.1:1/v1"}]' }, /"llama-cpp" is used twice/],
    [{ OPENAI_COMPATIBLE_UPSTREAMS: '[{"id":"x","baseURL":"http://127.0.0.1:1/v1","apiKeyEnv":"NO_SUCH_VARIABLE"}]' }, /NO_SUCH_VARIABLE is not set/],
    [{ GRAPHIQL: 'maybe' }, /^Invalid configuration: GRAPHIQL: /],
    [{ MAX_TOKENS_LIMIT: '0' }, /^Invalid configuration: MAX_TOKENS_LIMIT: .*greater than 0/],
    [{ DEFAULT_MAX_TOKENS: '9000', MAX_TOKENS_LIMIT: '8192' }, /^Invalid configuration: DEFAULT_MAX_TOKENS: must be at most MAX_TOKENS_LIMIT \(8192\) \(got 9000\)$/],
    [{ GENERATION_TIMEOUT_MS: '-1' }, /^Invalid configuration: GENERATION_TIMEOUT_MS: /],
    [{ CORS_ORIGINS: 'https://app.example.com/path' }, /^Invalid configuration: CORS_ORIGINS\.0: CORS_ORIGINS must list origins \(scheme, host and port, no path\), or \*/],
    [{ CORS_ORIGINS: 'app.example.com' }, /^Invalid configuration: CORS_ORIGINS\.0: /],
    [{ CONFIG_FILE: '/no/such/file.json' }, /^CONFIG_FILE: cannot read \/no\/such\/file\.json/],
    [{ ROLE: 'api' }, /^Invalid configuration: ROLE: api needs REDIS_URL /],
    [{ WORKER_CONCURRENCY_FAKE: '0' }, /^Invalid configuration: WORKER_CONCURRENCY_FAKE: must be a whole number above 0 \(got "0"\)$/],
    [{ HF_SPACES: '[{"model":"flux-1-schnell","baseURL":"https://a.hf.space","endpoint":"infer","inputs":["{prompt}"]}]' }, /^Invalid configuration: HF_SPACES: model "flux-1-schnell" is used twice$/],
    [
      { HF_SD_3_5_LARGE_ENABLED: 'true', HF_SPACES: '[{"model":"sd-3.5-large","baseURL":"https://a.hf.space","endpoint":"infer","inputs":["{prompt}"]}]' },
      /^Invalid configuration: HF_SPACES: model "sd-3.5-large" is used twice$/,
    ],
    [{ HF_FLUX_DEV_ENABLED: 'sometimes' }, /^Invalid configuration: HF_FLUX_DEV_ENABLED: /],
    [{ HF_SPACES: '[{"model":"x","baseURL":"https://a.hf.space","endpoint":"infer","inputs":[]}]' }, /^Invalid configuration: HF_SPACES\.0\.inputs: inputs must list the data items$/],
    [{ LOG_LEVEL: 'loud' }, /^Invalid configuration: LOG_LEVEL: LOG_LEVEL must be trace, debug, info, warn, error, fatal or silent \(got "loud"\)$/],
    [{ OPENAI_API_KEY: 'sk-secret', OPENAI_BASE_URL: 'not a url' }, /^Invalid configuration: OPENAI_BASE_URL: /],
  ])('rejects %o with one line naming the setting', (environment, message) => {
    let error: unknown;
    try {
      loadConfig(environment);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });

  it('reads upstreams with keys from the environment, OPENAI_API_KEY, and a CONFIG_FILE the environment overrides', () => {
    const folder = mkdtempSync(join(tmpdir(), 'gateway-config-'));
    const file = join(folder, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        PORT: 8080,
        LLAMA_SEQUENCES: 2,
        OPENAI_COMPATIBLE_UPSTREAMS: [{ id: 'groq', baseURL: 'https://api.groq.com/openai/v1/', apiKeyEnv: 'GROQ_KEY', models: ['llama-3.1-8b-instant'] }],
      }),
    );
    const config = loadConfig({ CONFIG_FILE: file, PORT: '9090', GROQ_KEY: 'gsk-1', OPENAI_API_KEY: 'sk-2' });
    expect(config.port).toBe(9090);
    expect(config.llamaSequences).toBe(2);
    expect(config.upstreams).toEqual([
      expect.objectContaining({ id: 'groq', baseURL: 'https://api.groq.com/openai/v1', apiKey: 'gsk-1', models: ['llama-3.1-8b-instant'], connectTimeoutMs: 10_000, idleTimeoutMs: 30_000 }),
      expect.objectContaining({ id: 'openai', baseURL: 'https://api.openai.com/v1', apiKey: 'sk-2' }),
    ]);
  });
});

describe('loadConfig, derived values', () => {
  it('builds the hf-space, pollinations and alias settings from their variables, trailing slashes removed', () => {
    const config = loadConfig({
      HF_FLUX_SCHNELL_URL: 'https://flux.example/',
      HF_SPACES: '[{"model":"sd","baseURL":"https://sd.hf.space/","endpoint":"infer","inputs":["{prompt}"]}]',
      POLLINATIONS_TEXT_BASE_URL: 'https://text.example/openai/',
      POLLINATIONS_IMAGE_MODELS: 'flux, turbo,,kontext',
      MODEL_ALIASES: '{"flux":"pollinations:flux"}',
      PUBLIC_BASE_URL: 'https://gateway.example/',
      CORS_ORIGINS: 'https://app.example.com/, *',
    });
    expect(config.huggingFaceSpaces.map((space) => [space.model, space.label, space.baseURL])).toEqual([
      ['flux-1-schnell', 'FLUX.1 [schnell] (black-forest-labs/FLUX.1-schnell)', 'https://flux.example'],
      ['sd', 'sd', 'https://sd.hf.space'],
    ]);
    expect(config.huggingFaceSpaces[1]).toMatchObject({ imageIndex: 0, defaultWidth: 1024, defaultHeight: 1024, defaultSteps: 4 });
    expect(config.pollinations).toEqual({
      imageBaseURL: 'https://image.pollinations.ai',
      textBaseURL: 'https://text.example/openai',
      imageModels: ['flux', 'turbo', 'kontext'],
      textModels: ['openai'],
    });
    expect(config.modelAliases).toEqual({ flux: ['pollinations:flux'] });
    expect(config.defaultModelAliases).toEqual({ 'flux-schnell': ['hf-space:flux-1-schnell', 'pollinations:flux'], 'flux-dev': ['hf-space:flux-1-dev'] });
    expect(config.publicBaseUrl).toBe('https://gateway.example');
    expect(config.corsOrigins).toEqual(['https://app.example.com', '*']);
  });

  it('adds the FLUX.1-dev and Stable Diffusion 3.5 Large presets only when turned on, before HF_SPACES', () => {
    expect(loadConfig({}).huggingFaceSpaces.map((space) => space.model)).toEqual(['flux-1-schnell']);
    const config = loadConfig({
      HF_FLUX_DEV_ENABLED: 'true',
      HF_SD_3_5_LARGE_ENABLED: 'true',
      HF_SD_3_5_LARGE_URL: 'https://sd.example/',
      HF_SPACES: '[{"model":"sd-3.5-large-copy","baseURL":"https://copy.hf.space","endpoint":"infer","inputs":["{prompt}"]}]',
    });
    expect(config.huggingFaceSpaces.map((space) => [space.model, space.baseURL])).toEqual([
      ['flux-1-schnell', 'https://black-forest-labs-flux-1-schnell.hf.space'],
      ['flux-1-dev', 'https://black-forest-labs-flux-1-dev.hf.space'],
      ['sd-3.5-large', 'https://sd.example'],
      ['sd-3.5-large-copy', 'https://copy.hf.space'],
    ]);
    // An HF_SPACES entry may use a preset's model id while that preset is off (the reference's old example did).
    const spaces = loadConfig({ HF_SPACES: '[{"model":"sd-3.5-large","baseURL":"https://mine.hf.space","endpoint":"infer","inputs":["{prompt}"]}]' }).huggingFaceSpaces;
    expect(spaces.map((space) => [space.model, space.baseURL])).toEqual([
      ['flux-1-schnell', 'https://black-forest-labs-flux-1-schnell.hf.space'],
      ['sd-3.5-large', 'https://mine.hf.space'],
    ]);
    expect(loadConfig({ HF_SPACES_ENABLED: 'false', HF_FLUX_DEV_ENABLED: 'true' }).huggingFaceSpaces).toEqual([]);
  });

  it('builds the copilot settings only when COPILOT_ENABLED, with the gpt-4 and gpt-4o aliases, and never repeats a bad cookie value', () => {
    const off = loadConfig({ COPILOT_COOKIES: '__Host-copilot-anon=a' });
    expect('copilot' in off).toBe(false);
    expect(Object.keys(off.defaultModelAliases)).toEqual(['flux', 'flux-schnell', 'flux-dev']);

    const on = loadConfig({ COPILOT_ENABLED: 'true', COPILOT_BASE_URL: 'https://copilot.example/', COPILOT_COOKIES: '__Host-copilot-anon=a', MODEL_ALIASES: '{"gpt-4":"openai:gpt-4"}' });
    expect(on.copilot).toEqual({ baseURL: 'https://copilot.example', cookies: '__Host-copilot-anon=a', maxConversations: 10_000 });
    expect(on.defaultModelAliases).toMatchObject({ 'gpt-4o': ['copilot:Copilot'] });
    expect('gpt-4' in on.defaultModelAliases).toBe(false); // MODEL_ALIASES names it

    const error = (() => {
      try {
        loadConfig({ COPILOT_COOKIES: 'no-pairs-but-a-secret-0123456789' });
      } catch (caught) {
        return caught as Error;
      }
    })();
    expect(error?.message).toBe('Invalid configuration: COPILOT_COOKIES: COPILOT_COOKIES must be a Cookie header: name=value; name2=value2');
  });

  it('leaves switched-off providers and unset optional settings out', () => {
    const config = loadConfig({ HF_SPACES_ENABLED: 'false', POLLINATIONS_ENABLED: '0' });
    expect(config.huggingFaceSpaces).toEqual([]);
    expect('pollinations' in config).toBe(false);
    for (const property of ['defaultChatModel', 'defaultImageModel', 'defaultMaxTokens', 'redisUrl', 'publicBaseUrl', 'huggingFaceToken']) {
      expect(property in config, property).toBe(false);
    }
    expect(loadConfig({ DEFAULT_MAX_TOKENS: '512' }).defaultMaxTokens).toBe(512);
  });

  it('reads WORKER_CONCURRENCY_{PROVIDER} under both spellings of the provider id, from the environment or a CONFIG_FILE', () => {
    const folder = mkdtempSync(join(tmpdir(), 'gateway-config-'));
    const file = join(folder, 'config.json');
    writeFileSync(file, JSON.stringify({ WORKER_CONCURRENCY_GROQ: 3 }));
    const config = loadConfig({ CONFIG_FILE: file, WORKER_CONCURRENCY_LLAMA_CPP: '1' });
    expect(config.workerConcurrencyByProvider).toEqual({ groq: 3, llama_cpp: 1, 'llama-cpp': 1 });
  });
});

describe('start-up', () => {
  it('stops with exit status 1 and one line naming the bad setting', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: repositoryRoot,
      env: { ...process.env, LLAMA_THREADS: 'many', PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(status).toBe(1);
    expect(stderr.trim()).toMatch(/^Invalid configuration: LLAMA_THREADS: .*\(got "many"\)$/);
  });

  it('serves even when every provider is unavailable, and says why', async () => {
    const started = await startApp({
      MODELS_DIR: join(tmpdir(), 'no-such-models-folder'),
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'down', baseURL: await unusedBaseURL(), connectTimeoutMs: 1000 }]),
    });
    try {
      const response = await graphqlRequest(started.graphqlUrl, '{ providers { id available unavailableReason models { id } } }');
      expect(response.errors).toBeUndefined();
      const [llama, down] = response.data.providers;
      expect(llama).toMatchObject({ id: 'llama-cpp', available: false, models: [] });
      expect(llama.unavailableReason).toMatch(/does not exist/);
      expect(down).toMatchObject({ id: 'down', available: false, models: [] });
      expect(down.unavailableReason).toMatch(/ECONNREFUSED/);

      const start = await graphqlRequest(started.graphqlUrl, 'mutation { startChatCompletion(input: { messages: [{ role: USER, content: "hi" }] }) { id } }');
      expect(start.errors![0]!.extensions!.code).toBe('MODEL_NOT_FOUND');
      expect(start.errors![0]!.message).toMatch(/No chat model is available/);
    } finally {
      await started.stop();
    }
  });
});

describe('CONVERSATION_STORE', () => {
  const POSTGRES = 'postgres://gateway@127.0.0.1:5432/gateway';
  const REDIS = 'redis://127.0.0.1:6379/0';

  it.each([
    [{}, 'database'],
    [{ DATABASE_URL: 'memory://' }, 'database'],
    [{ DATABASE_URL: 'none' }, 'memory'],
    [{ DATABASE_URL: 'none', REDIS_URL: REDIS }, 'redis'],
    // Instances on one Redis share it; an embedded database would be each instance's own.
    [{ REDIS_URL: REDIS }, 'redis'],
    [{ DATABASE_URL: POSTGRES, REDIS_URL: REDIS }, 'database'],
    [{ DATABASE_URL: POSTGRES }, 'database'],
    [{ CONVERSATION_STORE: 'memory' }, 'memory'],
    [{ CONVERSATION_STORE: 'redis', REDIS_URL: REDIS, DATABASE_URL: POSTGRES }, 'redis'],
  ])('with %j is %s', (environment, store) => {
    expect(loadConfig(environment).conversationStore).toBe(store);
  });

  it.each([
    [{ CONVERSATION_STORE: 'database', DATABASE_URL: 'none' }, 'Invalid configuration: CONVERSATION_STORE: database needs a database, and DATABASE_URL is none'],
    [{ CONVERSATION_STORE: 'redis' }, 'Invalid configuration: CONVERSATION_STORE: redis needs REDIS_URL'],
    [{ CONVERSATION_STORE: 'disk' }, 'Invalid configuration: CONVERSATION_STORE: CONVERSATION_STORE must be database, memory or redis (got "disk")'],
  ])('refuses %j in one line', (environment, message) => {
    expect(() => loadConfig(environment)).toThrow(new ConfigError(message));
  });
});
