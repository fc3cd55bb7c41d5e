/**
 * The largest number of concurrent streams a path sustains with no lost or reordered token.
 * Levels double; at each level every stream is opened and held by the fake upstream after its
 * first chunk until all of them are open (so the level really is that many streams at once), then
 * all are released together and must deliver exactly the expected text within a time limit.
 * Each path stops at its first failed level, at its time budget, or where the next level would
 * need more open files than the processes may have.
 */
import { setMaxListeners } from 'node:events';
import type { Client } from 'graphql-ws';
import { openFilesLimit } from './child-processes.js';
import { FailureTally } from './failure-tally.js';
import type { RampLevelResult, RampPathResult, UpstreamPath } from './report.js';
import { formatNumber } from './statistics.js';
import type { StreamResult } from './stream-clients.js';
import type { UpstreamControl } from './upstream-control.js';
import { middleProcessId, runPath, type PathTargets } from './upstream-paths.js';

/** How the ramp runs. Durations in ms. */
export interface RampOptions {
  paths: UpstreamPath[];
  /** Concurrency levels in order, e.g. 100, 200, 400, … */
  levels: number[];
  /** A held, paced stream, e.g. `bench?hold=1&tokens=16&gapMs=20`. */
  model: string;
  expectedText: string;
  /** Time for every stream of a level to be open (held by the upstream). */
  openTimeoutMs: number;
  /** Time for every stream to finish after the release. */
  flowTimeoutMs: number;
  /**
   * A path starts no new level once this much time went by, or when the next level, expected to
   * take twice as long as the last one, would end after it.
   */
  pathBudgetMs: number;
  /** `performance.now()` after which no level starts at all. */
  deadlineAt: number;
  log: (message: string) => void;
}

/** Open files a level of `concurrency` streams needs in the busiest process, with room for everything else. */
function filesNeeded(path: UpstreamPath, concurrency: number): number {
  // A middle process holds a client socket and an upstream socket per stream (graphql-ws: only the upstream one).
  const perStream = path === 'direct' || path === 'graphql-ws' ? 1 : 2;
  return concurrency * perStream + 1_000;
}

/** Resolves after `milliseconds` with `value`; the timer is cleared by `cancel`. */
function timer<Value>(milliseconds: number, value: Value): { promise: Promise<Value>; cancel: () => void } {
  let handle: NodeJS.Timeout | undefined;
  const promise = new Promise<Value>((resolve) => {
    handle = setTimeout(() => resolve(value), milliseconds);
  });
  return { promise, cancel: () => clearTimeout(handle) };
}

/** Runs one level of one path. */
async function runLevel(
  path: UpstreamPath,
  concurrency: number,
  options: RampOptions,
  targets: PathTargets,
  upstream: UpstreamControl,
  webSocketClients: Client[],
): Promise<RampLevelResult> {
  await upstream.release(); // nothing should be held; if something is, it must not count for this level
  const startedAt = performance.now();
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // one listener per stream
  let released = false;
  let finished = 0;
  let reportEarlyFailure!: (reason: string) => void;
  const earlyFailure = new Promise<string>((resolve) => {
    reportEarlyFailure = resolve;
  });
  const streamOptions = { timeoutMs: options.openTimeoutMs + options.flowTimeoutMs + 5_000, signal: controller.signal };
  const results = Promise.all(
    Array.from({ length: concurrency }, (_, index) =>
      runPath(path, targets, webSocketClients[index % Math.max(1, webSocketClients.length)], options.model, streamOptions).then((result: StreamResult) => {
        finished += 1;
        if (!released && result.error !== undefined) reportEarlyFailure(`a stream failed before all were open: ${result.error}`);
        return result;
      }),
    ),
  );
  const seconds = () => (performance.now() - startedAt) / 1000;
  const abandon = async (reason: string): Promise<RampLevelResult> => {
    controller.abort();
    await upstream.release();
    await results;
    return { concurrency, clean: false, seconds: seconds(), reason };
  };

  const openFailure = await Promise.race([
    upstream.waitHeld(concurrency, options.openTimeoutMs).then((held) =>
      held >= concurrency ? undefined : `only ${held} of ${concurrency} streams open after ${formatNumber(options.openTimeoutMs / 1000, 0)} s`,
    ),
    earlyFailure,
  ]);
  if (openFailure !== undefined) return abandon(openFailure);

  released = true;
  await upstream.release();
  const flowLimit = timer(options.flowTimeoutMs, 'timeout' as const);
  const outcome = await Promise.race([results, flowLimit.promise]);
  flowLimit.cancel();
  if (outcome === 'timeout') {
    return abandon(`${concurrency - finished} of ${concurrency} streams not finished ${formatNumber(options.flowTimeoutMs / 1000, 0)} s after the release`);
  }
  const tally = new FailureTally();
  for (const result of outcome) tally.check(result, options.expectedText);
  if (tally.total === 0) return { concurrency, clean: true, seconds: seconds() };
  return {
    concurrency,
    clean: false,
    seconds: seconds(),
    reason: `${tally.counts.errors} errors, ${tally.counts.wrongText} wrong texts (${tally.counts.examples[0] ?? ''})`,
  };
}

/** Runs the ramp of every path in turn; returns one row per path. */
export async function measureRamp(
  options: RampOptions,
  targets: PathTargets,
  upstream: UpstreamControl,
  webSocketClients: Client[],
): Promise<RampPathResult[]> {
  const rows: RampPathResult[] = [];
  for (const path of options.paths) {
    const pathStartedAt = performance.now();
    const levels: RampLevelResult[] = [];
    let largestClean = 0;
    let stoppedBecause = `the highest level (${formatNumber(options.levels.at(-1) ?? 0, 0)}) passed`;
    let atLeast = true;
    for (const concurrency of options.levels) {
      const limits = [openFilesLimit(process.pid), openFilesLimit(targets.upstreamProcessId), openFilesLimit(middleProcessId(path, targets))].filter(Number.isFinite);
      const limit = Math.min(...limits);
      if (filesNeeded(path, concurrency) > limit) {
        stoppedBecause = `${formatNumber(concurrency, 0)} streams would pass the open-files limit (${formatNumber(limit, 0)})`;
        break;
      }
      const expectedMs = 2 * 1000 * (levels.at(-1)?.seconds ?? 0);
      if (performance.now() - pathStartedAt + expectedMs > options.pathBudgetMs) {
        stoppedBecause = `time cap (${formatNumber(options.pathBudgetMs / 1000, 0)} s per path; ${formatNumber(concurrency, 0)} was expected to take ${formatNumber(expectedMs / 1000, 0)} s)`;
        break;
      }
      if (performance.now() + expectedMs > options.deadlineAt) {
        stoppedBecause = 'the phase ran out of time';
        break;
      }
      const level = await runLevel(path, concurrency, options, targets, upstream, webSocketClients);
      levels.push(level);
      options.log(`ramp ${path} ${concurrency}: ${level.clean ? 'clean' : `failed: ${level.reason}`} in ${level.seconds.toFixed(1)} s`);
      if (!level.clean) {
        stoppedBecause = `${formatNumber(concurrency, 0)}: ${level.reason}`;
        atLeast = false;
        break;
      }
      largestClean = concurrency;
    }
    rows.push({ path, levels, largestClean, stoppedBecause, atLeast });
  }
  return rows;
}
