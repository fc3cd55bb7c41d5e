/**
 * The gateway as a real child process (`node --import tsx src/main.ts`), for tests that kill an
 * instance (SIGKILL) the way a crash or a lost machine would. Settings: `testAppDefaults()` of
 * `start-app.ts`, then the test's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testAppDefaults } from './start-app.js';

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
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    // The "listening" line is an info log.
    env: { ...process.env, ...testAppDefaults(), LOG_LEVEL: 'info', ...settings },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
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
    child.once('exit', (status) => reject(new Error(`the gateway process exited with ${status}: ${stderr}`)));
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
