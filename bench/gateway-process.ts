/**
 * Runs the gateway as its own process for the benchmark:
 *
 * ```
 * BENCH_GATEWAY_SETTINGS='{"PORT":"0","LLAMA_THREADS":"1",…}' node --import tsx bench/gateway-process.ts
 * → stdout: {"ready":true,"port":40125,"url":"http://127.0.0.1:40125"}
 * ```
 *
 * The benchmark runs it compiled by esbuild, with no loader (`compileEntry` in
 * `bench/child-processes.ts`), as `npm start` runs the gateway; by hand, tsx works too.
 *
 * The gateway gets its own process (and event loop) so that the benchmark client's work — JSON
 * parsing, timers, bookkeeping of 50 concurrent streams — is not charged to the gateway, and the
 * gateway's to the client. Only the settings of `BENCH_GATEWAY_SETTINGS` (environment-variable
 * names, string values) reach `loadConfig`, not this process's environment, so a stray
 * `OPENAI_API_KEY` cannot add an upstream. `HOST` is always 127.0.0.1.
 *
 * Commands, one JSON object per stdin line, each answered by one stdout line:
 * - `{"command":"profile-start"}` → `{"profileStarted":true}`: starts the V8 CPU profiler in this process.
 * - `{"command":"profile-stop","path":"…"}` → `{"profileWritten":"…"}`: stops it and writes the
 *   `.cpuprofile`. With `--enable-source-maps`, positions in TypeScript files are mapped back to
 *   the original lines (dist/ and this file, compiled, come with source maps).
 *
 * - `{"command":"gc"}` → `{"gc":true,"heapUsedBytes":…}`: two full garbage collections (the
 *   process must run with `--expose-gc`, else `"gc":false`), so that a resident-memory reading that
 *   follows counts what is live rather than garbage not yet collected. Only this bench process
 *   exposes it; the gateway itself has no such hook.
 *
 * - `{"command":"stats"}` → `{"rssBytes":…,"heapUsedBytes":…,"eventLoopDelayP99Ms":…,"eventLoopDelayMaxMs":…}`:
 *   resident memory and heap now, and the event loop's delay since the previous `stats` (from
 *   `perf_hooks.monitorEventLoopDelay`, 10 ms resolution), for the soak run.
 * - `{"command":"gc-pauses"}` → `{"gcPauses":{"young":{…},"full":{…}}}`: the garbage-collection
 *   pauses of this process since the previous such command (or since start), each as `count`,
 *   `p50Ms`, `p99Ms` and `maxMs` (from `perf_hooks` `gc` entries; `young` = scavenges, `full` =
 *   mark-compact), so the benchmark can say how often a request met a pause and how long it was.
 *
 * Stops the app (bounded to 5 s) and exits when stdin closes (the parent went away), on SIGTERM and on SIGINT.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { findSourceMap } from 'node:module';
import { monitorEventLoopDelay, constants as performanceConstants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { exposedGc } from './exposed-gc.js';
import { quantile } from './statistics.js';
import type * as AppModule from '../src/app.js';
import type * as ConfigModule from '../src/config.js';

// The gateway as `npm start` runs it: the JavaScript `npm run build` compiled into dist/ (the
// benchmark builds it first), not the TypeScript sources through tsx, whose transform wraps every
// function in a naming helper that costs memory and time. Types come from the sources.
// As src/main.ts does: production mode unless NODE_ENV says otherwise, set before the libraries load.
process.env.NODE_ENV ??= 'production';
const { createApp } = (await import(new URL('../dist/app.js', import.meta.url).href)) as typeof AppModule;
const { loadConfig } = (await import(new URL('../dist/config.js', import.meta.url).href)) as typeof ConfigModule;

/** Reads the settings JSON object from `BENCH_GATEWAY_SETTINGS`. */
function readSettings(): Record<string, string> {
  const text = process.env.BENCH_GATEWAY_SETTINGS ?? '{}';
  const parsed = JSON.parse(text) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('BENCH_GATEWAY_SETTINGS must be a JSON object');
  const settings: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) settings[key] = typeof value === 'string' ? value : JSON.stringify(value);
  return settings;
}

/** The parts of a V8 CPU profile this file touches. */
interface CpuProfile {
  nodes: Array<{ callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number } }>;
}

/** Rewrites call frames of source-mapped files (the TypeScript sources) to their original file, line and column. */
function mapProfileToSources(profile: CpuProfile): void {
  for (const node of profile.nodes) {
    const frame = node.callFrame;
    if (!frame.url.startsWith('file://') || frame.url.includes('/node_modules/')) continue;
    const sourceMap = findSourceMap(frame.url);
    if (!sourceMap) continue;
    const entry = sourceMap.findEntry(frame.lineNumber, frame.columnNumber);
    if (!('originalSource' in entry)) continue;
    frame.url = entry.originalSource;
    frame.lineNumber = entry.originalLine;
    frame.columnNumber = entry.originalColumn;
  }
}

/** Process entry point: starts the gateway and prints its port as one JSON line. */
async function main(): Promise<void> {
  const config = loadConfig({ PORT: '0', ...readSettings(), HOST: '127.0.0.1' });
  const app = await createApp(config);
  const { port, url } = await app.start();

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), 5_000).unref();
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('[gateway-process] error while stopping:', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  /** Garbage-collection pauses since the last `gc-pauses` command, ms. */
  const pauses: { young: number[]; full: number[] } = { young: [], full: [] };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
      if (entry.detail?.kind === performanceConstants.NODE_PERFORMANCE_GC_MINOR) pauses.young.push(entry.duration);
      else if (entry.detail?.kind === performanceConstants.NODE_PERFORMANCE_GC_MAJOR) pauses.full.push(entry.duration);
    }
  }).observe({ entryTypes: ['gc'] });

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  let session: Session | undefined;
  const handleCommand = async (message: { command?: string; path?: string }): Promise<unknown> => {
    if (message.command === 'profile-start') {
      if (!session) {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
      }
      await session.post('Profiler.start');
      return { profileStarted: true };
    }
    if (message.command === 'profile-stop' && session && message.path) {
      const { profile } = await session.post('Profiler.stop');
      mapProfileToSources(profile as CpuProfile);
      writeFileSync(message.path, JSON.stringify(profile));
      return { profileWritten: message.path };
    }
    if (message.command === 'stats') {
      const { rss, heapUsed } = process.memoryUsage();
      const answer = { rssBytes: rss, heapUsedBytes: heapUsed, eventLoopDelayP99Ms: loopDelay.percentile(99) / 1e6, eventLoopDelayMaxMs: loopDelay.max / 1e6 };
      loopDelay.reset();
      return answer;
    }
    if (message.command === 'gc-pauses') {
      const summary = { young: summarizePauses(pauses.young), full: summarizePauses(pauses.full) };
      pauses.young = [];
      pauses.full = [];
      return { gcPauses: summary };
    }
    if (message.command === 'gc') {
      if (exposedGc) {
        exposedGc();
        // Finalizers and weak callbacks of the first collection run on later ticks; the second one frees what they released.
        await new Promise((resolve) => setImmediate(resolve));
        exposedGc();
      }
      return { gc: exposedGc !== undefined, heapUsedBytes: process.memoryUsage().heapUsed };
    }
    return { error: `unknown command ${JSON.stringify(message)}` };
  };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    let message: { command?: string; path?: string };
    try {
      message = JSON.parse(line) as { command?: string; path?: string };
    } catch {
      process.stdout.write(`${JSON.stringify({ error: 'not JSON' })}\n`);
      return;
    }
    handleCommand(message).then(
      (answer) => process.stdout.write(`${JSON.stringify(answer)}\n`),
      (error: unknown) => process.stdout.write(`${JSON.stringify({ error: (error as Error)?.message ?? String(error) })}\n`),
    );
  });
  lines.on('close', stop);
  process.stdin.on('error', stop);
  process.stdout.write(`${JSON.stringify({ ready: true, port, url })}\n`);
}

main().catch((error: unknown) => {
  console.error('[gateway-process] failed to start:', error);
  process.exit(1);
});

/** Count and quantiles of pauses, ms (nearest rank, `statistics.ts`); NaN quantiles when there were none. */
function summarizePauses(durations: number[]): { count: number; p50Ms: number; p99Ms: number; maxMs: number } {
  return { count: durations.length, p50Ms: quantile(durations, 0.5), p99Ms: quantile(durations, 0.99), maxMs: quantile(durations, 1) };
}
