/**
 * A fresh clone's first start, as the README tells it: `npm start` with an empty models folder
 * fetches the default model (`LLAMA_DEFAULT_MODEL` as shipped) from the Hub — here a local server
 * laid out like it (`HF_ENDPOINT`), serving the chat test model under the default model's name —
 * logs its progress (standard output is not a terminal, so one line per 10 % instead of a bar), and
 * then the README's first GraphQL example streams from it over graphql-ws.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_LLAMA_MODEL } from '../../src/config/provider-settings.js';
import { parseModelSource } from '../../src/providers/llama-cpp/model-source.js';
import { emptyModelsDir } from '../helpers/app-process.js';
import { startFakeHuggingFaceHub, type FakeHuggingFaceHub } from '../helpers/fake-hugging-face-hub.js';
import { collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { testAppDefaults } from '../helpers/start-app.js';
import { TEST_MODELS_DIR } from '../helpers/test-models-dir.js';

const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));
/** npm, esbuild, the gateway's start and the download on a loaded 2-core machine. */
const TIMEOUT_MS = 90_000;

/** The GraphQL of the README's first example ("In GraphiQL, over graphql-ws"). */
function readmeFirstExample(): string {
  const readme = readFileSync(join(REPOSITORY, 'README.md'), 'utf8');
  const example = /### In GraphiQL, over graphql-ws\s+```graphql\n([\s\S]+?)```/.exec(readme);
  if (!example) throw new Error('the README has no "In GraphiQL, over graphql-ws" example');
  return example[1]!;
}

let hub: FakeHuggingFaceHub | undefined;
let npmGroup: number | undefined;

afterAll(async () => {
  if (npmGroup !== undefined) {
    try {
      process.kill(-npmGroup, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  await hub?.close();
});

describe('npm start on a fresh clone', () => {
  it(
    'downloads the default model, then the README example streams from it',
    async () => {
      const source = parseModelSource(DEFAULT_LLAMA_MODEL, 'http://hub');
      const hubPath = DEFAULT_LLAMA_MODEL.slice('hf:'.length);
      hub = await startFakeHuggingFaceHub([{ path: hubPath, content: readFileSync(join(TEST_MODELS_DIR, 'chat', 'stories260K-chatml.gguf')) }]);
      const { LLAMA_DEFAULT_MODEL: _none, ...defaults } = testAppDefaults();
      const npm = spawn('npm', ['start'], {
        cwd: REPOSITORY,
        env: { ...process.env, ...defaults, MODELS_DIR: emptyModelsDir(), HF_ENDPOINT: hub.endpoint, LOG_LEVEL: 'info', CONFIG_FILE: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      npmGroup = npm.pid!;
      const lines: Array<Record<string, any>> = [];
      const url = await new Promise<string>((resolve, reject) => {
        let listening: string | undefined;
        createInterface({ input: npm.stdout! }).on('line', (line) => {
          if (!line.startsWith('{')) return; // npm's own lines
          const parsed = JSON.parse(line) as Record<string, any>;
          lines.push(parsed);
          if (parsed.msg?.startsWith('GraphQL AI gateway listening')) listening = parsed.url;
          if (parsed.msg?.startsWith('llama-cpp: downloaded ') && listening) resolve(listening);
          if (parsed.level === 'warn' && parsed.provider === 'llama-cpp') reject(new Error(parsed.msg));
        });
        npm.once('exit', (code) => reject(new Error(`npm start exited with ${code}`)));
      });

      const download = lines.filter((line) => line.provider === 'llama-cpp').map((line) => line.msg as string);
      expect(download[0]).toMatch(/^llama-cpp: .+ holds no model; downloading hf:Qwen\/Qwen2\.5-0\.5B-Instruct-GGUF\/qwen2\.5-0\.5b-instruct-q4_k_m\.gguf \(LLAMA_DEFAULT_MODEL\)$/);
      expect(download.filter((message) => / \d+ % \(/.test(message)).length).toBeGreaterThanOrEqual(1);
      expect(download.at(-1)).toMatch(/^llama-cpp: downloaded qwen2\.5-0\.5b-instruct-q4_k_m \(1\.\d MB in [\d.]+ s\) into /);

      const client = createWebSocketClient(`${url.replace(/^http/, 'ws')}/graphql`);
      try {
        const events = (await collectWebSocket(client, readmeFirstExample())).map((event) => event.data!.chatCompletion);
        expect(events[0]).toMatchObject({ __typename: 'ChatCompletionStarted', provider: 'llama-cpp', model: source.modelId });
        expect(events.some((event) => event.__typename === 'ChatTokenDelta')).toBe(true);
        expect(events.at(-1)).toMatchObject({ __typename: 'ChatCompletionCompleted' });
      } finally {
        await client.dispose();
      }
      process.kill(npm.pid!, 'SIGTERM');
    },
    TIMEOUT_MS,
  );
});
