/**
 * `npm run bench` — the gateway benchmark. Unattended, bounded in time, loopback only.
 *
 * ```
 * npm run bench                      # full run (about 1 minute), writes bench/results/latest.{md,json}
 * npm run bench -- --smoke           # every path briefly (≤ 15 s), for CI; writes bench/results/smoke.json
 * npm run bench -- --profile         # one 5 s round, with V8 CPU profiles of the gateway per phase
 *                                    # (bench/results/profiles/*.cpuprofile, summary in bench/results/profile.json)
 * ```
 *
 * ## Processes
 * The gateway runs in its own process (`bench/gateway-process.ts`), not in this one: in-process it
 * would share one event loop with the benchmark client, so the client's JSON parsing and
 * bookkeeping of 50 concurrent streams would be charged to the gateway (and the gateway's to the
 * client's timings). The fake upstream (`bench/fake-upstream.ts`) and raw llama.cpp
 * (`bench/llama-raw-process.ts`) have their own processes too. On this 2-core machine the client,
 * the gateway and the upstream still share the cores; the direct baseline pays for client and
 * upstream only, so the ratio to direct is what the gateway costs.
 *
 * ## Measurements
 * - Warm-up: every path at concurrency 50 for 1.5 s (V8 needs more than a few hundred requests to
 *   optimise the gateway's hot code), then 30 untimed iterations at concurrency 1.
 * - Upstream path, 64 tokens, no delay: direct (fetch + eventsource-parser), gateway over
 *   graphql-ws, gateway over SSE. Concurrency 1: the three paths alternate within every iteration
 *   (the order rotates); TTFT and total p50/p99; added TTFT paired per iteration. Concurrency 50:
 *   each path runs a time window, paths interleaved within each round; requests/s and tokens/s.
 *   Every stream's text must equal the expected 64-token text (all tokens differ, so a lost,
 *   duplicated or reordered token shows).
 * - llama-cpp path: raw node-llama-cpp versus the `chatCompletion` subscription (graphql-ws,
 *   `provider: "llama-cpp"`), same model, prompt, thread count, context and sequences,
 *   temperature 0; raw and gateway runs alternate, one at a time, so they never compete for the cores.
 * - CPU time per request or generation of each process (from `/proc`), and the CPU other
 *   processes of the machine used during the run (the noise in the figures).
 *
 * ## Settings (environment)
 * `BENCH_SMOKE=1`, `BENCH_PROFILE=1`, `BENCH_TOKENS` (64), `BENCH_ITERATIONS` (200),
 * `BENCH_WARMUP_ITERATIONS` (30), `BENCH_CONCURRENCY` (50), `BENCH_WINDOW_MS` (3000),
 * `BENCH_ROUNDS` (3), `BENCH_LLAMA_THREADS` (1), `BENCH_LLAMA_RUNS` (20 per side),
 * `BENCH_LLAMA_MAX_TOKENS` (256), `BENCH_LLAMA_PROMPT`, `BENCH_LLAMA_MODEL` (stories260K),
 * `BENCH_LLAMA_SEQUENCES`, `BENCH_LLAMA_CONTEXT_SIZE` (gateway defaults when unset),
 * `BENCH_MODELS_DIR` (../shared/models), `BENCH_SKIP_LLAMA=1`, `BENCH_PATHS` (e.g. `graphql-ws`: only that
 * gateway path besides the direct baseline; handy with `--profile`), and `BENCH_GATEWAY_<NAME>=value`
 * for any gateway setting (e.g. `BENCH_GATEWAY_DELTA_COALESCE_MS=0`; the gateway's defaults otherwise).
 *
 * Exit status: 0 when every path ran with no failed request and no lost token; 1 otherwise;
 * 3 when the overall deadline (5 min, smoke 60 s) passed. Missed targets do not fail the run.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, platform, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Client } from 'graphql-ws';
import { formatCpuProfileSummary, summarizeCpuProfile } from './cpu-profile-summary.js';
import { benchTokens, BENCH_MODEL } from './fake-upstream.js';
import { killAllChildren, machineCpu, ownCpuMs, processCpuMs, processTreeCpuMs, REPOSITORY_ROOT, startTypeScriptProcess, type ManagedProcess } from './child-processes.js';
import {
  formatMarkdown,
  type BenchResult,
  type ConcurrentPathResult,
  type FailureCounts,
  type LlamaResult,
  type LlamaSideResult,
  type SequentialPathResult,
  type UpstreamPath,
} from './report.js';
import { formatNumber, median, quantile } from './statistics.js';
import {
  connectWebSocketClient,
  streamDirect,
  streamServerSentEvents,
  streamWebSocket,
  type ChatCompletionInput,
  type StreamResult,
} from './stream-clients.js';

const RESULTS_DIR = join(REPOSITORY_ROOT, 'bench', 'results');
const ALL_PATHS: UpstreamPath[] = ['direct', 'graphql-ws', 'sse'];

/** Everything a run is configured with. Durations in ms. */
interface BenchOptions {
  mode: 'full' | 'smoke' | 'profile';
  /** The upstream paths measured; `direct` always comes first (it is the baseline). */
  paths: UpstreamPath[];
  tokens: number;
  iterations: number;
  warmupIterations: number;
  concurrency: number;
  windowMs: number;
  warmupWindowMs: number;
  rounds: number;
  requestTimeoutMs: number;
  llama: boolean;
  llamaThreads: number;
  llamaRuns: number;
  llamaMaxTokens: number;
  llamaPrompt: string;
  llamaModel: string;
  llamaSequences?: number;
  llamaContextSize?: number;
  /** Extra gateway settings from `BENCH_GATEWAY_<NAME>` variables, e.g. `DELTA_COALESCE_MS`. */
  gatewayOverrides: Record<string, string>;
  modelsDir: string;
  deadlineMs: number;
}

/** Reads a positive integer setting, or the fallback. */
function integerSetting(environment: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = environment[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive whole number (got ${JSON.stringify(text)})`);
  return value;
}

const isOn = (value: string | undefined) => value === '1' || value === 'true';

/** Builds the options from the command line (`--smoke`, `--profile`) and the environment. */
function readOptions(argumentsList: string[], environment: NodeJS.ProcessEnv): BenchOptions {
  for (const argument of argumentsList) {
    if (!['--smoke', '--profile'].includes(argument)) throw new Error(`unknown argument ${argument} (known: --smoke, --profile)`);
  }
  const smoke = argumentsList.includes('--smoke') || isOn(environment.BENCH_SMOKE);
  const profile = !smoke && (argumentsList.includes('--profile') || isOn(environment.BENCH_PROFILE));
  const mode = smoke ? 'smoke' : profile ? 'profile' : 'full';
  const optionalInteger = (name: string) => (environment[name] ? integerSetting(environment, name, 1) : undefined);
  const llamaSequences = optionalInteger('BENCH_LLAMA_SEQUENCES');
  const llamaContextSize = optionalInteger('BENCH_LLAMA_CONTEXT_SIZE');
  const pathList = (environment.BENCH_PATHS ?? '').split(',').map((path) => path.trim()).filter(Boolean);
  for (const path of pathList) {
    if (!ALL_PATHS.includes(path as UpstreamPath)) throw new Error(`BENCH_PATHS: unknown path ${path} (known: ${ALL_PATHS.join(', ')})`);
  }
  const gatewayOverrides: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) {
    if (name.startsWith('BENCH_GATEWAY_') && name !== 'BENCH_GATEWAY_SETTINGS' && value !== undefined) {
      gatewayOverrides[name.slice('BENCH_GATEWAY_'.length)] = value;
    }
  }
  const paths = pathList.length === 0 ? ALL_PATHS : ALL_PATHS.filter((path) => path === 'direct' || pathList.includes(path));
  return {
    mode,
    paths,
    tokens: integerSetting(environment, 'BENCH_TOKENS', 64),
    iterations: integerSetting(environment, 'BENCH_ITERATIONS', smoke ? 10 : 200),
    warmupIterations: integerSetting(environment, 'BENCH_WARMUP_ITERATIONS', smoke ? 3 : 30),
    concurrency: integerSetting(environment, 'BENCH_CONCURRENCY', 50),
    windowMs: integerSetting(environment, 'BENCH_WINDOW_MS', smoke ? 400 : profile ? 5_000 : 3_000),
    warmupWindowMs: smoke ? 0 : 1_500,
    rounds: integerSetting(environment, 'BENCH_ROUNDS', smoke || profile ? 1 : 3),
    requestTimeoutMs: smoke ? 10_000 : 20_000,
    llama: !isOn(environment.BENCH_SKIP_LLAMA),
    llamaThreads: integerSetting(environment, 'BENCH_LLAMA_THREADS', 1),
    llamaRuns: integerSetting(environment, 'BENCH_LLAMA_RUNS', smoke ? 2 : 20),
    llamaMaxTokens: integerSetting(environment, 'BENCH_LLAMA_MAX_TOKENS', smoke ? 64 : 256),
    llamaPrompt: environment.BENCH_LLAMA_PROMPT ?? 'Once upon a time',
    llamaModel: environment.BENCH_LLAMA_MODEL ?? 'stories260K',
    ...(llamaSequences !== undefined && { llamaSequences }),
    ...(llamaContextSize !== undefined && { llamaContextSize }),
    gatewayOverrides,
    modelsDir: resolve(environment.BENCH_MODELS_DIR ?? join(REPOSITORY_ROOT, '..', 'shared', 'models')),
    deadlineMs: smoke ? 60_000 : 295_000,
  };
}

const processStartedAt = performance.now();
const log = (message: string) =>
  process.stderr.write(`[bench ${((performance.now() - processStartedAt) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);

/** Races `promise` against a timeout; the timer never outlives the race. */
async function withTimeout<Value>(promise: Promise<Value>, timeoutMs: number, what: string): Promise<Value> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Tallies failures of one path. */
class FailureTally {
  readonly counts: FailureCounts = { errors: 0, wrongText: 0, examples: [] };

  /** Records a result; returns true when it is a clean stream with the expected text. */
  check(result: StreamResult, expectedText: string | undefined): boolean {
    if (result.error !== undefined) {
      this.counts.errors += 1;
      this.example(result.error);
      return false;
    }
    if (expectedText !== undefined && result.text !== expectedText) {
      this.counts.wrongText += 1;
      this.example(`text differs from the expected text (got ${result.text.length} characters, expected ${expectedText.length})`);
      return false;
    }
    return true;
  }

  example(message: string): void {
    if (this.counts.examples.length < 3 && !this.counts.examples.includes(message)) this.counts.examples.push(message);
  }

  get total(): number {
    return this.counts.errors + this.counts.wrongText;
  }
}

/** The open connections to the system under test. */
interface Targets {
  upstreamBaseURL: string;
  graphqlURL: string;
  webSocketURL: string;
  /** For CPU accounting (`/proc/<pid>/stat`). */
  gatewayProcessId: number | undefined;
  upstreamProcessId: number | undefined;
}

/** CPU time used so far by the gateway, the upstream and this client, ms. */
interface CpuSnapshot {
  gateway: number;
  upstream: number;
  client: number;
}

/** Reads {@link CpuSnapshot}. */
function cpuSnapshot(targets: Targets): CpuSnapshot {
  return { gateway: processCpuMs(targets.gatewayProcessId), upstream: processCpuMs(targets.upstreamProcessId), client: ownCpuMs() };
}

/** The requests of the upstream path: the direct body and the gateway input name the same stream. */
const DIRECT_BODY = { model: BENCH_MODEL, messages: [{ role: 'user', content: 'Tell me a story.' }] };
const GATEWAY_UPSTREAM_INPUT: ChatCompletionInput = {
  provider: 'bench',
  model: BENCH_MODEL,
  messages: [{ role: 'USER', content: 'Tell me a story.' }],
};

/** Runs one stream of `path`; `webSocketClient` is the client to use for graphql-ws. */
function runUpstreamPath(path: UpstreamPath, targets: Targets, webSocketClient: Client, timeoutMs: number): Promise<StreamResult> {
  switch (path) {
    case 'direct':
      return streamDirect(targets.upstreamBaseURL, DIRECT_BODY, timeoutMs);
    case 'graphql-ws':
      return streamWebSocket(webSocketClient, GATEWAY_UPSTREAM_INPUT, timeoutMs);
    case 'sse':
      return streamServerSentEvents(targets.graphqlURL, GATEWAY_UPSTREAM_INPUT, timeoutMs);
  }
}

/** Starts and stops the CPU profiler inside the gateway process (profile mode). */
interface GatewayProfiler {
  start(): Promise<void>;
  /** Stops profiling and returns the path of the written `.cpuprofile`. */
  stop(name: string): Promise<string>;
}

/** A {@link GatewayProfiler} speaking the gateway process's stdin commands. */
function createGatewayProfiler(gateway: ManagedProcess, directory: string): GatewayProfiler {
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

/**
 * Concurrency 1: the paths alternate within each iteration, the order rotating. With a `profiler`,
 * the measured iterations (not the warm-up) are profiled into one file, whose path goes to `profiles`.
 */
async function measureSequential(
  options: BenchOptions,
  targets: Targets,
  client: Client,
  profiler?: GatewayProfiler,
  profiles?: Map<string, string>,
  cpuUsage?: { gatewayCpuMsPerGatewayRequest?: number; upstreamCpuMsPerRequest?: number },
): Promise<SequentialPathResult[]> {
  const expectedText = benchTokens(options.tokens).join('');
  const paths = options.paths;
  const tallies = new Map(paths.map((path) => [path, new FailureTally()]));
  const samples = new Map<UpstreamPath, Array<StreamResult | undefined>>(paths.map((path) => [path, []]));
  const total = options.warmupIterations + options.iterations;
  let cpuBefore = cpuSnapshot(targets);
  for (let iteration = 0; iteration < total; iteration++) {
    const warmup = iteration < options.warmupIterations;
    if (iteration === options.warmupIterations) {
      if (profiler) await profiler.start();
      cpuBefore = cpuSnapshot(targets);
    }
    const order = paths.map((_, index) => paths[(index + iteration) % paths.length]!);
    for (const path of order) {
      const result = await runUpstreamPath(path, targets, client, options.requestTimeoutMs);
      if (warmup) {
        if (result.error !== undefined) throw new Error(`warm-up request on ${path} failed: ${result.error}`);
        continue;
      }
      const clean = tallies.get(path)!.check(result, expectedText);
      samples.get(path)!.push(clean ? result : undefined);
    }
  }
  const cpuAfter = cpuSnapshot(targets);
  if (profiler) profiles?.set('concurrency 1', await profiler.stop('gateway-c1'));
  const gatewayRequests = options.iterations * paths.filter((path) => path !== 'direct').length;
  if (cpuUsage) {
    cpuUsage.gatewayCpuMsPerGatewayRequest = (cpuAfter.gateway - cpuBefore.gateway) / gatewayRequests;
    cpuUsage.upstreamCpuMsPerRequest = (cpuAfter.upstream - cpuBefore.upstream) / (options.iterations * paths.length);
  }
  const direct = samples.get('direct')!;
  return paths.map((path) => {
    const results = samples.get(path)!;
    const clean = results.filter((result): result is StreamResult => result !== undefined);
    const added = results.flatMap((result, index) => {
      const baseline = direct[index];
      return result && baseline ? [result.firstTokenMs - baseline.firstTokenMs] : [];
    });
    return {
      path,
      requests: results.length,
      firstTokenP50: quantile(clean.map((result) => result.firstTokenMs), 0.5),
      firstTokenP99: quantile(clean.map((result) => result.firstTokenMs), 0.99),
      totalP50: quantile(clean.map((result) => result.totalMs), 0.5),
      totalP99: quantile(clean.map((result) => result.totalMs), 0.99),
      addedFirstTokenP50: path === 'direct' ? Number.NaN : quantile(added, 0.5),
      addedFirstTokenP99: path === 'direct' ? Number.NaN : quantile(added, 0.99),
      messagesPerStreamP50: median(clean.map((result) => result.textMessages)),
      failures: tallies.get(path)!.counts,
    };
  });
}

/** One time window of one path at the given concurrency. */
interface WindowResult {
  elapsedMs: number;
  clean: StreamResult[];
  /** CPU each process used during the window, ms. */
  cpu: CpuSnapshot;
}

/**
 * Runs `concurrency` workers for `windowMs`, each starting requests back to back; a request
 * started before the end of the window is waited for, and the window's time runs until the last
 * one finished (so nothing is counted partially).
 */
async function runWindow(
  path: UpstreamPath,
  options: BenchOptions,
  targets: Targets,
  webSocketClients: Client[],
  windowMs: number,
  tally: FailureTally | undefined,
): Promise<WindowResult> {
  const expectedText = benchTokens(options.tokens).join('');
  const clean: StreamResult[] = [];
  const cpuBefore = cpuSnapshot(targets);
  const startedAt = performance.now();
  const stopAt = startedAt + windowMs;
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, worker) => {
      while (performance.now() < stopAt) {
        const result = await runUpstreamPath(path, targets, webSocketClients[worker]!, options.requestTimeoutMs);
        if (!tally) continue;
        if (tally.check(result, expectedText)) clean.push(result);
      }
    }),
  );
  const elapsedMs = performance.now() - startedAt;
  const cpuAfter = cpuSnapshot(targets);
  return {
    elapsedMs,
    clean,
    cpu: {
      gateway: cpuAfter.gateway - cpuBefore.gateway,
      upstream: cpuAfter.upstream - cpuBefore.upstream,
      client: cpuAfter.client - cpuBefore.client,
    },
  };
}

/**
 * Concurrency N: each round runs every path for one window (order rotating); the sums make the
 * figures. With a `profiler`, each gateway path's measured windows are profiled, one file per path
 * (`profiles` receives path → file).
 */
async function measureConcurrent(
  options: BenchOptions,
  targets: Targets,
  clients: Client[],
  profiler?: GatewayProfiler,
  profiles?: Map<string, string>,
): Promise<ConcurrentPathResult[]> {
  const paths = options.paths;
  const tallies = new Map(paths.map((path) => [path, new FailureTally()]));
  const windows = new Map<UpstreamPath, WindowResult[]>(paths.map((path) => [path, []]));
  for (let round = 0; round < options.rounds; round++) {
    const order = paths.map((_, index) => paths[(index + round) % paths.length]!);
    for (const path of order) {
      const profiled = profiler !== undefined && path !== 'direct';
      if (profiled) await profiler.start();
      const window = await runWindow(path, options, targets, clients, options.windowMs, tallies.get(path));
      if (profiled) profiles?.set(`${path}, concurrency ${options.concurrency}`, await profiler.stop(`gateway-${path}-c${options.concurrency}-round${round + 1}`));
      windows.get(path)!.push(window);
      log(`c=${options.concurrency} round ${round + 1}/${options.rounds} ${path}: ${formatNumber((window.clean.length / window.elapsedMs) * 1000, 0)} requests/s`);
    }
  }
  const rate = (window: WindowResult) => (window.clean.length / window.elapsedMs) * 1000;
  const summed = (path: UpstreamPath) => {
    const list = windows.get(path)!;
    const requests = list.reduce((sum, window) => sum + window.clean.length, 0);
    const elapsedMs = list.reduce((sum, window) => sum + window.elapsedMs, 0);
    return { list, requests, elapsedMs, requestsPerSecond: (requests / elapsedMs) * 1000 };
  };
  const direct = summed('direct');
  return paths.map((path) => {
    const { list, requests, elapsedMs, requestsPerSecond } = summed(path);
    const clean = list.flatMap((window) => window.clean);
    const cpuPerRequest = (process: keyof CpuSnapshot) => list.reduce((sum, window) => sum + window.cpu[process], 0) / requests;
    return {
      path,
      requests,
      elapsedMs,
      requestsPerSecond,
      tokensPerSecond: requestsPerSecond * options.tokens,
      ratioToDirect: requestsPerSecond / direct.requestsPerSecond,
      roundRatios: list.map((window, round) => rate(window) / rate(direct.list[round]!)),
      firstTokenP50: quantile(clean.map((result) => result.firstTokenMs), 0.5),
      totalP50: quantile(clean.map((result) => result.totalMs), 0.5),
      totalP99: quantile(clean.map((result) => result.totalMs), 0.99),
      messagesPerStreamP50: median(clean.map((result) => result.textMessages)),
      gatewayCpuMsPerRequest: cpuPerRequest('gateway'),
      upstreamCpuMsPerRequest: cpuPerRequest('upstream'),
      clientCpuMsPerRequest: cpuPerRequest('client'),
      failures: tallies.get(path)!.counts,
    };
  });
}

/**
 * Warms the JIT of every process at full concurrency: each path runs for `warmupWindowMs` (a few
 * hundred sequential requests are not enough for V8 to optimise the gateway's hot code; the
 * concurrency-1 figures were seen to drop by half after this).
 */
async function warmUpConcurrent(options: BenchOptions, targets: Targets, clients: Client[]): Promise<void> {
  for (const path of options.paths) {
    const result = await runWindow(path, options, targets, clients, options.warmupWindowMs, new FailureTally());
    if (result.clean.length === 0) throw new Error(`warm-up at concurrency ${options.concurrency} on ${path}: no request succeeded`);
  }
}

/** What the raw process answers for one generation. */
interface RawAnswer {
  id: number;
  error?: string;
  completionTokens?: number;
  durationMs?: number;
  firstTokenMs?: number;
  text?: string;
  textChunks?: number;
}

/** One llama run on either side. */
interface LlamaRun {
  tokensPerSecond: number;
  completionTokens: number;
  durationMs: number;
  firstTokenMs: number;
  text: string;
  /** `onTextChunk` calls (raw) or `ChatTokenDelta` events (gateway). */
  textMessages: number;
  /** CPU time the generating process used during the run (all threads), ms. */
  cpuMs: number;
}

/** Id of the last request sent to the raw llama process. */
let rawRequestId = 0;
/** Upper bound of one llama generation, ms. */
const LLAMA_RUN_TIMEOUT_MS = 60_000;

/** One raw generation in the raw process; undefined (and tallied) when it failed. */
async function runRawLlama(options: BenchOptions, raw: ManagedProcess, rawTally: FailureTally): Promise<LlamaRun | undefined> {
  const cpuBefore = processCpuMs(raw.child.pid);
  rawRequestId += 1;
  const requestId = rawRequestId;
  raw.send({ id: requestId, model: options.llamaModel, prompt: options.llamaPrompt, maxTokens: options.llamaMaxTokens, temperature: 0 });
  const answer = await raw.nextMessage<RawAnswer>(LLAMA_RUN_TIMEOUT_MS);
  const cpuMs = processCpuMs(raw.child.pid) - cpuBefore;
  if (answer.id !== requestId) throw new Error(`raw llama answered request ${answer.id}, expected ${requestId}`);
  if (answer.error !== undefined || !answer.completionTokens || !answer.durationMs) {
    rawTally.counts.errors += 1;
    rawTally.example(answer.error ?? 'no tokens');
    return undefined;
  }
  return {
    tokensPerSecond: (answer.completionTokens / answer.durationMs) * 1000,
    completionTokens: answer.completionTokens,
    durationMs: answer.durationMs,
    firstTokenMs: answer.firstTokenMs ?? Number.NaN,
    text: answer.text ?? '',
  textMessages: answer.textChunks ?? Number.NaN,
  cpuMs,
  };
}

/** One generation through the gateway's `chatCompletion` subscription; undefined (and tallied) when it failed. */
async function runGatewayLlama(
  options: BenchOptions,
  client: Client,
  gatewayTally: FailureTally,
  gatewayProcessId: number | undefined,
): Promise<LlamaRun | undefined> {
  const input: ChatCompletionInput = {
    provider: 'llama-cpp',
    model: options.llamaModel,
    messages: [{ role: 'USER', content: options.llamaPrompt }],
    maxTokens: options.llamaMaxTokens,
    temperature: 0,
  };
  const cpuBefore = processCpuMs(gatewayProcessId);
  const result = await streamWebSocket(client, input, LLAMA_RUN_TIMEOUT_MS);
  const cpuMs = processCpuMs(gatewayProcessId) - cpuBefore;
  if (!gatewayTally.check(result, undefined)) return undefined;
  if (!result.completionTokens) {
    gatewayTally.counts.errors += 1;
    gatewayTally.example('no usage.completionTokens');
    return undefined;
  }
  return {
    tokensPerSecond: (result.completionTokens / result.totalMs) * 1000,
    completionTokens: result.completionTokens,
    durationMs: result.totalMs,
    firstTokenMs: result.firstTokenMs,
    text: result.text,
  textMessages: result.textMessages,
  cpuMs,
  };
}

/** First raw generation (slower than the next ones); throws when it fails. */
async function warmUpRawLlama(options: BenchOptions, raw: ManagedProcess): Promise<void> {
  const tally = new FailureTally();
  if (!(await runRawLlama(options, raw, tally))) throw new Error(`raw llama warm-up failed: ${tally.counts.examples.join('; ')}`);
}

/** First generation through the gateway: loads the model there; throws when it fails. */
async function warmUpGatewayLlama(options: BenchOptions, client: Client): Promise<void> {
  const tally = new FailureTally();
  if (!(await runGatewayLlama(options, client, tally, undefined))) throw new Error(`gateway llama warm-up failed: ${tally.counts.examples.join('; ')}`);
}

/**
 * llama-cpp: raw and gateway runs alternate (order flipping each pair), one at a time, after one
 * more untimed pair (models are loaded at startup by the warm-ups).
 */
async function measureLlama(
  options: BenchOptions,
  raw: ManagedProcess,
  client: Client,
  gatewayProcessId: number | undefined,
  profiler?: GatewayProfiler,
  profiles?: Map<string, string>,
): Promise<LlamaResult> {
  const rawTally = new FailureTally();
  const gatewayTally = new FailureTally();
  const runRaw = () => runRawLlama(options, raw, rawTally);
  const runGateway = () => runGatewayLlama(options, client, gatewayTally, gatewayProcessId);
  const rawWarmup = await runRaw();
  const gatewayWarmup = await runGateway();
  if (!rawWarmup) throw new Error(`raw llama warm-up failed: ${rawTally.counts.examples.join('; ')}`);
  if (!gatewayWarmup) throw new Error(`gateway llama warm-up failed: ${gatewayTally.counts.examples.join('; ')}`);

  const rawRuns: Array<LlamaRun | undefined> = [];
  const gatewayRuns: Array<LlamaRun | undefined> = [];
  await profiler?.start();
  for (let pair = 0; pair < options.llamaRuns; pair++) {
    if (pair % 2 === 0) {
      rawRuns.push(await runRaw());
      gatewayRuns.push(await runGateway());
    } else {
      gatewayRuns.push(await runGateway());
      rawRuns.push(await runRaw());
    }
  }
  if (profiler) profiles?.set('llama-cpp', await profiler.stop('gateway-llama-cpp'));
  let textMismatches = 0;
  const pairRatios: number[] = [];
  for (let pair = 0; pair < options.llamaRuns; pair++) {
    const rawRun = rawRuns[pair];
    const gatewayRun = gatewayRuns[pair];
    if (!rawRun || !gatewayRun) continue;
    pairRatios.push(gatewayRun.tokensPerSecond / rawRun.tokensPerSecond);
    if (rawRun.text !== gatewayRun.text || rawRun.completionTokens !== gatewayRun.completionTokens) {
      textMismatches += 1;
      gatewayTally.counts.wrongText += 1;
      gatewayTally.example(
        `pair ${pair + 1}: gateway gave ${gatewayRun.completionTokens} tokens / ${gatewayRun.text.length} characters, raw ${rawRun.completionTokens} / ${rawRun.text.length}`,
      );
    }
  }
  const side = (runs: Array<LlamaRun | undefined>, tally: FailureTally): LlamaSideResult => {
    const clean = runs.filter((run): run is LlamaRun => run !== undefined);
    const tokens = clean.reduce((sum, run) => sum + run.completionTokens, 0);
    const time = clean.reduce((sum, run) => sum + run.durationMs, 0);
    return {
      runs: runs.length,
      tokensPerSecondMedian: median(clean.map((run) => run.tokensPerSecond)),
      tokensPerSecondAggregate: (tokens / time) * 1000,
      completionTokensMedian: median(clean.map((run) => run.completionTokens)),
      firstTokenMsMedian: median(clean.map((run) => run.firstTokenMs)),
      durationMsMedian: median(clean.map((run) => run.durationMs)),
      textMessagesMedian: median(clean.map((run) => run.textMessages)),
      cpuMsPerGenerationMedian: median(clean.map((run) => run.cpuMs)),
      cpuMsPerToken: clean.reduce((sum, run) => sum + run.cpuMs, 0) / tokens,
      failures: tally.counts,
    };
  };
  const rawSide = side(rawRuns, rawTally);
  const gatewaySide = side(gatewayRuns, gatewayTally);
  return {
    raw: rawSide,
    gateway: gatewaySide,
    ratioMedian: median(pairRatios),
    ratioAggregate: gatewaySide.tokensPerSecondAggregate / rawSide.tokensPerSecondAggregate,
    pairRatios,
    textMismatches,
  };
}

/** Resident memory of process `processId` in MiB (Linux `/proc`), or NaN where unavailable. */
function residentMemoryMiB(processId: number | undefined): number {
  if (processId === undefined) return Number.NaN;
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${processId}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Runs the benchmark; returns the process exit status. */
async function main(): Promise<number> {
  const options = readOptions(process.argv.slice(2), process.env);
  const startedAt = performance.now();
  const machineAtStart = machineCpu();
  const benchmarkCpuAtStart = processTreeCpuMs(process.pid);
  const deadline = setTimeout(() => {
    log(`deadline of ${options.deadlineMs / 1000} s passed: stopping`);
    killAllChildren();
    process.exit(3);
  }, options.deadlineMs);
  deadline.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      log(`${signal}: stopping`);
      killAllChildren();
      process.exit(130);
    });
  }

  // Loopback only: the providers that reach the internet by default are switched off (unknown keys are ignored).
  const gatewaySettings: Record<string, string> = {
    HF_SPACES_ENABLED: 'false',
    POLLINATIONS_ENABLED: 'false',
    // The benchmark is one caller opening 50 streams at once: per-caller limits would measure themselves.
    RATE_LIMIT_PER_MINUTE: '0',
    MAX_CONCURRENT_GENERATIONS_PER_KEY: '0',
    LOG_LEVEL: 'error',
    MODELS_DIR: options.modelsDir,
    LLAMA_THREADS: String(options.llamaThreads),
    ...(options.llamaSequences !== undefined && { LLAMA_SEQUENCES: String(options.llamaSequences) }),
    ...(options.llamaContextSize !== undefined && { LLAMA_CONTEXT_SIZE: String(options.llamaContextSize) }),
    ...options.gatewayOverrides,
  };
  const profileDirectory = join(RESULTS_DIR, 'profiles');
  const profiles = new Map<string, string>();
  const children: ManagedProcess[] = [];
  const phaseErrors: string[] = [];
  const result: BenchResult = {
    mode: options.mode,
    date: new Date().toISOString(),
    durationSeconds: 0,
    environment: {
      node: process.version,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      cores: cpus().length,
      availableParallelism: availableParallelism(),
      platform: `${platform()} ${release()}`,
      totalMemoryGiB: totalmem() / 2 ** 30,
    },
    settings: {
      paths: options.paths.join(' '),
      upstreamTokens: options.tokens,
      iterations: options.iterations,
      warmupIterations: options.warmupIterations,
      concurrency: options.concurrency,
      windowMs: options.windowMs,
      rounds: options.rounds,
      llamaModel: options.llamaModel,
      llamaThreads: options.llamaThreads,
      llamaRuns: options.llamaRuns,
      llamaMaxTokens: options.llamaMaxTokens,
      llamaPrompt: options.llamaPrompt,
      ...(options.llamaSequences !== undefined && { llamaSequences: options.llamaSequences }),
      ...(options.llamaContextSize !== undefined && { llamaContextSize: options.llamaContextSize }),
      gatewaySettings: Object.keys(options.gatewayOverrides).length === 0
        ? 'defaults'
        : Object.entries(options.gatewayOverrides).map(([name, value]) => `${name}=${value}`).join(' '),
    },
    phaseErrors,
    targets: [],
  };

  let client: Client | undefined;
  let concurrentClients: Client[] = [];
  try {
    log(`mode ${options.mode}: starting the fake upstream, the gateway${options.llama ? ' and raw node-llama-cpp' : ''}`);
    const upstreamStart = await startTypeScriptProcess('fake-upstream', 'bench/fake-upstream.ts', {
      environment: { BENCH_UPSTREAM_TOKENS: String(options.tokens) },
      readyTimeoutMs: 20_000,
    });
    children.push(upstreamStart.handle);
    const upstreamBaseURL = String(upstreamStart.ready.baseURL);
    gatewaySettings.OPENAI_COMPATIBLE_UPSTREAMS = JSON.stringify([
      { id: 'bench', label: 'Bench fake upstream', baseURL: upstreamBaseURL, models: [BENCH_MODEL], connectTimeoutMs: 10_000, idleTimeoutMs: 10_000 },
    ]);
    if (options.mode === 'profile') mkdirSync(profileDirectory, { recursive: true });
    // The raw llama.cpp process starts (and loads its model) while the gateway starts; it stays idle
    // until the llama-cpp phase, where raw and gateway runs alternate.
    const rawStart = options.llama
      ? startTypeScriptProcess('llama-raw', 'bench/llama-raw-process.ts', {
          environment: { BENCH_GATEWAY_SETTINGS: JSON.stringify(gatewaySettings), BENCH_LLAMA_MODEL: options.llamaModel },
          readyTimeoutMs: 60_000,
        }).then(async ({ handle }) => {
          children.push(handle);
          log('raw node-llama-cpp ready');
          await warmUpRawLlama(options, handle);
          log('raw node-llama-cpp warmed up');
          return handle;
        })
      : undefined;
    rawStart?.catch(() => {}); // reported in the llama-cpp phase
    const gatewayStart = await startTypeScriptProcess('gateway', 'bench/gateway-process.ts', {
      environment: { BENCH_GATEWAY_SETTINGS: JSON.stringify(gatewaySettings) },
      nodeArguments: options.mode === 'profile' ? ['--enable-source-maps'] : [],
      readyTimeoutMs: 30_000,
    });
    const gateway = gatewayStart.handle;
    children.push(gateway);
    const gatewayURL = String(gatewayStart.ready.url);
    log(`gateway ready at ${gatewayURL}`);
    const targets: Targets = {
      upstreamBaseURL,
      graphqlURL: `${gatewayURL}/graphql`,
      webSocketURL: `${gatewayURL.replace(/^http/, 'ws')}/graphql`,
      gatewayProcessId: gateway.child.pid,
      upstreamProcessId: upstreamStart.handle.child.pid,
    };
    client = await connectWebSocketClient(targets.webSocketURL, 10_000);
    const profiler = options.mode === 'profile' ? createGatewayProfiler(gateway, profileDirectory) : undefined;
    let gatewayLlamaWarmUp: Promise<void> | undefined;
    if (options.llama) {
      // Loads the model in the gateway now, so the llama-cpp phase does not wait for it.
      const warmUp = warmUpGatewayLlama(options, client).then(() => {
        log('gateway llama-cpp warmed up');
      });
      warmUp.catch(() => {}); // reported in the llama-cpp phase
      gatewayLlamaWarmUp = warmUp;
      // Measurements wait for the model loads (they take CPU), except in smoke mode, where only time counts.
      if (options.mode !== 'smoke') await Promise.allSettled([gatewayLlamaWarmUp, rawStart]);
    }

    if (options.paths.includes('graphql-ws')) log(`opening ${options.concurrency} graphql-ws connections`);
    concurrentClients = options.paths.includes('graphql-ws')
      ? await Promise.all(Array.from({ length: options.concurrency }, () => connectWebSocketClient(targets.webSocketURL, 10_000)))
      : [];
    if (options.warmupWindowMs > 0) {
      log(`warm-up: concurrency ${options.concurrency}, ${options.warmupWindowMs} ms per path`);
      await withTimeout(warmUpConcurrent(options, targets, concurrentClients), options.paths.length * options.warmupWindowMs * 3 + 30_000, 'warm-up');
    }

    try {
      log(`concurrency 1: ${options.warmupIterations} warm-up + ${options.iterations} iterations × ${options.paths.join(', ')}`);
      const sequentialCpu: { gatewayCpuMsPerGatewayRequest?: number; upstreamCpuMsPerRequest?: number } = {};
      result.sequential = await withTimeout(
        measureSequential(options, targets, client, profiler, profiles, sequentialCpu),
        options.mode === 'smoke' ? 20_000 : 120_000,
        'concurrency-1 phase',
      );
      if (sequentialCpu.gatewayCpuMsPerGatewayRequest !== undefined) result.sequentialGatewayCpuMsPerRequest = sequentialCpu.gatewayCpuMsPerGatewayRequest;
    } catch (error) {
      phaseErrors.push(`concurrency 1: ${(error as Error).message}`);
    }
    try {
      log(`concurrency ${options.concurrency}: ${options.rounds} rounds × ${options.windowMs} ms per path`);
      const phaseLimitMs = options.rounds * options.paths.length * options.windowMs * 2 + 30_000;
      result.concurrent = await withTimeout(
        measureConcurrent(options, targets, concurrentClients, profiler, profiles),
        phaseLimitMs,
        `concurrency-${options.concurrency} phase`,
      );
      result.gatewayResidentMiB = residentMemoryMiB(gateway.child.pid);
    } catch (error) {
      phaseErrors.push(`concurrency ${options.concurrency}: ${(error as Error).message}`);
    }
    if (options.llama) {
      try {
        log(`llama-cpp: ${options.llamaRuns} interleaved runs per side, maxTokens ${options.llamaMaxTokens}`);
        await gatewayLlamaWarmUp;
        const raw = await rawStart!;
        result.llama = await withTimeout(measureLlama(options, raw, client, gateway.child.pid, profiler, profiles), options.mode === 'smoke' ? 30_000 : 120_000, 'llama-cpp phase');
      } catch (error) {
        phaseErrors.push(`llama-cpp: ${(error as Error).message}`);
      }
    }
  } catch (error) {
    phaseErrors.push(`setup: ${(error as Error).message}`);
  } finally {
    // Other processes' CPU during the run tells how noisy the machine was (this process and its descendants are subtracted).
    const benchmarkCpuMs = processTreeCpuMs(process.pid) - benchmarkCpuAtStart;
    const elapsedMs = performance.now() - startedAt;
    const machineAtEnd = machineCpu();
    const otherCpuMs = machineAtEnd.busyMs - machineAtStart.busyMs - benchmarkCpuMs;
    const capacityMs = elapsedMs * availableParallelism();
    result.machineLoad = {
      benchmarkCpuSeconds: benchmarkCpuMs / 1000,
      otherProcessesCpuSeconds: Math.max(0, otherCpuMs) / 1000,
      otherProcessesShareOfCapacity: Math.max(0, otherCpuMs) / capacityMs,
      stealCpuSeconds: (machineAtEnd.stealMs - machineAtStart.stealMs) / 1000,
      stealShareOfCapacity: (machineAtEnd.stealMs - machineAtStart.stealMs) / capacityMs,
    };
    const openClients = [...(client ? [client] : []), ...concurrentClients];
    await withTimeout(Promise.all(openClients.map((open) => open.dispose())), 5_000, 'closing the graphql-ws clients').catch(() => {});
    // The gateway gets time to stop cleanly, so that --cpu-prof can write its profile.
    await Promise.all(children.map((child) => child.stop(10_000)));
  }

  if (options.mode === 'profile') {
    const gatewayRequestsAtConcurrencyOne = options.iterations * options.paths.filter((path) => path !== 'direct').length;
    const sections = [...profiles].map(([name, file]) => {
      const summary = summarizeCpuProfile(file, 30);
      const perRequest =
        name === 'concurrency 1'
          ? ` Gateway CPU per gateway request (${gatewayRequestsAtConcurrencyOne} requests over ${options.paths.filter((path) => path !== 'direct').join(' and ')}): ${formatNumber(summary.busyMs / gatewayRequestsAtConcurrencyOne, 3)} ms.`
          : name === 'llama-cpp'
            ? ` ${options.llamaRuns} gateway generations (raw runs in between leave the gateway idle); the llama.cpp computation itself runs on another thread and is not in this profile.`
            : '';
      return `### ${name}\n\nFrom \`${file.slice(REPOSITORY_ROOT.length)}\`; positions in \`src/\` are mapped to the TypeScript lines; \`(idle)\` is time the gateway's thread waited.${perRequest}\n\n${formatCpuProfileSummary(summary)}`;
    });
    if (sections.length > 0) result.profileSummary = sections.join('\n\n');
    else phaseErrors.push('profile: no profile was written');
  }

  const webSocketPath = result.sequential?.find((path) => path.path === 'graphql-ws');
  if (options.mode !== 'smoke') {
    result.targets.push({
      name: 'added TTFT, graphql-ws, p50',
      target: '≤ 1 ms',
      measured: webSocketPath ? `${formatNumber(webSocketPath.addedFirstTokenP50, 2)} ms` : 'not measured',
      met: webSocketPath && Number.isFinite(webSocketPath.addedFirstTokenP50) ? webSocketPath.addedFirstTokenP50 <= 1 : undefined,
    });
    if (options.llama) {
      result.targets.push({
        name: 'llama-cpp through the subscription vs raw',
        target: '≥ 95 %',
        measured: result.llama ? `${formatNumber(result.llama.ratioMedian * 100, 1)} %` : 'not measured',
        met: result.llama && Number.isFinite(result.llama.ratioMedian) ? result.llama.ratioMedian >= 0.95 : undefined,
      });
    }
  }
  result.durationSeconds = (performance.now() - startedAt) / 1000;

  const markdown = formatMarkdown(result);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const baseName = options.mode === 'full' ? 'latest' : options.mode;
  writeFileSync(join(RESULTS_DIR, `${baseName}.json`), `${JSON.stringify(result, null, 2)}\n`);
  // Only a full run that measured something writes Markdown: latest.md is committed, so smoke and
  // profile runs, and a run whose setup failed, must not replace it.
  const measuredSomething = result.sequential !== undefined || result.concurrent !== undefined || result.llama !== undefined;
  if (options.mode === 'full' && measuredSomething) writeFileSync(join(RESULTS_DIR, 'latest.md'), markdown);
  process.stdout.write(`${markdown}\n`);

  const failures = [
    ...(result.sequential ?? []).map((path) => path.failures),
    ...(result.concurrent ?? []).map((path) => path.failures),
    ...(result.llama ? [result.llama.raw.failures, result.llama.gateway.failures] : []),
  ].reduce((sum, counts) => sum + counts.errors + counts.wrongText, 0);
  const missing = [!result.sequential && 'concurrency 1', !result.concurrent && 'concurrency N', options.llama && !result.llama && 'llama-cpp'].filter(Boolean);
  const ok = phaseErrors.length === 0 && failures === 0 && missing.length === 0;
  log(`${ok ? 'done' : 'FAILED'} in ${result.durationSeconds.toFixed(1)} s: ${failures} failed or wrong streams, ${phaseErrors.length} phase errors`);
  clearTimeout(deadline);
  return ok ? 0 : 1;
}

main().then(
  (status) => {
    killAllChildren();
    process.exit(status);
  },
  (error: unknown) => {
    console.error('[bench] failed:', error);
    killAllChildren();
    process.exit(1);
  },
);
