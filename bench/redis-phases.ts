/**
 * The scaled-out paths, over the real Redis at `BENCH_REDIS_URL` (default
 * `redis://127.0.0.1:6379/13`), each on fresh gateway processes with `REDIS_URL` set:
 * (a) `one-instance`: one instance, the subscriber on the instance that runs the generation
 *     (graphql-ws `chatCompletion`);
 * (b) `two-instances`: two instances, started on A with the `startChatCompletion` mutation and
 *     followed on B with `chatCompletionEvents` (graphql-ws); B is (c)'s api instance, which
 *     follows a generation as any instance does (its role only sends its own starts to the queue);
 * (c) `api-and-worker`: roles `api` and `worker`, the subscriber on the api instance, the
 *     generation queued (BullMQ) and run on the worker.
 * Each variant: a warm-up window, a concurrency-1 block paired with direct (added time to first
 * token), then concurrency-N rounds (tokens/s as a ratio to direct), during which Redis's
 * `INFO commandstats` and `INFO cpu` and the instances' CPU from `/proc` are read before and after:
 * Redis commands per generation and per delta event, Redis CPU and gateway CPU (all instances of
 * the variant) per streamed token. Every stream's text is checked, as in every phase.
 */
import { Redis } from 'ioredis';
import type { Client } from 'graphql-ws';
import { processCpuMs, type ManagedProcess } from './child-processes.js';
import { formatCpuProfileSummary, summarizeCpuProfile } from './cpu-profile-summary.js';
import { createGatewayProfiler } from './gateway-profiler.js';
import type { ConcurrentPathResult, FailureCounts, UpstreamPath } from './report.js';
import { formatNumber, median } from './statistics.js';
import { connectWebSocketClient } from './stream-clients.js';
import { measureConcurrent, measureSequential, warmUpConcurrent, type UpstreamPhaseOptions } from './upstream-phases.js';
import { webSocketURL, type PathTargets } from './upstream-paths.js';

/** The three ways of scaling out measured. */
export type RedisVariant = 'one-instance' | 'two-instances' | 'api-and-worker';

/** Every variant, in the order they are measured. */
export const REDIS_VARIANTS: readonly RedisVariant[] = ['one-instance', 'two-instances', 'api-and-worker'];

/** What each variant must reach on this machine (the issue's targets). */
export const REDIS_TARGETS: Record<RedisVariant, { addedFirstTokenP50Ms: number; ratioToDirect?: number }> = {
  'one-instance': { addedFirstTokenP50Ms: 1.5, ratioToDirect: 0.7 },
  'two-instances': { addedFirstTokenP50Ms: 3 },
  'api-and-worker': { addedFirstTokenP50Ms: 5 },
};

/** One variant's figures. */
export interface RedisVariantResult {
  variant: RedisVariant;
  path: UpstreamPath;
  /** Added time to first token at concurrency 1, paired with direct, ms. */
  addedFirstTokenP50: number;
  addedFirstTokenP99: number;
  /** Tokens/s at concurrency N as a ratio to direct's, median over the rounds. */
  ratioToDirect: number;
  tokensPerSecond: number;
  /** Generations (verified streams) of the concurrency-N windows the counts below are divided by. */
  generations: number;
  /** Delta events per generation, median (what the client received as text-carrying messages). */
  deltasPerGeneration: number;
  /** Redis commands during the concurrency-N rounds per generation, and per delta event. */
  commandsPerGeneration: number;
  commandsPerDelta: number;
  /** `EVALSHA`s per generation: the gateway's scripts (an event's append, a record's save), one command each; `commandstats` counts the commands they run too. */
  scriptsPerGeneration: number;
  /**
   * Round trips per generation at concurrency N, and per delta event there: the socket reads Redis
   * made (`INFO stats` `total_reads_processed`), one for each batch of commands that reached it
   * however many it held, from every client (the instances' background commands and blocking
   * reads too). At concurrency N one batch carries several generations' commands.
   */
  roundTripsPerGeneration: number;
  roundTripsPerDelta: number;
  /** The same at concurrency 1 (the concurrency-1 block, its warm-up included): the round trips one generation waits on, in turn or side by side. */
  roundTripsPerGenerationAlone: number;
  /** The most frequent commands, per generation. */
  topCommands: Array<[command: string, perGeneration: number]>;
  /** Redis's CPU (user + system) per streamed token, µs. */
  redisCpuMicrosecondsPerToken: number;
  /** The variant's gateway processes' CPU per streamed token, µs (both instances, or api + worker). */
  gatewayCpuMicrosecondsPerToken: number;
  failures: FailureCounts;
  /** Profile mode: the subscriber instance's CPU profile summary over the concurrency-N rounds. */
  profileSummary?: string;
}

/** The phase's result. */
export interface RedisPhaseResult {
  redisVersion: string;
  variants: RedisVariantResult[];
}

/** What the phase needs. */
export interface RedisPhaseOptions {
  upstreamPhase: UpstreamPhaseOptions;
  /** Where the fake upstream and direct are (the gateway fields are replaced per variant). */
  targets: PathTargets;
  redisUrl: string;
  /** The variants measured, in order (those {@link startRedisGateways} started processes for). */
  variants: readonly RedisVariant[];
  rounds: number;
  iterations: number;
  /** Starts a gateway process with the run's settings plus `settings`. */
  startGateway(name: string, settings: Record<string, string>): Promise<{ url: string; handle: ManagedProcess }>;
  /** Profile mode: where to write a V8 CPU profile of each variant's subscriber instance during its concurrency-N rounds. */
  profileDirectory?: string;
}

/** `INFO commandstats` → calls by command name; `INFO cpu` → seconds; `INFO stats` → socket reads (one per batch of commands received). */
async function redisCounters(redis: Redis): Promise<{ calls: Map<string, number>; cpuSeconds: number; reads: number }> {
  const [commandstats, cpu, stats] = await Promise.all([redis.info('commandstats'), redis.info('cpu'), redis.info('stats')]);
  const calls = new Map<string, number>();
  for (const match of commandstats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? Number.NaN);
  const reads = Number(/^total_reads_processed:(\d+)/m.exec(stats)?.[1] ?? Number.NaN);
  return { calls, cpuSeconds: seconds('used_cpu_user') + seconds('used_cpu_sys'), reads };
}

/** `after − before` per command; the commands the bench itself sends to read them are left out. */
function commandDifference(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const difference = new Map<string, number>();
  for (const [command, calls] of after) {
    if (command === 'info') continue;
    const added = calls - (before.get(command) ?? 0);
    if (added > 0) difference.set(command, added);
  }
  return difference;
}

const sumFailures = (results: Array<{ failures: FailureCounts }>): FailureCounts => ({
  errors: results.reduce((sum, entry) => sum + entry.failures.errors, 0),
  wrongText: results.reduce((sum, entry) => sum + entry.failures.wrongText, 0),
  examples: results.flatMap((entry) => entry.failures.examples).slice(0, 3),
});

/** A gateway process of the phase. */
type Gateway = { url: string; handle: ManagedProcess };

/** A variant's processes: `start` takes the request, `follow` serves the subscription; `all` are counted for CPU. */
interface VariantInstances {
  start: Gateway;
  follow: Gateway;
  all: ManagedProcess[];
}

/** The processes of the three variants: instance A (role `all`), and roles `api` (also (b)'s B) and `worker` (only for (c)). */
export interface RedisGateways {
  a: Gateway;
  api: Gateway;
  worker?: Gateway;
}

/**
 * Starts the phase's gateway processes at once (the run may start them early, while other phases
 * run, to save time in smoke mode): A and the api instance, and the worker when `variants` has (c).
 * Variants (a) and (b) share A, (b) and (c) the api instance.
 * @throws the first start failure (the processes that did start are stopped).
 */
export async function startRedisGateways(options: Pick<RedisPhaseOptions, 'redisUrl' | 'startGateway' | 'variants'> & { concurrency: number }): Promise<RedisGateways> {
  const shared = { REDIS_URL: options.redisUrl, QUEUE_PREFIX: `bench-${process.pid}`, WORKER_CONCURRENCY: String(options.concurrency + 10) };
  const outcomes = await Promise.allSettled([
    options.startGateway('gateway-redis-a', { ...shared, ROLE: 'all' }),
    options.startGateway('gateway-api', { ...shared, ROLE: 'api' }),
    ...(options.variants.includes('api-and-worker') ? [options.startGateway('gateway-worker', { ...shared, ROLE: 'worker' })] : []),
  ]);
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed) {
    await Promise.all(outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value.handle.stop() : undefined)));
    throw failed.reason;
  }
  const [a, api, worker] = outcomes.map((outcome) => (outcome as PromiseFulfilledResult<Gateway>).value) as [Gateway, Gateway, Gateway?];
  return { a, api, ...(worker && { worker }) };
}

/** The processes of `variant` among `gateways`. */
function instancesOf(variant: RedisVariant, gateways: RedisGateways): VariantInstances {
  if (variant === 'one-instance') return { start: gateways.a, follow: gateways.a, all: [gateways.a.handle] };
  if (variant === 'two-instances') return { start: gateways.a, follow: gateways.api, all: [gateways.a.handle, gateways.api.handle] };
  if (!gateways.worker) throw new Error('variant (c) needs the worker, which was not started');
  return { start: gateways.api, follow: gateways.api, all: [gateways.api.handle, gateways.worker.handle] };
}

/** Measures one variant on its processes (started for it and idle until now). */
async function measureVariant(variant: RedisVariant, instances: VariantInstances, options: RedisPhaseOptions, redis: Redis): Promise<RedisVariantResult> {
  const { upstreamPhase } = options;
  const clients: Client[] = [];
  try {
    const targets: PathTargets = { ...options.targets, gatewayURL: instances.start.url, gatewayProcessId: instances.follow.handle.child.pid };
    const followTargets: PathTargets = { ...targets, gatewayURL: instances.follow.url };
    const client = await connectWebSocketClient(webSocketURL(followTargets), 10_000);
    clients.push(client);
    const concurrentClients = await Promise.all(Array.from({ length: upstreamPhase.concurrency }, () => connectWebSocketClient(webSocketURL(followTargets), 10_000)));
    clients.push(...concurrentClients);
    const path: UpstreamPath = variant === 'two-instances' ? 'start-and-follow' : 'graphql-ws';
    const phase: UpstreamPhaseOptions = { ...upstreamPhase, paths: ['direct', path], rounds: 1, iterations: options.iterations };
    if (phase.warmupWindowMs > 0) await warmUpConcurrent({ ...phase, paths: [path] }, targets, concurrentClients);
    const sequentialBefore = await redisCounters(redis);
    const sequential = await measureSequential(phase, targets, client);
    const sequentialAfter = await redisCounters(redis);

    const redisBefore = await redisCounters(redis);
    const cpuBefore = instances.all.map((handle) => processCpuMs(handle.child.pid));
    const profiler = options.profileDirectory === undefined ? undefined : createGatewayProfiler(instances.follow.handle, options.profileDirectory);
    await profiler?.start();
    const rounds: ConcurrentPathResult[][] = [];
    for (let round = 0; round < options.rounds; round++) rounds.push(await measureConcurrent(phase, targets, concurrentClients));
    const profile = await profiler?.stop(`redis-${variant}`);
    const cpuAfter = instances.all.map((handle) => processCpuMs(handle.child.pid));
    const redisAfter = await redisCounters(redis);

    const windows = rounds.map((round) => round.find((entry) => entry.path === path)!);
    const generations = windows.reduce((sum, entry) => sum + entry.requests, 0);
    const tokens = generations * upstreamPhase.tokens;
    const deltasPerGeneration = median(windows.map((entry) => entry.messagesPerStreamP50));
    const commands = commandDifference(redisBefore.calls, redisAfter.calls);
    const totalCommands = [...commands.values()].reduce((sum, calls) => sum + calls, 0);
    const gatewayCpuMs = cpuAfter.reduce((sum, after, index) => sum + after - cpuBefore[index]!, 0);
    const measured = sequential.find((entry) => entry.path === path)!;
    return {
      variant,
      path,
      addedFirstTokenP50: measured.addedFirstTokenP50,
      addedFirstTokenP99: measured.addedFirstTokenP99,
      ratioToDirect: median(windows.map((entry) => entry.ratioToDirect)),
      tokensPerSecond: median(windows.map((entry) => entry.tokensPerSecond)),
      generations,
      deltasPerGeneration,
      commandsPerGeneration: totalCommands / generations,
      commandsPerDelta: totalCommands / (generations * deltasPerGeneration),
      scriptsPerGeneration: (commands.get('evalsha') ?? 0) / generations,
      // The readings' own INFO commands (a socket read or a few) are left in: a rounding error here.
      roundTripsPerGeneration: (redisAfter.reads - redisBefore.reads) / generations,
      roundTripsPerDelta: (redisAfter.reads - redisBefore.reads) / (generations * deltasPerGeneration),
      roundTripsPerGenerationAlone: (sequentialAfter.reads - sequentialBefore.reads) / (phase.warmupIterations + phase.iterations),
      topCommands: [...commands]
        .sort((first, second) => second[1] - first[1])
        .slice(0, 8)
        .map(([command, calls]) => [command, calls / generations]),
      redisCpuMicrosecondsPerToken: ((redisAfter.cpuSeconds - redisBefore.cpuSeconds) * 1e6) / tokens,
      gatewayCpuMicrosecondsPerToken: (gatewayCpuMs * 1000) / tokens,
      failures: sumFailures([...sequential.filter((entry) => entry.path === path), ...windows]),
      ...(profile !== undefined && { profileSummary: formatCpuProfileSummary(summarizeCpuProfile(profile)) }),
    };
  } finally {
    await Promise.all(clients.map((client) => client.dispose()));
  }
}

/**
 * Measures the variants in turn on `gateways` (started by {@link startRedisGateways}; the others
 * idle meanwhile), then stops them all.
 * @throws Error when Redis cannot be reached or the gateways did not start (the phase is then reported as not run).
 */
export async function measureRedisPhases(options: RedisPhaseOptions, gateways: Promise<RedisGateways>): Promise<RedisPhaseResult> {
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2_000, lazyConnect: true });
  try {
    await redis.connect();
    const version = /^redis_version:(\S+)/m.exec(await redis.info('server'))?.[1] ?? 'unknown';
    const started = await gateways;
    const variants: RedisVariantResult[] = [];
    for (const variant of options.variants) {
      options.upstreamPhase.log(`redis: ${variant}`);
      variants.push(await measureVariant(variant, instancesOf(variant, started), options, redis));
    }
    return { redisVersion: version, variants };
  } finally {
    redis.disconnect();
    const started = await gateways.catch(() => undefined);
    if (started) await Promise.all(Object.values(started).map((gateway: Gateway | undefined) => gateway?.handle.stop()));
  }
}

const VARIANT_LABELS: Record<RedisVariant, string> = {
  'one-instance': '(a) one instance, subscriber on it',
  'two-instances': '(b) start on A, follow on B',
  'api-and-worker': '(c) roles api + worker',
};

/** Whether a variant met its targets. */
export function redisTargetMet(result: RedisVariantResult): boolean {
  const target = REDIS_TARGETS[result.variant];
  return result.addedFirstTokenP50 <= target.addedFirstTokenP50Ms && (target.ratioToDirect === undefined || result.ratioToDirect >= target.ratioToDirect);
}

/** The phase as a Markdown section of the report. */
export function formatRedisPhases(result: RedisPhaseResult): string {
  const lines = [
    '## Scaled out over Redis',
    '',
    `Redis ${result.redisVersion} on this machine. Each variant on fresh gateway processes with \`REDIS_URL\`: a concurrency-1 block paired with direct, then concurrency-N rounds (medians); Redis commands (\`INFO commandstats\`), round trips (Redis's socket reads, \`INFO stats\` \`total_reads_processed\`: one per batch of commands that reaches it) and CPU (\`INFO cpu\`, /proc for the gateways) counted over the concurrency-N rounds (round trips at concurrency 1 over the concurrency-1 block), direct's windows included (background commands: lease renewals, queue polling), and divided by the variant's generations there.`,
    '',
    '| variant | added TTFT p50 / p99 | target p50 | tokens/s ÷ direct | Redis commands per generation (inside scripts too) | per delta | scripts (EVALSHA) per generation | round trips per generation, concurrency 1 / N | per delta (N) | top commands per generation | Redis CPU per token | gateway CPU per token | errors / wrong text |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|',
  ];
  for (const variant of result.variants) {
    const target = REDIS_TARGETS[variant.variant];
    lines.push(
      `| ${VARIANT_LABELS[variant.variant]} | ${formatNumber(variant.addedFirstTokenP50, 2)} / ${formatNumber(variant.addedFirstTokenP99, 2)} ms | ≤ ${target.addedFirstTokenP50Ms} ms | ${formatNumber(variant.ratioToDirect, 2)}${target.ratioToDirect === undefined ? '' : ` (≥ ${target.ratioToDirect})`} | ${formatNumber(variant.commandsPerGeneration, 1)} | ${formatNumber(variant.commandsPerDelta, 2)} | ${formatNumber(variant.scriptsPerGeneration, 1)} | ${formatNumber(variant.roundTripsPerGenerationAlone, 1)} / ${formatNumber(variant.roundTripsPerGeneration, 1)} | ${formatNumber(variant.roundTripsPerDelta, 2)} | ${variant.topCommands.map(([command, calls]) => `${command} ${formatNumber(calls, 1)}`).join(', ')} | ${formatNumber(variant.redisCpuMicrosecondsPerToken, 1)} µs | ${formatNumber(variant.gatewayCpuMicrosecondsPerToken, 1)} µs | ${variant.failures.errors} / ${variant.failures.wrongText} |`,
    );
  }
  lines.push('', `Delta events per generation (median): ${result.variants.map((variant) => `${variant.variant} ${formatNumber(variant.deltasPerGeneration, 0)}`).join(', ')}.`);
  for (const variant of result.variants) {
    if (variant.profileSummary) lines.push('', `### CPU profile of the subscriber instance, ${VARIANT_LABELS[variant.variant]}`, '', variant.profileSummary);
  }
  return lines.join('\n');
}
