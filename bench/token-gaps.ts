/**
 * Gaps between tokens: the upstream sends one token every `gapMs`; through each path, how much
 * later than direct does each token arrive after the previous one (p50, p99)? Each window runs one
 * path's streams and direct streams at the same moment, so each path has its own simultaneous
 * direct baseline and machine noise hits both alike. Also measures the middle process's CPU time
 * per token while tokens come paced (one message per token, unlike the no-delay throughput phase
 * where a gateway may group many tokens into one message).
 */
import type { Client } from 'graphql-ws';
import { processCpuMs } from './child-processes.js';
import { FailureTally } from './failure-tally.js';
import type { TokenGapPathResult, UpstreamPath } from './report.js';
import { median, quantile } from './statistics.js';
import type { StreamResult } from './stream-clients.js';
import { middleProcessId, runPath, type PathTargets } from './upstream-paths.js';

/** How the phase runs. */
export interface TokenGapOptions {
  /** The paths measured besides direct (direct runs in every window). */
  paths: UpstreamPath[];
  /** A model naming a paced stream, e.g. `bench?gapMs=20`. */
  model: string;
  /** The text every stream must give. */
  expectedText: string;
  /** Tokens per stream. */
  tokens: number;
  /** Streams of the measured path per window. */
  streams: number;
  /** Direct streams beside them per window. */
  directStreams: number;
  /** Windows per path (the order of paths rotates per round). */
  rounds: number;
  timeoutMs: number;
  log: (message: string) => void;
}

/** The gaps (ms) between consecutive text messages of one stream. */
function gapsOf(result: StreamResult): number[] {
  const arrivals = result.textArrivalsMs ?? [];
  const gaps: number[] = [];
  for (let index = 1; index < arrivals.length; index++) gaps.push(arrivals[index]! - arrivals[index - 1]!);
  return gaps;
}

/** What one path collected over its windows. */
interface PathSamples {
  gaps: number[];
  /** Gaps of the direct streams that ran beside this path. */
  besideDirectGaps: number[];
  messages: number[];
  streams: number;
  verifiedTokens: number;
  middleCpuMs: number;
  tally: FailureTally;
}

/**
 * Runs the phase; returns one row per path, direct first (its gaps pooled over all windows).
 * @param webSocketClients graphql-ws clients the path's streams are spread over.
 */
export async function measureTokenGaps(options: TokenGapOptions, targets: PathTargets, webSocketClients: Client[]): Promise<TokenGapPathResult[]> {
  const measured = options.paths.filter((path) => path !== 'direct');
  const samples = new Map<UpstreamPath, PathSamples>(
    measured.map((path) => [path, { gaps: [], besideDirectGaps: [], messages: [], streams: 0, verifiedTokens: 0, middleCpuMs: 0, tally: new FailureTally() }]),
  );
  const direct: PathSamples = { gaps: [], besideDirectGaps: [], messages: [], streams: 0, verifiedTokens: 0, middleCpuMs: 0, tally: new FailureTally() };
  const streamOptions = { timeoutMs: options.timeoutMs, recordArrivals: true };
  for (let round = 0; round < options.rounds; round++) {
    const order = measured.map((_, index) => measured[(index + round) % measured.length]!);
    for (const path of order) {
      const entry = samples.get(path)!;
      const processId = middleProcessId(path, targets);
      const cpuBefore = processCpuMs(processId);
      const [pathResults, directResults] = await Promise.all([
        Promise.all(Array.from({ length: options.streams }, (_, index) => runPath(path, targets, webSocketClients[index % Math.max(1, webSocketClients.length)], options.model, streamOptions))),
        Promise.all(Array.from({ length: options.directStreams }, () => runPath('direct', targets, undefined, options.model, streamOptions))),
      ]);
      entry.middleCpuMs += processCpuMs(processId) - cpuBefore;
      for (const result of pathResults) {
        entry.streams += 1;
        if (!entry.tally.check(result, options.expectedText)) continue;
        entry.gaps.push(...gapsOf(result));
        entry.messages.push(result.textMessages);
        entry.verifiedTokens += options.tokens;
      }
      for (const result of directResults) {
        direct.streams += 1;
        if (!direct.tally.check(result, options.expectedText)) continue;
        const gaps = gapsOf(result);
        entry.besideDirectGaps.push(...gaps);
        direct.gaps.push(...gaps);
        direct.messages.push(result.textMessages);
      }
      options.log(`gaps round ${round + 1}/${options.rounds} ${path}: p50 ${quantile(entry.gaps, 0.5).toFixed(2)} ms, direct beside it ${quantile(entry.besideDirectGaps, 0.5).toFixed(2)} ms`);
    }
  }
  const row = (path: UpstreamPath, entry: PathSamples): TokenGapPathResult => ({
    path,
    streams: entry.streams,
    gaps: entry.gaps.length,
    gapP50: quantile(entry.gaps, 0.5),
    gapP99: quantile(entry.gaps, 0.99),
    addedGapP50: path === 'direct' ? Number.NaN : quantile(entry.gaps, 0.5) - quantile(entry.besideDirectGaps, 0.5),
    addedGapP99: path === 'direct' ? Number.NaN : quantile(entry.gaps, 0.99) - quantile(entry.besideDirectGaps, 0.99),
    messagesPerStreamP50: median(entry.messages),
    middleCpuMicrosecondsPerToken: path === 'direct' || entry.verifiedTokens === 0 ? Number.NaN : (entry.middleCpuMs / entry.verifiedTokens) * 1000,
    failures: entry.tally.counts,
  });
  return [row('direct', direct), ...measured.map((path) => row(path, samples.get(path)!))];
}
