/**
 * A Redis server of one test file's own: `redis-server` (from PATH, as `.ci/run` installs it) on a
 * free loopback port, keeping nothing on disk. For tests that kill the gateways' Redis connections
 * (`CLIENT KILL`): pub/sub channels and client lists span a whole server, so on the shared server
 * such a kill would also cut the connections of instances other test files run at the same time.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A running private Redis server. */
export interface PrivateRedis {
  /** `redis://127.0.0.1:<port>/15` (database 15, as on the shared server) */
  url: string;
  /** Stops the server (SIGTERM) and resolves once it has exited. */
  stop(): Promise<void>;
}

/** A loopback port free right now (the OS picks it; the probe's socket is closed again). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts the server and resolves once it logs that it accepts connections.
 * @throws Error when `redis-server` cannot be started or exits first (its last output in the message).
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-2_000);
      if (output.includes('Ready to accept connections')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (error) => reject(new Error(`cannot start redis-server: ${error.message}`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before accepting connections: ${output.trim()}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}/15`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
