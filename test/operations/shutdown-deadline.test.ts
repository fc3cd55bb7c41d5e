/**
 * The last resort of a shutdown: when something the gateway waits for while stopping never answers
 * — here Redis behind a network that stopped carrying packets, so QUIT waits for its reply forever —
 * the process still exits, with status 1 and one line on standard error, SHUTDOWN_GRACE_MS plus a
 * few seconds after the signal. A real gateway process (`node --import tsx src/main.ts`) on the
 * real Redis (127.0.0.1:6379, db 15) through a TCP proxy the test freezes.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyModelsDir, exitWithin, spawnGateway } from '../helpers/app-process.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
const REDIS_URL = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15');

/** Past the last resort (5 s after a grace period of 0) and well before anything else would end the wait. */
const EXIT_BOUND_MS = 15_000;

const children: ChildProcess[] = [];
const proxies: TcpProxy[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const proxy of proxies.splice(0)) void proxy.cut();
});

describe('a shutdown that cannot finish', () => {
  it('ends with status 1 and one line on standard error SHUTDOWN_GRACE_MS + 5 s after SIGTERM', async () => {
    const proxy = new TcpProxy(REDIS_URL.hostname, Number(REDIS_URL.port || 6379));
    proxies.push(proxy);
    await proxy.listen();
    const { child, exited, stderr } = spawnGateway({
      MODELS_DIR: emptyModelsDir(),
      REDIS_URL: `redis://127.0.0.1:${proxy.port}${REDIS_URL.pathname}`,
      SHUTDOWN_GRACE_MS: '0',
    });
    children.push(child);
    const messages: unknown[] = [];
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as { msg: unknown };
        messages.push(entry.msg);
        if (String(entry.msg).startsWith('GraphQL AI gateway listening')) resolve();
      });
      void exited.then(({ code }) => reject(new Error(`the gateway exited with ${code} before listening: ${stderr()}`)));
    });

    proxy.freeze();
    const signalledAt = performance.now();
    child.kill('SIGTERM');
    const status = await exitWithin(exited, EXIT_BOUND_MS, 'SIGTERM');
    const exitMs = performance.now() - signalledAt;

    expect(status).toEqual({ code: 1, signal: null });
    expect(exitMs).toBeGreaterThanOrEqual(5_000);
    expect(stderr()).toBe('Shutdown did not finish within 5000 ms of SIGTERM: exiting with status 1\n');
    expect(messages).toContain('SIGTERM received, shutting down');
    expect(messages).not.toContain('stopped');
  });
});
