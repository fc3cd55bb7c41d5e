/**
 * The tracing phase: what OpenTelemetry tracing costs. A second gateway, identical but for
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (pointing at `bench/otlp-sink-process.ts`, which takes the exports
 * in its own process; OTLP/HTTP protobuf, the default), is warmed up like the main one; then both
 * gateways run the concurrency-50 windows of `upstream-phases.ts`, alternating which goes first
 * per round, and one concurrency-1 block each (added time to first token, paired with direct).
 * Each gateway's figures come with the direct baseline measured beside them, so the two compare
 * as ratios to direct and as the gateway's CPU per token.
 */
import type { Client } from 'graphql-ws';
import { startTypeScriptProcess, type ManagedProcess } from './child-processes.js';
import type { ConcurrentPathResult, FailureCounts, SequentialPathResult, UpstreamPath } from './report.js';
import { formatNumber, median } from './statistics.js';
import { connectWebSocketClient } from './stream-clients.js';
import { measureConcurrent, measureSequential, warmUpConcurrent, type UpstreamPhaseOptions } from './upstream-phases.js';
import { webSocketURL, type PathTargets } from './upstream-paths.js';

/** One gateway under measurement: its targets and its WebSocket clients (one for concurrency 1, N for N). */
interface MeasuredGateway {
  targets: PathTargets;
  client: Client;
  concurrentClients: Client[];
}

/** What the phase needs. */
export interface TracingOverheadOptions {
  /** The main phases' options; `paths`, `rounds` and `iterations` are replaced below. */
  upstreamPhase: UpstreamPhaseOptions;
  /** The gateway paths to compare (besides direct), e.g. `graphql-ws` and `rest`. */
  paths: UpstreamPath[];
  rounds: number;
  iterations: number;
  /** The main (untraced) gateway, already warm. */
  untraced: MeasuredGateway;
}

/** One path's figures on one gateway. */
export interface TracingPathFigures {
  path: UpstreamPath;
  /** Tokens/s as a ratio to direct, median over the rounds. */
  ratioToDirect: number;
  /** Gateway CPU per verified token, µs, median over the rounds. */
  cpuMicrosecondsPerToken: number;
  /** Added time to first token at concurrency 1 (paired with direct), ms. */
  addedFirstTokenP50: number;
  addedFirstTokenP99: number;
}

/** The phase's result. */
export interface TracingOverheadResult {
  rounds: number;
  iterations: number;
  off: TracingPathFigures[];
  on: TracingPathFigures[];
  /** What the sink received from the traced gateway during the phase. */
  exports: number;
  exportedBytes: number;
  /** Failed or wrong streams on either gateway (must be 0). */
  failures: number;
}

/** Median figures per path from the rounds' concurrent results and the sequential block. */
function figures(paths: UpstreamPath[], concurrent: ConcurrentPathResult[][], sequential: SequentialPathResult[]): TracingPathFigures[] {
  return paths.map((path) => {
    const windows = concurrent.map((round) => round.find((entry) => entry.path === path)!).filter(Boolean);
    const block = sequential.find((entry) => entry.path === path);
    return {
      path,
      ratioToDirect: median(windows.map((entry) => entry.ratioToDirect)),
      cpuMicrosecondsPerToken: median(windows.map((entry) => entry.middleCpuMicrosecondsPerToken)),
      addedFirstTokenP50: block?.addedFirstTokenP50 ?? Number.NaN,
      addedFirstTokenP99: block?.addedFirstTokenP99 ?? Number.NaN,
    };
  });
}

/** Failed or wrong streams of a set of results. */
function failuresOf(results: Array<{ failures: FailureCounts }>): number {
  return results.reduce((sum, result) => sum + result.failures.errors + result.failures.wrongText, 0);
}

/** The phase's own processes: the stand-in collector and the gateway that exports traces to it. */
export interface TracedProcesses {
  sink: ManagedProcess;
  traced: { url: string; handle: ManagedProcess };
}

/**
 * Starts the sink, then the traced gateway pointed at it (`startGateway` adds the extra settings to
 * the run's); a gateway that fails to start stops the sink.
 */
export async function startTracedProcesses(startGateway: (settings: Record<string, string>) => Promise<{ url: string; handle: ManagedProcess }>): Promise<TracedProcesses> {
  const sinkStart = await startTypeScriptProcess('otlp-sink', 'bench/otlp-sink-process.ts', { readyTimeoutMs: 20_000 });
  try {
    return { sink: sinkStart.handle, traced: await startGateway({ OTEL_EXPORTER_OTLP_ENDPOINT: String(sinkStart.ready.endpoint) }) };
  } catch (error) {
    await sinkStart.handle.stop();
    throw error;
  }
}

/**
 * Runs the phase on `processes` (see {@link startTracedProcesses}; a smoke run starts them early);
 * stops the traced gateway and the sink before it returns.
 */
export async function measureTracingOverhead(options: TracingOverheadOptions, processes: Promise<TracedProcesses>): Promise<TracingOverheadResult> {
  const { upstreamPhase, untraced } = options;
  const { sink, traced } = await processes;
  const tracedClients: Client[] = [];
  try {
    const targets: PathTargets = { ...untraced.targets, gatewayURL: traced.url, gatewayProcessId: traced.handle.child.pid };
    const client = await connectWebSocketClient(webSocketURL(targets), 10_000);
    tracedClients.push(client);
    const concurrentClients = await Promise.all(Array.from({ length: upstreamPhase.concurrency }, () => connectWebSocketClient(webSocketURL(targets), 10_000)));
    tracedClients.push(...concurrentClients);
    const gateways: Record<'off' | 'on', MeasuredGateway> = { off: untraced, on: { targets, client, concurrentClients } };
    const paths: UpstreamPath[] = ['direct', ...options.paths];
    const phase: UpstreamPhaseOptions = { ...upstreamPhase, paths, rounds: 1, iterations: options.iterations };
    if (phase.warmupWindowMs > 0) {
      upstreamPhase.log(`tracing: warming up the traced gateway, ${phase.warmupWindowMs} ms per path`);
      await warmUpConcurrent(phase, targets, concurrentClients);
    }
    const concurrent: Record<'off' | 'on', ConcurrentPathResult[][]> = { off: [], on: [] };
    for (let round = 0; round < options.rounds; round++) {
      for (const which of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        const gateway = gateways[which];
        concurrent[which].push(await measureConcurrent(phase, gateway.targets, gateway.concurrentClients));
      }
    }
    const sequential: Record<'off' | 'on', SequentialPathResult[]> = { off: [], on: [] };
    for (const which of ['off', 'on'] as const) {
      const gateway = gateways[which];
      sequential[which] = await measureSequential(phase, gateway.targets, gateway.client);
    }
    sink.send({ command: 'stats', id: 1 });
    const stats = await sink.nextMessage<{ exports: number; bytes: number }>(5_000);
    const measuredPaths = options.paths;
    const gatewayResults = (which: 'off' | 'on') => [...concurrent[which].flat(), ...sequential[which]].filter((entry) => entry.path !== 'direct');
    return {
      rounds: options.rounds,
      iterations: options.iterations,
      off: figures(measuredPaths, concurrent.off, sequential.off),
      on: figures(measuredPaths, concurrent.on, sequential.on),
      exports: stats.exports,
      exportedBytes: stats.bytes,
      failures: failuresOf(gatewayResults('off')) + failuresOf(gatewayResults('on')),
    };
  } finally {
    await Promise.all(tracedClients.map((client) => client.dispose()));
    await traced.handle.stop();
    await sink.stop();
  }
}

/** The phase as a Markdown section of the report. */
export function formatTracingOverhead(result: TracingOverheadResult): string {
  const lines = [
    '## Tracing (OpenTelemetry on versus off)',
    '',
    `Two gateways side by side, the same but for \`OTEL_EXPORTER_OTLP_ENDPOINT\` (OTLP/HTTP protobuf to a stand-in collector in its own process; every request, generation, attempt and upstream request a span). Concurrency-N windows alternate between them (${result.rounds} rounds, medians shown); concurrency 1: ${result.iterations} iterations each, paired with direct. The traced gateway sent ${result.exports} exports (${formatNumber(result.exportedBytes / 1024, 0)} KiB); ${result.failures} failed or wrong streams.`,
    '',
    '| path | tokens/s ÷ direct: off | on | gateway CPU per token: off | on | added TTFT p50: off | on | p99: off | on |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const off of result.off) {
    const on = result.on.find((entry) => entry.path === off.path)!;
    lines.push(
      `| ${off.path} | ${formatNumber(off.ratioToDirect, 2)} | ${formatNumber(on.ratioToDirect, 2)} | ${formatNumber(off.cpuMicrosecondsPerToken, 1)} µs | ${formatNumber(on.cpuMicrosecondsPerToken, 1)} µs | ${formatNumber(off.addedFirstTokenP50, 2)} ms | ${formatNumber(on.addedFirstTokenP50, 2)} ms | ${formatNumber(off.addedFirstTokenP99, 2)} ms | ${formatNumber(on.addedFirstTokenP99, 2)} ms |`,
    );
  }
  return lines.join('\n');
}
