/**
 * The last resort of a shutdown ends the process even when its main thread is stuck in synchronous
 * code (where its own timers never fire): the watchdog thread kills it. A real child process.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { KILL_AFTER_DEADLINE_MS } from '../../src/operations/last-resort-exit.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/blocked-after-arming.ts', import.meta.url));

it('kills a process whose main thread never returns, a little after the deadline', async () => {
  const deadlineMs = 200;
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, String(deadlineMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    await once(child.stdout!, 'data');
    const armedAt = performance.now();
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    // Not before the main thread's own deadline had passed.
    expect(performance.now() - armedAt).toBeGreaterThanOrEqual(deadlineMs + KILL_AFTER_DEADLINE_MS - 100);
  } finally {
    child.kill('SIGKILL');
  }
});
