/**
 * The upstream path at concurrency 1 (time to first token, paths alternated within every
 * iteration) and at concurrency N (requests/s and tokens/s, paths interleaved by time window),
 * against the fake upstream's default stream (64 tokens, no delay). Every stream's text must equal
 * the expected text (all tokens differ, so a lost, duplicated or reordered token shows).
 */
import { performance } from 'node:perf_hooks';
import type { Client } from 'graphql-ws';
import { ownCpuMs, processCpuMs } from './child-processes.js';
import { FailureTally } from './failure-tally.js';
import type { GatewayProfiler } from './gateway-profiler.js';
import { GATEWAY_PATHS, type ConcurrentPathResult, type SequentialPathResult, type UpstreamPath } from './report.js';
import { formatNumber, median, quantile } from './statistics.js';
import type { StreamResult } from './stream-clients.js';
import { runPath, type PathTargets } from './upstream-paths.js';

/** What the two phases need to know. Durations in ms. */
export interface UpstreamPhaseOptions {
  /** The paths measured; `direct` first (it is the baseline). */
  paths: UpstreamPath[];
  /** The model naming the measured stream (`bench`: the upstream's default). */
  model: string;
  /** Tokens per stream. */
  tokens: number;
  expectedText: string;
  iterations: number;
  /**
   * Iterations of Portkey's block (at most `iterations`): its requests take ~30 ms, and only its
   * p50 is compared with this gateway's targets, so its block is kept short to hold the run to 5 minutes.
   */
  portkeyIterations: number;
  warmupIterations: number;
  concurrency: number;
  windowMs: number;
  warmupWindowMs: number;
  rounds: number;
  requestTimeoutMs: number;
  log: (message: string) => void;
  /**
   * Runs between two concurrency-1 iterations, untimed: the run has the client and the fake
   * upstream collect their young generations there (not the processes under test).
   */
  betweenIterations?: () => Promise<void>;
}

/** CPU time used so far by the gateway, Portkey, the upstream and this client, ms. */
interface CpuSnapshot {
  gateway: number;
  portkey: number;
  upstream: number;
  client: number;
}

/** Reads {@link CpuSnapshot} from `/proc`. */
function cpuSnapshot(targets: PathTargets): CpuSnapshot {
  return {
    gateway: processCpuMs(targets.gatewayProcessId),
    portkey: targets.portkeyProcessId === undefined ? 0 : processCpuMs(targets.portkeyProcessId),
    upstream: processCpuMs(targets.upstreamProcessId),
    client: ownCpuMs(),
  };
}

/** `after − before`, per process. */
function cpuDifference(before: CpuSnapshot, after: CpuSnapshot): CpuSnapshot {
  return { gateway: after.gateway - before.gateway, portkey: after.portkey - before.portkey, upstream: after.upstream - before.upstream, client: after.client - before.client };
}

/** The middle process's share of a CPU snapshot for `path` (NaN for direct: there is none). */
function middleCpu(path: UpstreamPath, cpu: CpuSnapshot): number {
  if (path === 'direct') return Number.NaN;
  return path === 'portkey' ? cpu.portkey : cpu.gateway;
}

/**
 * Concurrency 1: each path in turn runs a block of iterations that alternate it with direct (the
 * order rotating), so "added time to first token" is paired per iteration (path minus direct) and
 * measures the path beside the baseline only. (With every path in every iteration, the request after
 * Portkey's 28 ms one met cold caches: this gateway's added time to first token doubled, measured.)
 * `options.betweenIterations` runs after every iteration, outside the timed requests.
 * The direct row gathers the direct requests of every block. A last block pairs direct with
 * direct (an A/A test): the direct row's "added" figures are the second request minus the first
 * (which one counts as second alternating), the spread a path that adds nothing would show on this
 * machine at that moment. With `targets.relayBaseURL`, a last block pairs direct with direct
 * through the byte relay (`bench/tcp-relay-process.ts`, order alternating): the direct row's
 * `relayAdded…` figures, what the two extra process hops of any middle process add here. Of the
 * direct row's other figures, the requests of both blocks count in the failures only. With a `profiler`, the blocks of
 * this gateway's paths are profiled into one file (warm-up iterations included), whose path goes
 * to `profiles`. `cpuUsage` receives the gateway's CPU time per request over its blocks, ms.
 * @throws Error when a warm-up request fails.
 */
export async function measureSequential(
  options: UpstreamPhaseOptions,
  targets: PathTargets,
  client: Client,
  profiler?: GatewayProfiler,
  profiles?: Map<string, string>,
  cpuUsage?: { gatewayCpuMsPerGatewayRequest?: number },
): Promise<SequentialPathResult[]> {
  const paths = options.paths;
  const tallies = new Map(paths.map((path) => [path, new FailureTally()]));
  const samples = new Map<UpstreamPath, Array<StreamResult | undefined>>(paths.map((path) => [path, []]));
  /** Per measured path, the direct request of each of its iterations (for the pairing). */
  const directBeside = new Map<UpstreamPath, Array<StreamResult | undefined>>();
  const streamOptions = { timeoutMs: options.requestTimeoutMs };
  /**
   * One request on `path`: in a warm-up iteration undefined (throws when it failed), otherwise the
   * result when clean, undefined when it failed or its text was wrong (counted in the path's tally).
   */
  const request = async (path: UpstreamPath, warmup: boolean, through: PathTargets = targets): Promise<StreamResult | undefined> => {
    const result = await runPath(path, through, client, options.model, streamOptions);
    if (warmup) {
      if (result.error !== undefined) throw new Error(`warm-up request on ${path}${through === targets ? '' : ' through the relay'} failed: ${result.error}`);
      return undefined;
    }
    return tallies.get(path)!.check(result, options.expectedText) ? result : undefined;
  };
  let gatewayCpuMs = 0;
  const gatewayBlocks = paths.filter((path) => GATEWAY_PATHS.includes(path));
  for (const measured of paths.filter((path) => path !== 'direct')) {
    const gateway = GATEWAY_PATHS.includes(measured);
    if (gateway && profiler && measured === gatewayBlocks[0]) await profiler.start();
    const besides: Array<StreamResult | undefined> = [];
    directBeside.set(measured, besides);
    let cpuBefore = cpuSnapshot(targets);
    const total = options.warmupIterations + (measured === 'portkey' ? Math.min(options.iterations, options.portkeyIterations) : options.iterations);
    for (let iteration = 0; iteration < total; iteration++) {
      const warmup = iteration < options.warmupIterations;
      if (iteration === options.warmupIterations) cpuBefore = cpuSnapshot(targets);
      const order: UpstreamPath[] = iteration % 2 === 0 ? ['direct', measured] : [measured, 'direct'];
      for (const path of order) {
        const clean = await request(path, warmup);
        if (warmup) continue;
        samples.get(path)!.push(clean);
        if (path === 'direct') besides.push(clean);
      }
      await options.betweenIterations?.();
    }
    if (gateway) gatewayCpuMs += cpuDifference(cpuBefore, cpuSnapshot(targets)).gateway;
    if (gateway && profiler && measured === gatewayBlocks.at(-1)) profiles?.set('concurrency 1', await profiler.stop('gateway-c1'));
  }
  /**
   * A block of direct requests sent to `through`'s upstream URL beside direct ones, the order
   * switching every iteration: per clean pair, the one through `through` minus the plain one, ms.
   * With `through` = `targets` (direct beside direct) that is the second minus the first on even
   * iterations and the first minus the second on odd ones.
   */
  const besideDirect = async (through: PathTargets): Promise<number[]> => {
    const added: number[] = [];
    for (let iteration = 0; iteration < options.warmupIterations + options.iterations; iteration++) {
      const warmup = iteration < options.warmupIterations;
      const throughFirst = iteration % 2 === 1;
      const first = await request('direct', warmup, throughFirst ? through : targets);
      const second = await request('direct', warmup, throughFirst ? targets : through);
      const [measured, direct] = throughFirst ? [first, second] : [second, first];
      if (measured && direct) added.push(measured.firstTokenMs - direct.firstTokenMs);
      await options.betweenIterations?.();
    }
    return added;
  };
  // Direct beside direct: the same pairing with nothing in between, for the noise floor.
  const directBesideDirect = paths.includes('direct') ? await besideDirect(targets) : [];
  // Direct through the byte relay beside direct: the cost of a middle process's two extra hops alone.
  const relayBesideDirect =
    targets.relayBaseURL !== undefined && paths.includes('direct') ? await besideDirect({ ...targets, upstreamBaseURL: targets.relayBaseURL }) : [];
  const gatewayRequests = options.iterations * gatewayBlocks.length;
  if (cpuUsage && gatewayRequests > 0) cpuUsage.gatewayCpuMsPerGatewayRequest = gatewayCpuMs / gatewayRequests;
  return paths.map((path) => {
    const results = samples.get(path)!;
    const clean = results.filter((result): result is StreamResult => result !== undefined);
    const direct = directBeside.get(path) ?? [];
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
      addedFirstTokenP50: quantile(path === 'direct' ? directBesideDirect : added, 0.5),
      addedFirstTokenP99: quantile(path === 'direct' ? directBesideDirect : added, 0.99),
      ...(path === 'direct' && relayBesideDirect.length > 0 && {
        relayAddedFirstTokenP50: quantile(relayBesideDirect, 0.5),
        relayAddedFirstTokenP99: quantile(relayBesideDirect, 0.99),
      }),
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
  options: UpstreamPhaseOptions,
  targets: PathTargets,
  webSocketClients: Client[],
  windowMs: number,
  tally: FailureTally,
): Promise<WindowResult> {
  const clean: StreamResult[] = [];
  const streamOptions = { timeoutMs: options.requestTimeoutMs };
  const cpuBefore = cpuSnapshot(targets);
  const startedAt = performance.now();
  const stopAt = startedAt + windowMs;
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, worker) => {
      while (performance.now() < stopAt) {
        const result = await runPath(path, targets, webSocketClients[worker % Math.max(1, webSocketClients.length)], options.model, streamOptions);
        if (tally.check(result, options.expectedText)) clean.push(result);
      }
    }),
  );
  const elapsedMs = performance.now() - startedAt;
  return { elapsedMs, clean, cpu: cpuDifference(cpuBefore, cpuSnapshot(targets)) };
}

/**
 * Concurrency N: each round runs every path for one window (order rotating); the sums make the
 * figures. With a `profiler`, each gateway path's measured windows are profiled, one file per path
 * (`profiles` receives path → file).
 */
export async function measureConcurrent(
  options: UpstreamPhaseOptions,
  targets: PathTargets,
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
      const profiled = profiler !== undefined && GATEWAY_PATHS.includes(path);
      if (profiled) await profiler.start();
      const window = await runWindow(path, options, targets, clients, options.windowMs, tallies.get(path)!);
      if (profiled) profiles?.set(`${path}, concurrency ${options.concurrency}`, await profiler.stop(`gateway-${path}-c${options.concurrency}-round${round + 1}`));
      windows.get(path)!.push(window);
      options.log(`c=${options.concurrency} round ${round + 1}/${options.rounds} ${path}: ${formatNumber((window.clean.length / window.elapsedMs) * 1000, 0)} requests/s`);
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
    const cpuSum = (pick: (cpu: CpuSnapshot) => number) => list.reduce((sum, window) => sum + pick(window.cpu), 0);
    const middleCpuMs = cpuSum((cpu) => middleCpu(path, cpu));
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
      middleCpuMsPerRequest: middleCpuMs / requests,
      upstreamCpuMsPerRequest: cpuSum((cpu) => cpu.upstream) / requests,
      clientCpuMsPerRequest: cpuSum((cpu) => cpu.client) / requests,
      middleCpuMicrosecondsPerToken: (middleCpuMs / (requests * options.tokens)) * 1000,
      failures: tallies.get(path)!.counts,
    };
  });
}

/**
 * Warms the JIT of every process at full concurrency: each path runs for `warmupWindowMs` (a few
 * hundred sequential requests are not enough for V8 to optimise the gateway's hot code; the
 * concurrency-1 figures were seen to drop by half after this).
 * @throws Error when no request of a path succeeded.
 */
export async function warmUpConcurrent(options: UpstreamPhaseOptions, targets: PathTargets, clients: Client[]): Promise<void> {
  for (const path of options.paths) {
    const result = await runWindow(path, options, targets, clients, options.warmupWindowMs, new FailureTally());
    if (result.clean.length === 0) throw new Error(`warm-up at concurrency ${options.concurrency} on ${path}: no request succeeded`);
  }
}
