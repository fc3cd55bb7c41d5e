/**
 * The last resort of a shutdown that does not finish: whatever it waits for (a Redis that never
 * answers QUIT, a log pipe nobody reads), the process ends.
 *
 * Two guards, so that neither a promise that never settles nor a main thread stuck in synchronous
 * code keeps the process alive:
 * - a timer on the main thread writes one line to standard error and exits with status 1;
 * - a worker thread, whose event loop runs whatever the main thread does, kills the process
 *   (SIGKILL) a little later. It is for a main thread that never returns to its event loop, such
 *   as a synchronous write retried forever in an exit handler (sonic-boom 4's `flushSync` retries
 *   any error but EAGAIN, EPIPE from a reader that went away included, with no end).
 * Both are unref'd: a process that has nothing else to do exits on its own, as before.
 */
import { Worker } from 'node:worker_threads';

/** Milliseconds the worker waits after the main thread's own deadline before it kills the process. */
export const KILL_AFTER_DEADLINE_MS = 2_000;

/** The worker's code (CommonJS, run with `eval`): sleep, then kill the process this thread belongs to. */
const WATCHDOG_SOURCE = `
const { workerData } = require('node:worker_threads');
setTimeout(() => process.kill(workerData.pid, 'SIGKILL'), workerData.killAfterMs);
`;

/**
 * Arms both guards. Call once, when a shutdown starts.
 * @param deadlineMs time the shutdown may take from now, ms; then the process exits with status 1
 *   after writing `message` (one line) to standard error.
 * @param message the line written, without its newline.
 */
export function armLastResortExit(deadlineMs: number, message: string): void {
  setTimeout(() => {
    // A pipe that is not read takes the line or loses it; exiting never waits for it.
    process.stderr.write(`${message}\n`);
    process.exit(1);
  }, deadlineMs).unref();
  const watchdog = new Worker(WATCHDOG_SOURCE, {
    eval: true,
    workerData: { pid: process.pid, killAfterMs: deadlineMs + KILL_AFTER_DEADLINE_MS },
    // The watchdog needs no more than a few MB; it must not inherit the main thread's heap settings.
    resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
  });
  watchdog.unref();
}
