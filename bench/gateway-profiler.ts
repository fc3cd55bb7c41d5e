/**
 * The V8 CPU profiler inside the gateway process (`npm run bench -- --profile`), driven through
 * the gateway process's stdin commands (`bench/gateway-process.ts`).
 */
import { join } from 'node:path';
import type { ManagedProcess } from './child-processes.js';

/** Starts and stops the CPU profiler inside the gateway process (profile mode). */
export interface GatewayProfiler {
  start(): Promise<void>;
  /** Stops profiling and returns the path of the written `.cpuprofile`. */
  stop(name: string): Promise<string>;
}

/** A {@link GatewayProfiler} speaking the gateway process's stdin commands. */
export function createGatewayProfiler(gateway: ManagedProcess, directory: string): GatewayProfiler {
  return {
    async start() {
      gateway.send({ command: 'profile-start' });
      const answer = await gateway.nextMessage<{ profileStarted?: boolean; error?: string }>(10_000);
      if (!answer.profileStarted) throw new Error(`gateway profiler did not start: ${answer.error ?? JSON.stringify(answer)}`);
    },
    async stop(name) {
      const path = join(directory, `${name}.cpuprofile`);
      gateway.send({ command: 'profile-stop', path });
      const answer = await gateway.nextMessage<{ profileWritten?: string; error?: string }>(30_000);
      if (answer.profileWritten !== path) throw new Error(`gateway profiler did not write: ${answer.error ?? JSON.stringify(answer)}`);
      return path;
    },
  };
}