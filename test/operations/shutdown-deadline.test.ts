/**
 * The last resort of a shutdown: when something the gateway waits for while stopping never answers
 * — here Redis behind a network that stopped carrying packets, so QUIT waits for its reply forever —
 * the process still exits, with status 1 and one line on standard error, SHUTDOWN_GRACE_MS plus a
 * few seconds after the signal. A real gateway process (`node --import tsx src/main.ts`) on the
 * real Redis (127.0.0.1:6379, db 15) through a TCP proxy the test freezes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { testAppDefaults } from '../helpers/start-app.js';

const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));
const REDIS_URL = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15');

/** Past the last resort (5 s after a grace period of 0) and well before anything else would end the wait. */
const EXIT_BOUND_MS = 15_000;

/**
 * A TCP proxy on 127.0.0.1 in front of Redis; `freeze()` stops carrying bytes either way while
 * every connection stays open, as a network that drops packets does.
 */
class FreezableProxy {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  port = 0;

  constructor(target: { host: string; port: number }) {
    this.server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {});
      }
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
  }

  async listen(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
  }

  freeze(): void {
    for (const socket of this.sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
  }
}

const children: ChildProcess[] = [];
const proxies: FreezableProxy[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const proxy of proxies.splice(0)) proxy.close();
});

describe('a shutdown that cannot finish', () => {
  it('ends with status 1 and one line on standard error SHUTDOWN_GRACE_MS + 5 s after SIGTERM', async () => {
    const proxy = new FreezableProxy({ host: REDIS_URL.hostname, port: Number(REDIS_URL.port || 6379) });
    proxies.push(proxy);
    await proxy.listen();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: REPOSITORY,
      env: {
        ...process.env,
        ...testAppDefaults(),
        MODELS_DIR: mkdtempSync(join(tmpdir(), 'gateway-no-models-')),
        REDIS_URL: `redis://127.0.0.1:${proxy.port}${REDIS_URL.pathname}`,
        LOG_LEVEL: 'info',
        SHUTDOWN_GRACE_MS: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const messages: unknown[] = [];
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as { msg: unknown };
        messages.push(entry.msg);
        if (String(entry.msg).startsWith('GraphQL AI gateway listening')) resolve();
      });
      void exited.then(({ code }) => reject(new Error(`the gateway exited with ${code} before listening: ${stderr}`)));
    });

    proxy.freeze();
    const signalledAt = performance.now();
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const status = await Promise.race([
      exited,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`the gateway had not exited ${EXIT_BOUND_MS} ms after SIGTERM`)), EXIT_BOUND_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    const exitMs = performance.now() - signalledAt;

    expect(status).toEqual({ code: 1, signal: null });
    expect(exitMs).toBeGreaterThanOrEqual(5_000);
    expect(stderr).toBe('Shutdown did not finish within 5000 ms of SIGTERM: exiting with status 1\n');
    expect(messages).toContain('SIGTERM received, shutting down');
    expect(messages).not.toContain('stopped');
  });
});
