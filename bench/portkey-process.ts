/**
 * The Portkey AI gateway (`@portkey-ai/gateway`, https://github.com/Portkey-AI/gateway) as the
 * benchmark's reference peer, path (b): installed by the benchmark alone into `bench/node_modules`
 * (`bench/package.json` and its lock file, so the service's own install stays lean), run as its own
 * process with `--port=N --headless`, and spoken to in OpenAI's chat-completions format with
 * `x-portkey-provider: openai` and `x-portkey-custom-host: <fake upstream>/v1`.
 *
 * `bench/package.json` pins `@hono/node-server` to 1.13.5 through `overrides`, the version Portkey's
 * own lock file ships: Portkey declares `^1.3.3`, which resolves to the latest 1.x, and from 1.14.2
 * on every request fails with `TypeError: immutable` (Portkey appends to the headers of the
 * upstream's fetched response, which newer versions keep read-only); 1.14.1 is the newest 1.x that
 * works. {@link ensurePortkeyInstalled} checks the installed version. No version changes Portkey's
 * streaming time to first token: it waits 25 ms before forwarding a stream's first event
 * (`readStream` in its `src/handlers/streamHandler.ts`), whatever serves it (`docs/performance.md`).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { REPOSITORY_ROOT, stopChild, trackChild } from './child-processes.js';

const BENCH_DIRECTORY = join(REPOSITORY_ROOT, 'bench');
const MODULES_DIRECTORY = join(BENCH_DIRECTORY, 'node_modules');
const ENTRY_POINT = join(MODULES_DIRECTORY, '@portkey-ai', 'gateway', 'build', 'start-server.js');
/** The `@hono/node-server` version `bench/package.json` pins (its `overrides`). */
const PINNED_NODE_SERVER = '1.13.5';

/** What is installed: the versions of Portkey and of the `@hono/node-server` it runs on. */
export interface PortkeyInstallation {
  entryPoint: string;
  version: string;
  nodeServerVersion: string;
  /** Set when this run installed it: how long `npm` took, ms. */
  installedInMs?: number;
}

/** Reads `version` from an installed package's `package.json`; undefined when it is not there. */
function installedVersion(packageName: string): string | undefined {
  const file = join(MODULES_DIRECTORY, ...packageName.split('/'), 'package.json');
  if (!existsSync(file)) return undefined;
  return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version;
}

/** Runs `npm <arguments>` in the repository root; resolves with its exit code and the end of its output. */
function runNpm(npmArguments: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('npm', npmArguments, { cwd: REPOSITORY_ROOT, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const output = `${stdout}\n${stderr}`.trim();
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: error?.killed ? `npm timed out after ${timeoutMs} ms` : output });
    });
    trackChild(child);
  });
}

/** The last meaningful line of npm's output (its error), for a one-line reason. */
function lastErrorLine(output: string): string {
  const lines = output.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.includes('Unknown user config'));
  const errors = lines.filter((line) => line.startsWith('npm error') || line.startsWith('npm ERR!'));
  return (errors.find((line) => !/A complete log|^npm error\s*$/.test(line)) ?? lines.at(-1) ?? 'no output').slice(0, 200);
}

/**
 * Makes sure Portkey is installed in `bench/node_modules`: when it is missing and `allowInstall`,
 * runs `npm ci --prefix bench` (the lock file), falling back to `npm install --prefix bench`.
 * @throws Error with a one-line reason when it is missing and may not be installed, the install
 *   fails, or the installed `@hono/node-server` is not the pinned one (streaming would break).
 */
export async function ensurePortkeyInstalled(options: { allowInstall: boolean; timeoutMs: number; log: (message: string) => void }): Promise<PortkeyInstallation> {
  let installedInMs: number | undefined;
  if (!existsSync(ENTRY_POINT)) {
    if (!options.allowInstall) throw new Error('not installed in bench/node_modules (this mode never installs it; `npm run bench` does)');
    const startedAt = Date.now();
    const common = ['--prefix', 'bench', '--no-audit', '--no-fund', '--loglevel=error'];
    options.log('installing the Portkey gateway into bench/node_modules (npm ci --prefix bench)');
    let result = await runNpm(['ci', ...common], options.timeoutMs);
    if (result.code !== 0) {
      options.log(`npm ci failed (${lastErrorLine(result.output)}); trying npm install --prefix bench`);
      result = await runNpm(['install', ...common], Math.max(1_000, options.timeoutMs - (Date.now() - startedAt)));
    }
    if (result.code !== 0 || !existsSync(ENTRY_POINT)) throw new Error(`npm could not install it: ${lastErrorLine(result.output)}`);
    installedInMs = Date.now() - startedAt;
  }
  const version = installedVersion('@portkey-ai/gateway') ?? 'unknown';
  const nodeServerVersion = installedVersion('@hono/node-server') ?? 'missing';
  if (nodeServerVersion !== PINNED_NODE_SERVER) {
    throw new Error(`@hono/node-server ${nodeServerVersion} is installed, not the pinned ${PINNED_NODE_SERVER} (Portkey's streaming breaks on newer ones): delete bench/node_modules and rerun`);
  }
  return { entryPoint: ENTRY_POINT, version, nodeServerVersion, ...(installedInMs !== undefined && { installedInMs }) };
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released for the child to take). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A running Portkey gateway. */
export interface PortkeyGateway {
  /** `http://127.0.0.1:<port>/v1`: append `/chat/completions`. */
  baseURL: string;
  processId: number | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts Portkey (`node start-server.js --port=N --headless`) on a free port and waits until it
 * printed that it is ready and answers `GET /` with its greeting.
 * @throws Error when it exits or is not ready within `readyTimeoutMs` (it is stopped then).
 */
export async function startPortkey(installation: PortkeyInstallation, readyTimeoutMs: number): Promise<PortkeyGateway> {
  const port = await freePort();
  const child = spawn(process.execPath, [installation.entryPoint, `--port=${port}`, '--headless'], {
    cwd: BENCH_DIRECTORY,
    // Portkey caches to Redis when this is set (empty = unset); the benchmark measures it without.
    env: { ...process.env, REDIS_CONNECTION_STRING: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  let output = '';
  const keep = (piece: Buffer) => {
    output = (output + piece.toString('utf8')).slice(-4_000);
  };
  child.stderr.on('data', keep);
  const stop = (graceMs = 5_000) => stopChild(child, graceMs);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready within ${readyTimeoutMs} ms`)), readyTimeoutMs);
      const done = (error?: Error) => {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.off('exit', onExit);
        if (error) reject(error);
        else resolve();
      };
      const onData = (piece: Buffer) => {
        keep(piece);
        if (output.includes('Ready for connections')) done();
      };
      const onExit = (code: number | null, signal: string | null) => {
        const lastLine = output.split('\n').map((line) => line.trim()).filter(Boolean).at(-1) ?? '';
        done(new Error(`exited (${signal ?? `code ${code}`}) before it was ready${lastLine ? `: ${lastLine.slice(0, 200)}` : ''}`));
      };
      child.stdout.on('data', onData);
      child.once('exit', onExit);
    });
    // From here on its output (a spinner, a banner) is not needed, but must be read so the pipe never fills.
    child.stdout.on('data', () => {});
    const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5_000) });
    const greeting = await response.text();
    if (!response.ok || !greeting.includes('AI Gateway')) throw new Error(`GET / answered ${response.status} ${greeting.slice(0, 100)}`);
  } catch (error) {
    await stop(1_000);
    throw error;
  }
  return { baseURL: `http://127.0.0.1:${port}/v1`, processId: child.pid, stop };
}

/** The headers that route a Portkey request to the OpenAI-compatible upstream at `upstreamBaseURL` (`…/v1`). */
export function portkeyHeaders(upstreamBaseURL: string): Record<string, string> {
  return {
    'x-portkey-provider': 'openai',
    'x-portkey-custom-host': upstreamBaseURL,
    // Portkey forwards it as the upstream's key; the fake upstream accepts any.
    authorization: 'Bearer bench',
  };
}
