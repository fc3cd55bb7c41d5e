/**
 * Commands to the fake upstream process (`bench/fake-upstream-process.ts`, "Commands"): wait until streams
 * are held, release them, collect its young generation. Answers are matched to commands by id, so
 * a release can be sent while a wait is pending.
 */
import type { ManagedProcess } from './child-processes.js';

/** The held-stream controls of a running fake upstream. */
export interface UpstreamControl {
  /** Resolves with the held count once at least `count` streams are held, or after `timeoutMs` with what is held then. */
  waitHeld(count: number, timeoutMs: number): Promise<number>;
  /** Lets every held stream go on; resolves with how many there were. */
  release(): Promise<number>;
  /** Runs a young-generation collection in the upstream; resolves with false when it cannot (no `--expose-gc`). */
  collectGarbage(): Promise<boolean>;
}

/**
 * Wraps the upstream's stdin/stdout. Takes over reading the process's stdout: nothing else may
 * call `nextMessage` on it afterwards.
 */
export function createUpstreamControl(upstream: ManagedProcess): UpstreamControl {
  let nextId = 0;
  const pending = new Map<number, { resolve: (answer: Record<string, unknown>) => void; reject: (error: Error) => void }>();
  let pumping = false;
  const pump = async () => {
    if (pumping) return;
    pumping = true;
    try {
      while (pending.size > 0) {
        const answer = await upstream.nextMessage<Record<string, unknown>>(3_600_000);
        const waiter = pending.get(Number(answer.id));
        pending.delete(Number(answer.id));
        waiter?.resolve(answer);
      }
    } catch (error) {
      for (const waiter of pending.values()) waiter.reject(error as Error);
      pending.clear();
    } finally {
      pumping = false;
    }
  };
  const ask = (command: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      nextId += 1;
      pending.set(nextId, { resolve, reject });
      upstream.send({ id: nextId, ...command });
      void pump();
    });
  return {
    async waitHeld(count, timeoutMs) {
      const answer = await ask({ command: 'wait-held', count, timeoutMs });
      if (typeof answer.held !== 'number') throw new Error(`fake upstream: ${JSON.stringify(answer)}`);
      return answer.held;
    },
    async release() {
      const answer = await ask({ command: 'release' });
      if (typeof answer.released !== 'number') throw new Error(`fake upstream: ${JSON.stringify(answer)}`);
      return answer.released;
    },
    async collectGarbage() {
      const answer = await ask({ command: 'collect-garbage' });
      if (typeof answer.collected !== 'boolean') throw new Error(`fake upstream: ${JSON.stringify(answer)}`);
      return answer.collected;
    },
  };
}
