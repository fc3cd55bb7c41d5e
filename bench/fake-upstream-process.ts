/**
 * Runs the benchmark's fake OpenAI-compatible upstream (`bench/fake-upstream.ts`) as its own
 * process, so that its CPU time is not charged to the client or to the gateway:
 *
 * ```
 * node --import tsx bench/fake-upstream-process.ts
 * → stdout: {"ready":true,"port":40123,"baseURL":"http://127.0.0.1:40123/v1"}
 * ```
 *
 * The benchmark runs it compiled by esbuild, with no loader (`compileEntry` in
 * `bench/child-processes.ts`), like the gateway. Settings: `BENCH_UPSTREAM_PORT` (default 0 = any
 * free port) and the stream shape's `BENCH_UPSTREAM_*` variables (`bench/fake-upstream.ts`).
 *
 * ## Commands (one JSON object per stdin line, each answered by one stdout line carrying the command's `id`)
 * - `{"command":"wait-held","count":N,"timeoutMs":T}` → `{"held":K,"reached":true|false}` once
 *   K ≥ N streams are held, or after T ms with what is held then.
 * - `{"command":"release"}` → `{"released":K}`: the K held streams go on.
 * - `{"command":"collect-garbage"}` → `{"collected":true|false}`: a young-generation collection in
 *   this process (`false` when it runs without `--expose-gc`). The benchmark asks for one between
 *   its concurrency-1 iterations, so that this stand-in's own pauses stay out of measured requests.
 *
 * Exits when its stdin closes (the parent went away), on SIGTERM and on SIGINT.
 */
import { createInterface } from 'node:readline';
import { exposedGc } from './exposed-gc.js';
import { readNumber, shapeFromEnvironment, startBenchUpstream } from './fake-upstream.js';

/** Starts the upstream, prints its port as one JSON line, answers commands, exits with its parent. */
async function main(): Promise<void> {
  const upstream = await startBenchUpstream({
    port: Math.floor(readNumber(process.env.BENCH_UPSTREAM_PORT) ?? 0),
    defaults: shapeFromEnvironment(process.env),
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Bounded: the process leaves after 2 s even if a connection does not close.
    setTimeout(() => process.exit(0), 2_000).unref();
    void upstream.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const answer = (message: unknown) => process.stdout.write(`${JSON.stringify(message)}\n`);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    let message: { id?: unknown; command?: string; count?: number; timeoutMs?: number };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      answer({ error: 'not JSON' });
      return;
    }
    const id = message.id;
    if (message.command === 'wait-held') {
      const count = message.count ?? 0;
      void upstream.waitHeld(count, message.timeoutMs ?? 10_000).then((heldNow) => answer({ id, held: heldNow, reached: heldNow >= count }));
    } else if (message.command === 'release') {
      answer({ id, released: upstream.release() });
    } else if (message.command === 'collect-garbage') {
      exposedGc?.({ type: 'minor' });
      answer({ id, collected: exposedGc !== undefined });
    } else {
      answer({ id, error: `unknown command ${JSON.stringify(message)}` });
    }
  });
  lines.on('close', stop);
  process.stdin.on('error', stop);
  process.stdout.write(`${JSON.stringify({ ready: true, port: upstream.port, baseURL: upstream.baseURL })}\n`);
}

main().catch((error: unknown) => {
  console.error('[fake-upstream] failed to start:', error);
  process.exit(1);
});
