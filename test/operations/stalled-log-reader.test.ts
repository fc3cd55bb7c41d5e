/**
 * A log reader that stops reading (a stalled log shipper, a harness that holds the pipe and does not
 * drain it) never stops the gateway: with its standard output held open and unread, a real gateway
 * process (`node --import tsx src/main.ts`) keeps answering, drops the log lines its bounded buffer
 * cannot hold (and says how many once it is read again), and exits 0 soon after SIGTERM.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyModelsDir, exitWithin, spawnGateway, type ExitStatus } from '../helpers/app-process.js';
import { STDOUT_BUFFER_BYTES, STDOUT_FLUSH_TIMEOUT_MS } from '../../src/operations/logger.js';

/** Each request to it logs one `request completed` line of about 8.3 KB (the path is logged). */
const LONG_PATH = `/unread-${'x'.repeat(8_000)}`;

/** Generous: the gateway needs about STDOUT_FLUSH_TIMEOUT_MS; before the fix it never exited. */
const EXIT_BOUND_MS = 10_000;

const children: ChildProcess[] = [];

// Here, not in a `finally`: a test that timed out (the code before the fix) leaves no process behind either.
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** A gateway process whose standard output the test reads only when it chooses to. */
interface UnreadGateway {
  child: ChildProcess;
  url: string;
  /** Settles with the exit status once the process has exited. */
  exited: Promise<ExitStatus>;
  /** Everything written to standard error so far. */
  stderr(): string;
}

/**
 * Starts the gateway, reads its standard output up to the "listening" line, then stops reading it:
 * the pipe stays open, and fills once the gateway has logged about its capacity.
 */
async function startUnreadGateway(): Promise<UnreadGateway> {
  // No model: nothing but the test's requests logs once the gateway listens.
  const { child, exited, stderr } = spawnGateway({ MODELS_DIR: emptyModelsDir(), SHUTDOWN_GRACE_MS: '1000' });
  children.push(child);
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const listening = buffered.split('\n').find((line) => line.includes('GraphQL AI gateway listening'));
      if (!listening) return;
      child.stdout!.off('data', onData);
      child.stdout!.pause();
      resolve((JSON.parse(listening) as { url: string }).url);
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code }) => reject(new Error(`the gateway exited with ${code} before listening: ${stderr()}`)));
  });
  return { child, url, exited, stderr };
}

/** Makes the gateway log `bytes` (about) of `request completed` lines; every request must be answered. */
async function logAbout(url: string, bytes: number): Promise<number> {
  const requests = Math.ceil(bytes / LONG_PATH.length);
  const concurrency = 8;
  for (let sent = 0; sent < requests; sent += concurrency) {
    const statuses = await Promise.all(
      Array.from({ length: Math.min(concurrency, requests - sent) }, async () => {
        const response = await fetch(`${url}${LONG_PATH}`);
        await response.arrayBuffer();
        return response.status;
      }),
    );
    expect(statuses.every((status) => status === 404)).toBe(true);
  }
  return requests;
}

/** Reads standard output again from here on: its JSON lines (a line cut by the earlier reads is skipped). */
function readLogsAgain(child: ChildProcess) {
  const entries: Array<Record<string, unknown>> = [];
  const waiters: Array<{ test: (entry: Record<string, unknown>) => boolean; resolve: (entry: Record<string, unknown>) => void }> = [];
  const lines = createInterface({ input: child.stdout! });
  const ended = new Promise<void>((resolve) => lines.once('close', resolve));
  lines.on('line', (line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    entries.push(entry);
    for (const waiter of waiters.filter((candidate) => candidate.test(entry))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(entry);
    }
  });
  return {
    entries,
    ended,
    /** Settles with the first line (from now on) that passes `test`; the test's timeout is the failure. */
    next: (test: (entry: Record<string, unknown>) => boolean) =>
      new Promise<Record<string, unknown>>((resolve) => waiters.push({ test, resolve })),
  };
}

const requestLines = (entries: Array<Record<string, unknown>>) =>
  entries.filter((entry) => entry.msg === 'request completed' && String(entry.path).startsWith('/unread-'));

describe('a gateway whose standard output is not read', () => {
  it('exits 0 soon after SIGTERM, though the pipe is full', async () => {
    const gateway = await startUnreadGateway();
    // About 1 MiB of log lines: several times what the pipe holds, well within the gateway's buffer.
    const sent = await logAbout(gateway.url, 1024 * 1024);

    const signalledAt = performance.now();
    gateway.child.kill('SIGTERM');
    expect(await exitWithin(gateway.exited, EXIT_BOUND_MS, 'SIGTERM')).toEqual({ code: 0, signal: null });
    const exitMs = performance.now() - signalledAt;
    // The final flush gives up after STDOUT_FLUSH_TIMEOUT_MS; the shutdown itself is quick with nothing running.
    expect(exitMs).toBeGreaterThanOrEqual(STDOUT_FLUSH_TIMEOUT_MS * 0.9);
    expect(exitMs).toBeLessThan(STDOUT_FLUSH_TIMEOUT_MS + 4_000);
    expect(gateway.stderr()).toBe('');

    // The pipe really was full: what it held arrives, the rest was given up at exit.
    const logs = readLogsAgain(gateway.child);
    await logs.ended;
    expect(requestLines(logs.entries).length).toBeGreaterThan(0);
    expect(requestLines(logs.entries).length).toBeLessThan(sent);
  });

  it('keeps answering, drops the lines its buffer cannot hold, and counts them once it is read again', async () => {
    const gateway = await startUnreadGateway();
    // Half as much again as the buffer holds.
    const sent = await logAbout(gateway.url, STDOUT_BUFFER_BYTES * 1.5);
    const health = await fetch(`${gateway.url}/healthz`);
    expect(health.status).toBe(200);

    const logs = readLogsAgain(gateway.child);
    const warning = await logs.next((entry) => typeof entry.droppedLines === 'number');
    expect(warning).toMatchObject({ level: 'warn', msg: `standard output was not read: ${warning.droppedLines} log lines were dropped` });
    const dropped = warning.droppedLines as number;
    expect(dropped).toBeGreaterThan(0);
    // Every request's line was either written (before the warning, which comes once all held lines are out) or dropped.
    expect(requestLines(logs.entries).length + dropped).toBe(sent);

    gateway.child.kill('SIGTERM');
    expect(await exitWithin(gateway.exited, EXIT_BOUND_MS, 'SIGTERM')).toEqual({ code: 0, signal: null });
    await logs.ended;
    expect(logs.entries.map((entry) => entry.msg)).toContain('stopped');
  });
});
