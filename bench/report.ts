/** The benchmark's result shapes and their Markdown rendering. */
import { formatNumber } from './statistics.js';

/** The three ways of reading an upstream stream. */
export type UpstreamPath = 'direct' | 'graphql-ws' | 'sse';

/** Human-readable names of {@link UpstreamPath}. */
export const PATH_LABELS: Record<UpstreamPath, string> = {
  direct: 'direct to upstream (fetch + eventsource-parser)',
  'graphql-ws': 'gateway, subscription over graphql-ws',
  sse: 'gateway, subscription over SSE',
};

/** Counts of what went wrong on one path. */
export interface FailureCounts {
  /** Requests that errored, timed out or broke the event invariants. */
  errors: number;
  /** Requests that completed but whose text differs from the expected text (lost, duplicated or reordered tokens). */
  wrongText: number;
  /** Up to three distinct error messages. */
  examples: string[];
}

/** Concurrency-1 figures of one path. Times in ms. */
export interface SequentialPathResult {
  path: UpstreamPath;
  requests: number;
  firstTokenP50: number;
  firstTokenP99: number;
  totalP50: number;
  totalP99: number;
  /** Paired per iteration: this path's time to first token minus the direct one's (NaN for `direct`). */
  addedFirstTokenP50: number;
  addedFirstTokenP99: number;
  /** Text-carrying messages per stream, median (how much the gateway coalesced). */
  messagesPerStreamP50: number;
  failures: FailureCounts;
}

/** Concurrency-N figures of one path, summed over its interleaved windows. */
export interface ConcurrentPathResult {
  path: UpstreamPath;
  requests: number;
  elapsedMs: number;
  requestsPerSecond: number;
  tokensPerSecond: number;
  /** requestsPerSecond divided by the direct path's. */
  ratioToDirect: number;
  /** The same ratio per round (each round runs every path once, back to back). */
  roundRatios: number[];
  firstTokenP50: number;
  totalP50: number;
  totalP99: number;
  /** Text-carrying messages per stream, median. */
  messagesPerStreamP50: number;
  /** CPU time (user + system) per verified request of each process during the windows, ms. */
  gatewayCpuMsPerRequest: number;
  upstreamCpuMsPerRequest: number;
  clientCpuMsPerRequest: number;
  failures: FailureCounts;
}

/** One side of the llama-cpp comparison. */
export interface LlamaSideResult {
  runs: number;
  tokensPerSecondMedian: number;
  /** Sum of tokens over sum of times. */
  tokensPerSecondAggregate: number;
  completionTokensMedian: number;
  firstTokenMsMedian: number;
  durationMsMedian: number;
  /** Text pieces per generation: `onTextChunk` calls (raw) or `ChatTokenDelta` events (gateway). */
  textMessagesMedian: number;
  /** CPU time (all threads) of the generating process per generation, ms. */
  cpuMsPerGenerationMedian: number;
  /** Sum of CPU time over sum of tokens, ms. */
  cpuMsPerToken: number;
  failures: FailureCounts;
}

/** The llama-cpp comparison. */
export interface LlamaResult {
  raw: LlamaSideResult;
  gateway: LlamaSideResult;
  /** Median over interleaved pairs of gateway tokens/s divided by raw tokens/s. */
  ratioMedian: number;
  /** Aggregate gateway tokens/s over aggregate raw tokens/s. */
  ratioAggregate: number;
  pairRatios: number[];
  /** Pairs whose gateway text (or token count) differs from the raw text. */
  textMismatches: number;
}

/** Everything one run measured. */
export interface BenchResult {
  mode: 'full' | 'smoke' | 'profile';
  date: string;
  durationSeconds: number;
  environment: { node: string; cpuModel: string; cores: number; availableParallelism: number; platform: string; totalMemoryGiB: number };
  settings: Record<string, string | number | boolean>;
  sequential?: SequentialPathResult[];
  concurrent?: ConcurrentPathResult[];
  llama?: LlamaResult;
  /** CPU used during the run by the benchmark's processes and by every other process of the machine (noise). */
  machineLoad?: {
    benchmarkCpuSeconds: number;
    otherProcessesCpuSeconds: number;
    otherProcessesShareOfCapacity: number;
    /** Hypervisor steal: time this virtual machine's cores wanted to run but did not. */
    stealCpuSeconds: number;
    stealShareOfCapacity: number;
  };
  /** Gateway CPU time per gateway request (graphql-ws and SSE mixed) in the concurrency-1 phase, ms. */
  sequentialGatewayCpuMsPerRequest?: number;
  /** Resident memory of the gateway process after the concurrency-N phase, MiB. */
  gatewayResidentMiB?: number;
  phaseErrors: string[];
  targets: Array<{ name: string; target: string; measured: string; met: boolean | undefined }>;
  profileSummary?: string;
}

const milliseconds = (value: number) => formatNumber(value, 2);
const failuresCell = (failures: FailureCounts) => `${failures.errors} / ${failures.wrongText}`;

/** Renders a result as Markdown (the content of `bench/results/latest.md`). */
export function formatMarkdown(result: BenchResult): string {
  const lines: string[] = [];
  const environment = result.environment;
  lines.push(`# Gateway benchmark${result.mode === 'full' ? '' : ` (${result.mode} mode)`}`);
  lines.push('');
  lines.push(`- Date: ${result.date}`);
  lines.push(`- Node ${environment.node} on ${environment.platform}; CPU: ${environment.cpuModel}, ${environment.cores} cores (available parallelism ${environment.availableParallelism}); ${environment.totalMemoryGiB.toFixed(1)} GiB RAM`);
  lines.push(`- Settings: ${Object.entries(result.settings).map(([key, value]) => `${key}=${value}`).join(', ')}`);
  lines.push(`- Run time: ${result.durationSeconds.toFixed(1)} s. Processes: benchmark client, gateway (\`bench/gateway-process.ts\`), fake upstream (\`bench/fake-upstream.ts\`), raw llama.cpp (\`bench/llama-raw-process.ts\`).`);
  if (result.machineLoad && Number.isFinite(result.machineLoad.otherProcessesCpuSeconds)) {
    const load = result.machineLoad;
    lines.push(
      `- Machine noise during the run: other processes used ${formatNumber(load.otherProcessesCpuSeconds, 1)} CPU-seconds (${formatNumber(load.otherProcessesShareOfCapacity * 100, 1)} % of the machine's capacity), hypervisor steal ${formatNumber(load.stealCpuSeconds, 1)} CPU-seconds (${formatNumber(load.stealShareOfCapacity * 100, 1)} %); the benchmark's processes used ${formatNumber(load.benchmarkCpuSeconds, 1)} CPU-seconds.`,
    );
  }
  if (result.mode === 'smoke') lines.push('- Smoke mode: every path runs briefly; figures are not meaningful and no thresholds apply.');
  if (result.mode === 'profile') lines.push('- Profile mode: the V8 profiler runs in the gateway during the gateway paths\' concurrency-N windows, which slows it; figures are not comparable with a normal run.');
  lines.push('');

  if (result.targets.length > 0) {
    lines.push('## Targets');
    lines.push('');
    lines.push('| target | required | measured | met |');
    lines.push('|---|---|---|---|');
    for (const target of result.targets) {
      const met = target.met === undefined ? 'n/a' : target.met ? 'yes' : '**no**';
      lines.push(`| ${target.name} | ${target.target} | ${target.measured} | ${met} |`);
    }
    lines.push('');
  }

  if (result.sequential) {
    const requests = result.sequential[0]?.requests ?? 0;
    lines.push(`## Upstream path, concurrency 1 (${requests} requests per path, interleaved)`);
    lines.push('');
    lines.push(`Fake upstream: ${result.settings.upstreamTokens} tokens, no delay. Times in ms, measured by the client from the request to the first text / to the end of the stream. "Added TTFT" is paired per iteration (path minus direct in the same iteration). Measured after a warm-up at full concurrency and 30 untimed iterations.`);
    lines.push('');
    lines.push('| path | TTFT p50 | TTFT p99 | total p50 | total p99 | added TTFT p50 | added TTFT p99 | text messages per stream | errors / wrong text |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const path of result.sequential) {
      lines.push(
        `| ${PATH_LABELS[path.path]} | ${milliseconds(path.firstTokenP50)} | ${milliseconds(path.firstTokenP99)} | ${milliseconds(path.totalP50)} | ${milliseconds(path.totalP99)} | ${path.path === 'direct' ? '—' : milliseconds(path.addedFirstTokenP50)} | ${path.path === 'direct' ? '—' : milliseconds(path.addedFirstTokenP99)} | ${formatNumber(path.messagesPerStreamP50, 0)} | ${failuresCell(path.failures)} |`,
      );
    }
    if (result.sequentialGatewayCpuMsPerRequest !== undefined && Number.isFinite(result.sequentialGatewayCpuMsPerRequest)) {
      lines.push('');
      lines.push(`Gateway CPU time (user + system, from /proc) per gateway request in this phase: ${formatNumber(result.sequentialGatewayCpuMsPerRequest, 2)} ms.`);
    }
    lines.push('');
  }

  if (result.concurrent) {
    lines.push(`## Upstream path, concurrency ${result.settings.concurrency}`);
    lines.push('');
    lines.push(
      `${result.settings.rounds} rounds × ${result.settings.windowMs} ms per path, paths interleaved within each round. Tokens/s counts verified tokens only. CPU ms per request: CPU time (user + system, all threads, from /proc) each process used during the path's windows, divided by its verified requests.`,
    );
    lines.push('');
    lines.push('| path | requests | requests/s | tokens/s | ratio to direct | ratio per round | TTFT p50 ms | total p50 ms | total p99 ms | text messages per stream | CPU ms per request: gateway / upstream / client | errors / wrong text |');
    lines.push('|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|');
    for (const path of result.concurrent) {
      lines.push(
        `| ${PATH_LABELS[path.path]} | ${path.requests} | ${formatNumber(path.requestsPerSecond, 0)} | ${formatNumber(path.tokensPerSecond, 0)} | ${formatNumber(path.ratioToDirect, 2)} | ${path.roundRatios.map((ratio) => formatNumber(ratio, 2)).join(', ')} | ${milliseconds(path.firstTokenP50)} | ${milliseconds(path.totalP50)} | ${milliseconds(path.totalP99)} | ${formatNumber(path.messagesPerStreamP50, 0)} | ${formatNumber(path.gatewayCpuMsPerRequest, 2)} / ${formatNumber(path.upstreamCpuMsPerRequest, 2)} / ${formatNumber(path.clientCpuMsPerRequest, 2)} | ${failuresCell(path.failures)} |`,
      );
    }
    if (result.gatewayResidentMiB !== undefined && Number.isFinite(result.gatewayResidentMiB)) {
      lines.push('');
      lines.push(`Gateway resident memory after this phase: ${formatNumber(result.gatewayResidentMiB, 0)} MiB (finished generations are kept for GENERATION_RETENTION_MS, default 1 h).`);
    }
    lines.push('');
  }

  if (result.llama) {
    const llama = result.llama;
    lines.push('## llama-cpp path');
    lines.push('');
    lines.push(
      `Model ${result.settings.llamaModel}, prompt "${result.settings.llamaPrompt}", maxTokens ${result.settings.llamaMaxTokens}, temperature 0, LLAMA_THREADS=${result.settings.llamaThreads}; raw and gateway runs alternate, one at a time, each in its own process. Raw time: \`LlamaCompletion\` creation to cleared sequence; gateway time: client subscribe to \`ChatCompletionCompleted\` over graphql-ws.`,
    );
    lines.push('');
    lines.push('| side | runs | tokens/s (median) | tokens/s (aggregate) | completion tokens (median) | text pieces (median) | first text ms (median) | duration ms (median) | process CPU ms per generation (median) | process CPU ms per token | errors / wrong text |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const row = (name: string, side: LlamaSideResult) =>
      `| ${name} | ${side.runs} | ${formatNumber(side.tokensPerSecondMedian, 0)} | ${formatNumber(side.tokensPerSecondAggregate, 0)} | ${formatNumber(side.completionTokensMedian, 0)} | ${formatNumber(side.textMessagesMedian, 0)} | ${milliseconds(side.firstTokenMsMedian)} | ${milliseconds(side.durationMsMedian)} | ${formatNumber(side.cpuMsPerGenerationMedian, 0)} | ${formatNumber(side.cpuMsPerToken, 3)} | ${failuresCell(side.failures)} |`;
    lines.push(row('raw node-llama-cpp', llama.raw));
    lines.push(row('gateway, graphql-ws subscription', llama.gateway));
    lines.push('');
    lines.push(
      `Gateway / raw: **${formatNumber(llama.ratioMedian * 100, 1)} %** (median of pairs; aggregate ${formatNumber(llama.ratioAggregate * 100, 1)} %; pairs: ${llama.pairRatios.map((ratio) => formatNumber(ratio * 100, 0)).join(', ')} %). Gateway text identical to raw text in ${llama.raw.runs - llama.textMismatches} of ${llama.raw.runs} pairs.`,
    );
    lines.push('');
  }

  const examples = [
    ...(result.sequential ?? []).flatMap((path) => path.failures.examples.map((example) => `${path.path} (c=1): ${example}`)),
    ...(result.concurrent ?? []).flatMap((path) => path.failures.examples.map((example) => `${path.path} (c=${result.settings.concurrency}): ${example}`)),
    ...(result.llama ? [...result.llama.raw.failures.examples.map((example) => `llama raw: ${example}`), ...result.llama.gateway.failures.examples.map((example) => `llama gateway: ${example}`)] : []),
  ];
  if (result.phaseErrors.length > 0 || examples.length > 0) {
    lines.push('## Errors');
    lines.push('');
    for (const error of result.phaseErrors) lines.push(`- phase failed: ${error}`);
    for (const example of examples) lines.push(`- ${example}`);
    lines.push('');
  }

  if (result.profileSummary) {
    lines.push('## Gateway CPU profile');
    lines.push('');
    lines.push(result.profileSummary);
    lines.push('');
  }
  return lines.join('\n');
}
