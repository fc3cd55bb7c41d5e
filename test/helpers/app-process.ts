/**
 * The gateway as a real child process (`node --import tsx src/main.ts`), for tests that kill an
 * instance (SIGKILL) the way a crash or a lost machine would. Settings: `testAppDefaults()` of
 * `start-app.ts`, then the test's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testAppDefaults } from './start-app.js';

const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));

/** How a process ended: its exit code, or the signal that ended it. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A gateway process as spawned: standard output is piped and left to the caller. */
export interface SpawnedGateway {
  child: ChildProcess;
  /** Settles with the exit status once the process has exited. */
  exited: Promise<ExitStatus>;
  /** Everything it wrote to standard error so far. */
  stderr(): string;
}

/** A fresh, empty folder for `MODELS_DIR`: a gateway with no local model (nothing loads, nothing logs about it). */
export function emptyModelsDir(): string {
  return mkdtempSync(join(tmpdir(), 'gateway-no-models-'));
}

/**
 * Spawns `node --import tsx src/main.ts` with the test defaults (`testAppDefaults()`), `LOG_LEVEL`
 * info and `settings`, in the environment of the tests without their Redis, config file and OpenAI
 * key (a test that wants them says so in `settings`).
 */
export function spawnGateway(settings: Record<string, string>): SpawnedGateway {
  const { REDIS_URL: _redis, CONFIG_FILE: _file, OPENAI_API_KEY: _key, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPOSITORY,
    env: { ...inherited, ...testAppDefaults(), LOG_LEVEL: 'info', ...settings },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<ExitStatus>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { child, exited, stderr: () => stderr };
}

/**
 * Resolves with the exit status, or rejects when the process is still running `boundMs` after the
 * call (`what` names what it should have exited after, for the message).
 */
export function exitWithin(exited: Promise<ExitStatus>, boundMs: number, what: string): Promise<ExitStatus> {
  let timer: NodeJS.Timeout | undefined;
  const tooLate = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the gateway had not exited ${boundMs} ms after ${what}`)), boundMs);
  });
  return Promise.race([exited, tooLate]).finally(() => clearTimeout(timer));
}

/** A running gateway process. */
export interface AppProcess {
  child: ChildProcess;
  /** The GraphQL URL it logged when it started listening. */
  graphqlUrl: string;
  /** Settles when the process has exited. */
  exited: Promise<unknown>;
  /** Kills it with SIGKILL (when still running) and waits until it has exited. */
  kill(): Promise<void>;
}

/**
 * Starts the gateway in a child process with `settings` on top of the test defaults.
 * @returns once its "listening" log line arrived (JSON logs at level info).
 * @throws Error with its stderr when it exits before listening.
 */
export async function startAppProcess(settings: Record<string, string>): Promise<AppProcess> {
  // The "listening" line is an info log. REDIS_URL comes from the settings of the tests that use it.
  const { child, exited, stderr } = spawnGateway(settings);
  const graphqlUrl = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.includes('GraphQL AI gateway listening')) resolve((JSON.parse(line) as { graphqlUrl: string }).graphqlUrl);
      }
    });
    child.once('exit', (status) => reject(new Error(`the gateway process exited with ${status}: ${stderr()}`)));
  });
  return {
    child,
    graphqlUrl,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
