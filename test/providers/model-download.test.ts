/**
 * The default model's download on a first start (`LLAMA_DEFAULT_MODEL`, `HF_ENDPOINT`), against a
 * local server laid out like the Hugging Face Hub: the real app, node-llama-cpp's real downloader,
 * the real chat model file. While it downloads the server answers (`/healthz` says how far it got,
 * chat requests get `PROVIDER_UNAVAILABLE` with the progress); a download stopped half-way resumes
 * on the next start; a corrupt or refused file never becomes a model; offline is one log line.
 */
import { readFileSync, watch } from 'node:fs';
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseModelSource } from '../../src/providers/llama-cpp/model-source.js';
import { startFakeHuggingFaceHub, sha256Of, type FakeHuggingFaceHub } from '../helpers/fake-hugging-face-hub.js';
import { unusedBaseURL } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient, graphqlRequest } from '../helpers/graphql-clients.js';
import { memoryLog, type MemoryLog } from '../helpers/memory-log.js';
import { postJson } from '../helpers/rest-clients.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { TEST_MODELS_DIR } from '../helpers/test-models-dir.js';

/** node-llama-cpp's downloader (ipull) fetches and records progress in chunks of this many bytes. */
const DOWNLOAD_CHUNK_BYTES = 5 * 1024 * 1024;

/**
 * The chat test model followed by zeros up to a little more than one download chunk: llama.cpp
 * reads what the GGUF header describes and ignores the rest, and a file of two chunks lets a
 * download stop between them and resume.
 */
const MODEL = Buffer.concat([
  readFileSync(join(TEST_MODELS_DIR, 'chat', 'stories260K-chatml.gguf')),
  Buffer.alloc(DOWNLOAD_CHUNK_BYTES + 200_000),
]);
const MODEL_URI = 'hf:tests/chat-model-GGUF/chat-model.gguf';
/** The downloader asks for both chunks at once; this holds the second after 300 kB. */
const SECOND_CHUNK_STALL = { rangeStart: DOWNLOAD_CHUNK_BYTES, bytes: 300_000 };

let hub: FakeHuggingFaceHub;
let started: StartedApp | undefined;

beforeAll(async () => {
  hub = await startFakeHuggingFaceHub([
    { path: 'tests/chat-model-GGUF/chat-model.gguf', content: MODEL },
    { path: 'tests/corrupt-GGUF/corrupt.gguf', content: MODEL, advertisedSha256: sha256Of(Buffer.from('something else')) },
    { path: 'tests/gated-GGUF/gated.gguf', content: MODEL, token: 'hf_right_token' },
  ]);
});

afterEach(async () => {
  hub.stall = undefined;
  hub.release();
  await started?.stop();
  started = undefined;
});

afterAll(async () => {
  await hub?.close();
});

/** Starts the app with an empty models folder and `uri` as the default model, logging to memory. */
async function startWithEmptyModels(uri: string, settings: Record<string, string> = {}): Promise<{ modelsDir: string; log: MemoryLog }> {
  const modelsDir = await mkdtemp(join(tmpdir(), 'gateway-models-'));
  const log = memoryLog();
  started = await startApp({ MODELS_DIR: modelsDir, LLAMA_DEFAULT_MODEL: uri, HF_ENDPOINT: hub.endpoint, ...settings }, { logger: log.logger });
  return { modelsDir, log };
}

/** Resolves once the file at `path` is larger than `bytes` (woken by the folder's change events). */
function fileGrowsPast(path: string, bytes: number, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const watcher = watch(dirname(path));
    const timer = setTimeout(() => finish(new Error(`${path} did not grow past ${bytes} bytes within ${timeoutMs} ms`)), timeoutMs);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      watcher.close();
      if (error) reject(error);
      else resolve();
    };
    const check = () => {
      stat(path).then(
        ({ size }) => size > bytes && finish(),
        () => {},
      );
    };
    watcher.on('change', check);
    check();
  });
}

const downloaded = (line: Record<string, any>) => typeof line.msg === 'string' && line.msg.startsWith('llama-cpp: downloaded ');
const warnings = (log: MemoryLog) => log.lines().filter((line) => line.level === 'warn' && line.provider === 'llama-cpp');

describe('the default model on a first start', () => {
  it('downloads while the server answers, then a chat streams from it', async () => {
    hub.stall = SECOND_CHUNK_STALL;
    const { modelsDir, log } = await startWithEmptyModels(MODEL_URI);
    await hub.stalled();
    // The first chunk is whole and 300 kB of the second arrived: 83 % of the file.
    await log.waitFor('at 80 %', (line) => line.percent === 80);
    expect(log.lines().filter((line) => line.percent !== undefined).map((line) => line.percent)).toEqual([10, 20, 30, 40, 50, 60, 70, 80]);

    const health = await fetch(`${started!.url}/healthz`);
    expect(health.status).toBe(200);
    const body = (await health.json()) as { status: string; providers: Record<string, string> };
    expect(body.status).toBe('ok');
    expect(body.providers['llama-cpp']).toMatch(/^downloading chat-model: 8\d % \(5\.\d MB of 6\.6 MB, [\d.]+ MB\/s/);
    // Not ready while the provider loads its default model: the reason says how far it got.
    const readiness = await fetch(`${started!.url}/readyz`);
    expect(readiness.status).toBe(503);
    expect(await readiness.json()).toEqual({
      status: 'starting',
      reason: expect.stringMatching(/^llama-cpp: downloading chat-model: 8\d % /),
      providers: { 'llama-cpp': expect.stringMatching(/^downloading chat-model: 8\d % /) },
    });

    // A chat for the default model, and one for the coming model by name: refused with the progress, nothing lost.
    for (const model of ['', 'chat-model']) {
      const refused = await postJson(started!.url, '/v1/chat/completions', { model, messages: [{ role: 'user', content: 'Hi' }] });
      expect(refused.status).toBe(503);
      const { error } = (await refused.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('PROVIDER_UNAVAILABLE');
      expect(error.message).toMatch(/downloading chat-model: \d+ %/);
    }
    expect(await readdir(modelsDir)).toEqual(['.downloads']);

    // The held response is cut: the downloader asks again and finishes.
    hub.release();
    const done = await log.waitFor('saying the model was downloaded', downloaded);
    expect(done).toMatchObject({ model: 'chat-model', totalBytes: MODEL.length });
    expect(sha256Of(await readFile(join(modelsDir, 'chat-model.gguf')))).toBe(sha256Of(MODEL));
    expect(await readdir(join(modelsDir, '.downloads'))).toEqual([]);
    expect(await fetch(`${started!.url}/healthz`).then((response) => response.json())).toEqual({ status: 'ok' });
    const ready = await fetch(`${started!.url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { status: 'ok' }]);

    const client = createWebSocketClient(started!.webSocketUrl);
    try {
      const events = await collectWebSocket(
        client,
        `subscription { chatCompletion(input: { messages: [{ role: USER, content: "Once upon a time" }], maxTokens: 20 }) {
          __typename ... on ChatCompletionStarted { provider model } ... on ChatTokenDelta { text } ... on ChatCompletionCompleted { finishReason text } } }`,
      );
      const results = events.map((event) => event.data!.chatCompletion);
      expect(results[0]).toEqual({ __typename: 'ChatCompletionStarted', provider: 'llama-cpp', model: 'chat-model' });
      expect(results.at(-1)).toMatchObject({ __typename: 'ChatCompletionCompleted' });
      expect(results.at(-1).text.length).toBeGreaterThan(0);
    } finally {
      await client.dispose();
    }
    expect(warnings(log).filter((line) => line.msg.startsWith('llama-cpp:'))).toEqual([]);
  });

  it('resumes a download stopped half-way from its last whole chunk', async () => {
    hub.stall = SECOND_CHUNK_STALL;
    const first = await startWithEmptyModels(MODEL_URI);
    await hub.stalled();
    // The downloader writes a chunk once it is whole, then its record of the chunks done after the data.
    await fileGrowsPast(join(first.modelsDir, '.downloads', 'chat-model.gguf.ipull'), MODEL.length);
    await started!.stop();
    started = undefined;
    expect(first.log.lines().some((line) => /the download of chat-model was stopped; the next start resumes it/.test(line.msg))).toBe(true);
    // Nothing that looks like a model: the unfinished file waits in .downloads under its in-progress name.
    expect((await readdir(first.modelsDir)).filter((name) => name.endsWith('.gguf'))).toEqual([]);
    expect(await readdir(join(first.modelsDir, '.downloads'))).toEqual(['chat-model.gguf.ipull']);

    const rangesBefore = hub.storageRanges().length;
    const log = memoryLog();
    started = await startApp({ MODELS_DIR: first.modelsDir, LLAMA_DEFAULT_MODEL: MODEL_URI, HF_ENDPOINT: hub.endpoint }, { logger: log.logger });
    await log.waitFor('saying the model was downloaded', downloaded);
    // Only the second chunk was asked for again; the first came from the first run.
    expect(hub.storageRanges().slice(rangesBefore)).toEqual([`bytes=${DOWNLOAD_CHUNK_BYTES}-${MODEL.length - 1}`]);
    expect(sha256Of(await readFile(join(first.modelsDir, 'chat-model.gguf')))).toBe(sha256Of(MODEL));
  });

  it('refuses a file whose SHA-256 is not the Hub\'s, and leaves no model behind', async () => {
    const { modelsDir, log } = await startWithEmptyModels('hf:tests/corrupt-GGUF/corrupt.gguf');
    const warning = await log.waitFor('warning of the failure', (line) => line.level === 'warn' && line.provider === 'llama-cpp');
    expect(warning.msg).toMatch(/^llama-cpp: could not download hf:tests\/corrupt-GGUF\/corrupt\.gguf: the downloaded file is corrupt and was deleted: its SHA-256 is [0-9a-f]{64}, the server's is [0-9a-f]{64}\. Put a \.gguf file in .+ by hand/);
    expect((await readdir(modelsDir)).filter((name) => name.endsWith('.gguf'))).toEqual([]);
    expect(await readdir(join(modelsDir, '.downloads'))).toEqual([]);
    const body = (await fetch(`${started!.url}/healthz`).then((response) => response.json())) as { providers: Record<string, string> };
    expect(body.providers['llama-cpp']).toMatch(/^the download of corrupt failed: the downloaded file is corrupt/);
    // Loading is over, if without the model: ready for what else there is, with the failure in the notes.
    const readiness = await fetch(`${started!.url}/readyz`);
    expect(readiness.status).toBe(200);
    expect(await readiness.json()).toEqual({ status: 'ok', providers: body.providers });
    const refused = await postJson(started!.url, '/v1/chat/completions', { model: '', messages: [{ role: 'user', content: 'Hi' }] });
    expect(refused.status).toBe(404);
    expect(warnings(log)).toHaveLength(1);
  });

  it('says in one line that a gated model needs HF_TOKEN, and downloads it with one', async () => {
    const refused = await startWithEmptyModels('hf:tests/gated-GGUF/gated.gguf');
    const warning = await refused.log.waitFor('warning of the failure', (line) => line.level === 'warn' && line.provider === 'llama-cpp');
    expect(warning.msg).toMatch(/HEAD http:\/\/127\.0\.0\.1:\d+\/tests\/gated-GGUF\/resolve\/main\/gated\.gguf failed: HTTP 401 \(a gated or private repository needs HF_TOKEN\)/);
    await started!.stop();

    const { modelsDir, log } = await startWithEmptyModels('hf:tests/gated-GGUF/gated.gguf', { HF_TOKEN: 'hf_right_token' });
    await log.waitFor('saying the model was downloaded', downloaded);
    expect(sha256Of(await readFile(join(modelsDir, 'gated.gguf')))).toBe(sha256Of(MODEL));
    expect(log.text()).not.toContain('hf_right_token');
  });

  it('offline: one warning line, and the server serves what else there is', async () => {
    const { log } = await startWithEmptyModels(MODEL_URI, { HF_ENDPOINT: (await unusedBaseURL()).replace(/\/v1$/, '') });
    const warning = await log.waitFor('warning of the failure', (line) => line.level === 'warn' && line.provider === 'llama-cpp');
    expect(warning.msg).toMatch(
      /^llama-cpp: could not download hf:tests\/chat-model-GGUF\/chat-model\.gguf: HEAD http:\/\/127\.0\.0\.1:\d+\/tests\/chat-model-GGUF\/resolve\/main\/chat-model\.gguf failed: ECONNREFUSED\. Put a \.gguf file in .+ by hand \(npm run models -- pull <uri>, or any download\), or set LLAMA_DEFAULT_MODEL=none$/,
    );
    expect(warnings(log)).toHaveLength(1);
    expect((await fetch(`${started!.url}/healthz`)).status).toBe(200);
    const providers = await graphqlRequest(started!.graphqlUrl, '{ providers { id available unavailableReason } }');
    expect(providers.data.providers[0]).toMatchObject({ id: 'llama-cpp', available: false });
    expect(providers.data.providers[0].unavailableReason).toMatch(/no \.gguf files in .+; the download of chat-model failed: HEAD .+ ECONNREFUSED/);
  });

  it('downloads nothing when the models folder has a model, or with LLAMA_DEFAULT_MODEL=none', async () => {
    const requests = hub.requests.length;
    const log = memoryLog();
    started = await startApp({ LLAMA_DEFAULT_MODEL: MODEL_URI, HF_ENDPOINT: hub.endpoint }, { logger: log.logger });
    await started.stop();
    const empty = await mkdtemp(join(tmpdir(), 'gateway-models-'));
    started = await startApp({ MODELS_DIR: empty, LLAMA_DEFAULT_MODEL: 'none', HF_ENDPOINT: hub.endpoint }, { logger: log.logger });
    expect(hub.requests.length).toBe(requests);
    expect(await readdir(empty)).toEqual([]);
    expect(log.lines().filter((line) => line.provider === 'llama-cpp')).toEqual([]);
  });
});

describe('model URIs', () => {
  it('names the file and the Hub URL that describes it', () => {
    expect(parseModelSource('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf', 'https://huggingface.co')).toEqual({
      uri: 'hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf',
      fileName: 'qwen2.5-0.5b-instruct-q4_k_m.gguf',
      modelId: 'qwen2.5-0.5b-instruct-q4_k_m',
      metadataUrl: 'https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf',
    });
    expect(parseModelSource('hf:owner/repo/sub/dir/m.gguf#v1.0', 'http://mirror:8080')).toMatchObject({
      fileName: 'm.gguf',
      metadataUrl: 'http://mirror:8080/owner/repo/resolve/v1.0/sub/dir/m.gguf',
    });
    expect(parseModelSource('https://example.com/files/My%20Model.gguf?download=true', 'https://huggingface.co')).toMatchObject({
      fileName: 'My Model.gguf',
      modelId: 'My Model',
      metadataUrl: 'https://example.com/files/My%20Model.gguf?download=true',
    });
    expect(() => parseModelSource('hf:owner/repo:Q4_K_M', 'https://huggingface.co')).toThrow(/neither hf:<owner>\/<repository>\/<file>\.gguf nor a URL/);
    expect(() => parseModelSource('ftp://example.com/m.gguf', 'https://huggingface.co')).toThrow(/not an http\(s\) URL/);
  });
});
