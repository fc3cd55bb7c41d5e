/**
 * `npm run models -- list | pull <uri> | remove <id>` as a user runs it (the command in a child
 * process, settings from the environment), pulling from a local server laid out like the Hugging
 * Face Hub.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Of, startFakeHuggingFaceHub, type FakeHuggingFaceHub } from '../helpers/fake-hugging-face-hub.js';
import { TEST_MODELS_DIR } from '../helpers/test-models-dir.js';

const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));
const MODEL = readFileSync(join(TEST_MODELS_DIR, 'chat', 'stories260K-chatml.gguf'));

let hub: FakeHuggingFaceHub;
let modelsDir: string;

beforeAll(async () => {
  hub = await startFakeHuggingFaceHub([
    { path: 'tests/chat-GGUF/chat.gguf', content: MODEL },
    { path: 'tests/corrupt-GGUF/corrupt.gguf', content: MODEL, advertisedSha256: sha256Of(Buffer.from('other')) },
  ]);
  modelsDir = await mkdtemp(join(tmpdir(), 'gateway-models-'));
});

afterAll(async () => {
  await hub?.close();
});

/** Runs the models command with `argumentsList`; resolves with its exit code and output. */
function models(...argumentsList: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/models-command.ts', ...argumentsList],
      { cwd: REPOSITORY, env: { ...process.env, MODELS_DIR: modelsDir, HF_ENDPOINT: hub.endpoint, CONFIG_FILE: '' }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm run models', () => {
  it('pulls, lists and removes a model', async () => {
    expect(await models('list')).toEqual({ code: 0, stdout: `no models in ${modelsDir}\n`, stderr: '' });

    const pulled = await models('pull', 'hf:tests/chat-GGUF/chat.gguf');
    expect(pulled.stderr).toBe('');
    expect(pulled.code).toBe(0);
    const lines = pulled.stdout.trim().split('\n');
    expect(lines[0]).toBe(`llama-cpp: downloading hf:tests/chat-GGUF/chat.gguf into ${modelsDir}`);
    expect(lines.at(-1)).toMatch(new RegExp(`^llama-cpp: downloaded chat \\(1\\.\\d MB in [\\d.]+ s\\) into ${modelsDir}$`));
    expect(sha256Of(await readFile(join(modelsDir, 'chat.gguf')))).toBe(sha256Of(MODEL));

    expect(await models('list')).toEqual({ code: 0, stdout: 'chat\t1.2 MB\tchat, json-schema, tools\n', stderr: '' });
    const again = await models('pull', 'hf:tests/chat-GGUF/chat.gguf');
    expect(again).toEqual({ code: 0, stdout: `${join(modelsDir, 'chat.gguf')} is there already\n`, stderr: '' });

    expect(await models('remove', 'chat')).toEqual({ code: 0, stdout: `removed ${join(modelsDir, 'chat.gguf')}\n`, stderr: '' });
    expect(await readdir(modelsDir)).toEqual(['.downloads']);
    expect(await models('remove', 'chat')).toEqual({ code: 1, stdout: '', stderr: `no model chat in ${modelsDir} (npm run models -- list shows them)\n` });
  });

  it('fails in one line on a corrupt file, a bad URI or a bad command', async () => {
    const corrupt = await models('pull', 'hf:tests/corrupt-GGUF/corrupt.gguf');
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toMatch(/^could not download hf:tests\/corrupt-GGUF\/corrupt\.gguf: the downloaded file is corrupt and was deleted: its SHA-256 is [0-9a-f]{64}, the server's is [0-9a-f]{64}\n$/);
    expect((await readdir(modelsDir)).filter((name) => name.endsWith('.gguf'))).toEqual([]);

    expect(await models('pull', 'hf:owner/repository:Q4_K_M')).toMatchObject({ code: 1, stderr: '"hf:owner/repository:Q4_K_M" is neither hf:<owner>/<repository>/<file>.gguf nor a URL\n' });
    expect(await models('frobnicate')).toMatchObject({ code: 1, stderr: expect.stringMatching(/^usage: npm run models -- list \| pull .+ \| remove <model id>\n$/) });
  });
});
