/**
 * Starting and stopping the gateway the way its README does: `npm start` (build, then serve) is
 * stopped by a SIGTERM to npm's own pid — the server process goes too, nothing keeps listening;
 * and a second gateway on a port already taken says so in exactly one line on standard error and
 * exits 1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyModelsDir, spawnGateway, startAppProcess, type AppProcess } from '../helpers/app-process.js';
import { testAppDefaults } from '../helpers/start-app.js';

const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));

/** npm, esbuild and the gateway's start on a loaded 2-core machine. */
const START_TIMEOUT_MS = 60_000;

/** Process groups this file started (`npm start` and whatever it runs), killed after each test. */
const groups: number[] = [];
const gateways: AppProcess[] = [];

afterEach(async () => {
  for (const group of groups.splice(0)) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // The whole group has exited already.
    }
  }
  await Promise.all(gateways.splice(0).map((gateway) => gateway.kill()));
});

/** Settles with the exit status of `child`. */
const exitOf = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

describe('npm start', () => {
  it(
    'stops the server when npm itself gets SIGTERM',
    async () => {
      // In a process group of its own, so that the test can remove everything it started, whatever happens.
      const npm = spawn('npm', ['start'], {
        cwd: REPOSITORY,
        env: {
          ...process.env,
          ...testAppDefaults(),
          MODELS_DIR: emptyModelsDir(),
          LOG_LEVEL: 'info',
          SHUTDOWN_GRACE_MS: '1000',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      groups.push(npm.pid!);
      const npmExited = exitOf(npm);
      let stderr = '';
      npm.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // npm's own lines (`> graphql-ai-gateway@… start`) come first; the gateway's are JSON.
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: npm.stdout! }).on('line', (line) => {
          if (line.includes('GraphQL AI gateway listening')) resolve((JSON.parse(line) as { url: string }).url);
        });
        void npmExited.then(({ code }) => reject(new Error(`npm start exited with ${code} before the gateway listened: ${stderr}`)));
      });
      expect((await fetch(`${url}/healthz`)).status).toBe(200);

      process.kill(npm.pid!, 'SIGTERM');
      const status = await npmExited;
      // Nothing listens any more: the gateway went with npm, not left running without it.
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
      // The gateway shut down gracefully and npm passed on its status.
      expect(status).toEqual({ code: 0, signal: null });
    },
    START_TIMEOUT_MS,
  );
});

describe('a gateway started on a port already taken', () => {
  it('writes one line to standard error and exits 1', async () => {
    const first = await startAppProcess({ MODELS_DIR: emptyModelsDir() });
    gateways.push(first);
    const { port } = new URL(first.graphqlUrl);

    const { exited, stderr } = spawnGateway({ PORT: port });
    expect(await exited).toEqual({ code: 1, signal: null });
    expect(stderr()).toBe(`Cannot listen on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
  });
});
