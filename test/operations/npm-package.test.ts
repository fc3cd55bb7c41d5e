/**
 * The package as people get it. `npm pack` runs in a copy of the repository (its tracked and new
 * files, with this checkout's node_modules): packing cleans and builds `dist/`, which must not
 * happen under the other tests running this checkout's `dist/`. The tarball is installed with
 * `npm install <tarball>` into an empty folder, and its `graphql-ai-gateway` command runs from
 * there: `--version`, `--help`, a flag it does not take, and a server on port 0 (`--port`,
 * `--models-dir` with the test model) that is ready, serves the page and its assets from the installed
 * dependencies, streams a chat over REST, and on SIGTERM writes the usage row to a fresh
 * PostgreSQL database — migrated from the package's own copy of the migrations — and exits 0.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectChatStream, postJson } from '../helpers/rest-clients.js';
import { TEST_MODELS_DIR } from '../helpers/test-models-dir.js';
import { createPostgresDatabase } from '../helpers/test-databases.js';

const run = promisify(execFile);

const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));

/** Copying, packing, and an `npm install` of some 270 packages (about 20 s here, from npm's cache) on a loaded 2-core machine. */
const INSTALL_TIMEOUT_MS = 300_000;

/** Starting the installed server and streaming one short chat. */
const SERVE_TIMEOUT_MS = 60_000;

/** The environment for npm and the command: this one without what `npm test` and the test run set for themselves. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && !['REDIS_URL', 'CONFIG_FILE', 'OPENAI_API_KEY', 'DATABASE_URL'].includes(name)),
  );
}

/** Copies the repository's tracked and new (not ignored) files into `target`, and links its node_modules there. */
async function copyRepository(target: string): Promise<void> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPOSITORY, maxBuffer: 16 * 1024 * 1024 });
  // node_modules (a link in some checkouts) is linked below; files deleted but not yet committed are listed and skipped.
  const files = stdout.split('\0').filter((file) => file && file !== 'node_modules' && existsSync(join(REPOSITORY, file)));
  for (const file of files) {
    await mkdir(dirname(join(target, file)), { recursive: true });
    await copyFile(join(REPOSITORY, file), join(target, file));
  }
  await symlink(await realpath(join(REPOSITORY, 'node_modules')), join(target, 'node_modules'), 'dir');
}

let workFolder: string;
let installFolder: string;
let tarballFiles: string[];
let packageVersion: string;
let command: string;

beforeAll(async () => {
  workFolder = await mkdtemp(join(tmpdir(), 'gateway-npm-package-'));
  const source = join(workFolder, 'source');
  await copyRepository(source);
  await run('npm', ['pack', '--pack-destination', workFolder], { cwd: source, env: cleanEnvironment(), maxBuffer: 16 * 1024 * 1024 });
  const [tarball] = (await readdir(workFolder)).filter((name) => name.endsWith('.tgz'));
  const { stdout: listing } = await run('tar', ['-tzf', join(workFolder, tarball!)], { maxBuffer: 16 * 1024 * 1024 });
  tarballFiles = listing.split('\n').filter(Boolean);

  installFolder = join(workFolder, 'install');
  await mkdir(installFolder);
  // A package.json of its own keeps npm from installing into a folder above that has one.
  await writeFile(join(installFolder, 'package.json'), '{ "name": "empty", "private": true }\n');
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(workFolder, tarball!)], {
    cwd: installFolder,
    env: cleanEnvironment(),
    maxBuffer: 16 * 1024 * 1024,
  });
  command = join(installFolder, 'node_modules', '.bin', 'graphql-ai-gateway');
  packageVersion = (JSON.parse(await readFile(join(REPOSITORY, 'package.json'), 'utf8')) as { version: string }).version;
}, INSTALL_TIMEOUT_MS);

afterAll(async () => {
  if (workFolder) await rm(workFolder, { recursive: true, force: true });
});

/** Runs the installed command to its end; resolves with its status and output. */
async function runCommand(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(command, args, { cwd: installFolder, env: cleanEnvironment() });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

describe('the packed package', () => {
  it('holds the compiled JavaScript, the page, the migrations and package.json, and no TypeScript, tests or benchmark', () => {
    expect(tarballFiles).toContain('package/package.json');
    expect(tarballFiles).toContain('package/dist/gateway-command.js');
    expect(tarballFiles).toContain('package/dist/main.js');
    expect(tarballFiles).toContain('package/dist/web/index.html');
    expect(tarballFiles).toContain('package/dist/web/admin-tab.js');
    expect(tarballFiles).toContain('package/dist/storage/migrations/0000_initial.sql');
    expect(tarballFiles).toContain('package/dist/storage/migrations/meta/_journal.json');
    expect(tarballFiles.filter((file) => /\.ts$/.test(file) || /^package\/(src|test|bench|scripts|docs)\//.test(file))).toEqual([]);
  });

  it('installs a graphql-ai-gateway command that prints its version, its help and a one-line refusal', async () => {
    expect(await runCommand(['--version'])).toEqual({ code: 0, stdout: `${packageVersion}\n`, stderr: '' });

    const help = await runCommand(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: graphql-ai-gateway [--port <port>] [--models-dir <folder>] [--config <file>]');
    expect(help.stdout).toMatch(/^ {2}DATABASE_URL \(default: [^\n]*\)\n {6}durable records \(virtual keys, usage, generation history, conversations\)/m);
    expect(help.stdout).toMatch(/^ {2}MASTER_KEY \(default: [^\n]*\)\n {6}the admin key: authorises createApiKey/m);

    expect(await runCommand(['--listen', '8080'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'graphql-ai-gateway: unknown option --listen (see graphql-ai-gateway --help)\n',
    });
  });
});

describe('the installed command', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>> | undefined;
  let server: ChildProcess | undefined;

  afterAll(async () => {
    // In a process group of its own (the command and the server it starts), so nothing outlives the test.
    if (server?.pid !== undefined && server.exitCode === null && server.signalCode === null) process.kill(-server.pid, 'SIGKILL');
    await database?.drop();
  });

  it(
    'serves with --port and --models-dir: the page, a streamed chat from the test model, and the usage row on exit',
    async () => {
      database = await createPostgresDatabase();
      server = spawn(command, ['--port', '0', '--models-dir', TEST_MODELS_DIR], {
        cwd: installFolder,
        env: {
          ...cleanEnvironment(),
          DATABASE_URL: database.url,
          DATA_DIR: join(workFolder, 'data'),
          LLAMA_DEFAULT_MODEL: 'none',
          HF_SPACES_ENABLED: 'false',
          POLLINATIONS_ENABLED: 'false',
          LLAMA_THREADS: '1',
          LOG_LEVEL: 'info',
          HOST: '127.0.0.1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        server!.once('exit', (code, signal) => resolve({ code, signal })),
      );
      let stderr = '';
      server.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: server!.stdout! }).on('line', (line) => {
          if (line.includes('GraphQL AI gateway listening')) resolve((JSON.parse(line) as { url: string }).url);
        });
        void exited.then((status) => reject(new Error(`the command exited with ${JSON.stringify(status)} before listening: ${stderr}`)));
      });

      // Ready once it logged that it listens: started, and the database answers.
      const readiness = await fetch(`${url}/readyz`);
      expect([readiness.status, await readiness.json()]).toEqual([200, { status: 'ok' }]);

      // The page and the libraries' browser builds, which it finds in the installed dependencies.
      for (const path of ['/', '/assets/admin-tab.js', '/assets/graphql-ws.min.js', '/assets/uplot.iife.min.js', '/assets/uplot.min.css']) {
        const response = await fetch(`${url}${path}`);
        expect([path, response.status]).toEqual([path, 200]);
        expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(0);
      }

      const response = await postJson(url, '/v1/chat/completions', {
        model: 'stories260K',
        messages: [{ role: 'user', content: 'Once upon a time' }],
        max_tokens: 16,
        stream: true,
      });
      expect(response.status).toBe(200);
      const chat = await collectChatStream(response);
      expect(chat.error).toBeUndefined();
      expect(chat.done).toBe(true);
      expect(chat.text.length).toBeGreaterThan(0);
      expect(chat.chunks.at(-1)?.choices[0]?.finish_reason).toBe('length');
      const generationId = chat.chunks[0]!.id.replace(/^chatcmpl-/, '');

      // SIGTERM to the command: passed on to the server, which writes its waiting usage rows, stops, and exits 0.
      server.kill('SIGTERM');
      expect(await exited).toEqual({ code: 0, signal: null });
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query('select provider, model, status, completion_tokens from generations where id = $1', [generationId]);
        expect(rows).toEqual([{ provider: 'llama-cpp', model: 'stories260K', status: 'completed', completion_tokens: 16 }]);
      } finally {
        await client.end();
      }
    },
    SERVE_TIMEOUT_MS,
  );
});
