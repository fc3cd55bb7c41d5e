/**
 * Waiting for the writes a turn of the event loop queued to leave before doing more work.
 */

/**
 * Resolves in the check phase of the next event-loop iteration
 * (https://nodejs.org/en/learn/asynchronous-work/event-loop-timers-and-nexttick): after every
 * promise job of the current turn and every `setImmediate` callback queued during it. Socket writes
 * are batched per turn and flushed in a `setImmediate` (`src/batched-writes.ts`), so
 * a message written in this turn — the first token of a stream, on its way to a subscriber — has
 * left by the time this resolves. The generation service waits on it after the first text delta,
 * so that the rest of a fast upstream's first read (parsed by the provider when it is pulled again)
 * does not hold that token back. Costs two `setImmediate` callbacks, no timer.
 */
export function nextEventLoopIteration(): Promise<void> {
  return new Promise((resolve) => {
    // An immediate queued from inside an immediate runs in the next iteration's check phase.
    setImmediate(() => setImmediate(resolve));
  });
}
