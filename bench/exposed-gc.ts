/** V8's garbage collector, as `--expose-gc` exposes it to the benchmark's own processes. */

/**
 * `globalThis.gc` when the process runs with `--expose-gc`, else undefined. `{ type: 'minor' }`
 * collects the young generation only; no argument runs a full collection.
 */
export const exposedGc = (globalThis as { gc?: (options?: { type?: 'minor' | 'major' }) => void }).gc;
