/** The benchmark's result shapes and their Markdown rendering. */
import { formatNonStreaming, type NonStreamingResult } from './non-streaming.js';
import { formatRedisPhases, type RedisPhaseResult } from './redis-phases.js';
import { formatRetentionCost, type RetentionCostResult } from './retention-cost.js';
import { formatTracingOverhead, type TracingOverheadResult } from './tracing-overhead.js';
import { formatUsageWrites, type UsageWritesResult } from './usage-writes.js';
import { formatNumber } from './statistics.js';

/**
 * The ways of reading an upstream stream: (a) `direct` to the fake upstream (the baseline),
 * (b) through the Portkey gateway (the reference peer), (c) this gateway's REST API, (d) its
 * subscription over graphql-ws, (e) the same subscription over SSE; and, in the Redis phase only,
 * `start-and-follow`: `startChatCompletion` on one instance, `chatCompletionEvents` on another.
 */
export type UpstreamPath = 'direct' | 'portkey' | 'graphql-ws' | 'sse' | 'rest' | 'start-and-follow';

/** Every path, in the order of the tables. */
export const ALL_PATHS: readonly UpstreamPath[] = ['direct', 'portkey', 'graphql-ws', 'sse', 'rest'];

/** The paths through this gateway. */
export const GATEWAY_PATHS: readonly UpstreamPath[] = ['graphql-ws', 'sse', 'rest'];

/** Human-readable names of {@link UpstreamPath}. */
export const PATH_LABELS: Record<UpstreamPath, string> = {
  direct: 'direct to upstream (fetch + eventsource-parser)',
  portkey: 'Portkey gateway, chat completions (fetch + eventsource-parser)',
  'graphql-ws': 'gateway, subscription over graphql-ws',
  sse: 'gateway, subscription over SSE',
  rest: 'gateway, REST chat completions (fetch + eventsource-parser)',
  'start-and-follow': 'gateway, started on one instance (HTTP mutation), followed on another (graphql-ws)',
};

/** Short names of {@link UpstreamPath}, for column heads. */
export const PATH_SHORT_LABELS: Record<UpstreamPath, string> = {
  direct: 'direct',
  portkey: 'Portkey',
  'graphql-ws': 'graphql-ws',
  sse: 'SSE',
  rest: 'REST',
  'start-and-follow': 'start on A, follow on B',
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
  /**
   * Paired per iteration: this path's time to first token minus the direct one's; for `direct`,
   * one direct request minus another beside it (the noise floor of the pairing; NaN when not measured).
   */
  addedFirstTokenP50: number;
  addedFirstTokenP99: number;
  /**
   * `direct` only, when the byte relay ran: a direct request through the relay minus a direct
   * request beside it, paired per iteration (`bench/tcp-relay-process.ts`): the two extra process
   * hops of any middle process, without its work.
   */
  relayAddedFirstTokenP50?: number;
  relayAddedFirstTokenP99?: number;
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
  /**
   * CPU time (user + system) per verified request of each process during the windows, ms.
   * `middle` is the process between client and upstream: this gateway, or Portkey (0 for direct).
   */
  middleCpuMsPerRequest: number;
  upstreamCpuMsPerRequest: number;
  clientCpuMsPerRequest: number;
  /** The middle process's CPU time per verified token, µs. */
  middleCpuMicrosecondsPerToken: number;
  failures: FailureCounts;
}

/**
 * Gaps between tokens of one path: an upstream sending one token every `gapMs`; the gaps are the
 * times between two text-carrying messages the client received. Each window runs this path's
 * streams and direct streams at once, so every path has its own simultaneous direct baseline.
 */
export interface TokenGapPathResult {
  path: UpstreamPath;
  streams: number;
  /** Number of gaps measured. */
  gaps: number;
  gapP50: number;
  gapP99: number;
  /** This path's gap quantile minus the quantile of the direct streams that ran beside it, ms (NaN for `direct`). */
  addedGapP50: number;
  addedGapP99: number;
  messagesPerStreamP50: number;
  /** The middle process's CPU time per verified token while tokens come paced (one message each), µs. */
  middleCpuMicrosecondsPerToken: number;
  failures: FailureCounts;
}

/** One level of the concurrency ramp. */
export interface RampLevelResult {
  concurrency: number;
  clean: boolean;
  /** Time from the first request to the last stream's end, s. */
  seconds: number;
  /** Why the level failed. */
  reason?: string;
}

/** The concurrency ramp of one path. */
export interface RampPathResult {
  path: UpstreamPath;
  levels: RampLevelResult[];
  /** The highest level with every stream complete and exact; 0 when none. */
  largestClean: number;
  /** Why the ramp stopped: the first failed level, the time cap, the open-files limit, or the last level. */
  stoppedBecause: string;
  /** True when the ramp stopped without a failed level (time cap, open-files limit, last level): the real limit is higher. */
  atLeast: boolean;
}

/** Open idle subscriptions on one fresh gateway process, then tokens to all of them. */
export interface IdleSubscriptionsResult {
  /**
   * `followers`: `chatCompletionEvents` subscriptions following `generations` generations started
   * (and held) before the first reading, so the figure is the subscription alone;
   * `multiplexed`: `chatCompletion` (start and stream) subscriptions, each with its own generation
   * and upstream request, many per WebSocket; `one-per-socket`: the same, one WebSocket each.
   */
  variant: 'followers' | 'multiplexed' | 'one-per-socket';
  subscriptions: number;
  sockets: number;
  /** Generations the subscriptions belong to: `subscriptions` for start and stream, fewer for followers. */
  generations: number;
  /** Whether the gateway ran with `--expose-gc` and collected garbage before each reading. */
  garbageCollected: boolean;
  residentBeforeBytes: number;
  residentOpenBytes: number;
  /** (resident with every subscription open − before) / subscriptions, bytes. */
  residentBytesPerSubscription: number;
  /** The same for V8's used heap, bytes. */
  heapBytesPerSubscription: number;
  /** Upstream streams held open (one per generation). */
  upstreamHeld: number;
  openSeconds: number;
  /** Tokens per stream once released. */
  tokensPerStream: number;
  flowSeconds: number;
  /** Streams that completed with exactly the expected text. */
  completeAndExact: number;
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

/** Aggregate tokens/s of `generations` generations one at a time versus all at once, one side. */
export interface LlamaBatchSide {
  /** Tokens of all generations over the wall time of the round, summed over rounds. */
  oneAtATimeTokensPerSecond: number;
  concurrentTokensPerSecond: number;
  /** concurrent / one at a time. */
  speedup: number;
  /** Concurrent generations whose text differs from the one-at-a-time text (batched decoding may change it; no failure). */
  concurrentTextsDifferent: number;
  failures: FailureCounts;
}

/** Concurrent generations on one model (batched context sequences). */
export interface LlamaBatchResult {
  generations: number;
  rounds: number;
  /** `LLAMA_SEQUENCES` of both processes. */
  sequences: number;
  gateway: LlamaBatchSide;
  raw?: LlamaBatchSide;
}

/** Whether Portkey took part, and why not. */
export interface PortkeyStatus {
  measured: boolean;
  version?: string;
  nodeServerVersion?: string;
  /** One line: why it did not take part. */
  reason?: string;
  /** How long this run's `npm ci --prefix bench` took, ms. */
  installedInMs?: number;
  /** What the streaming check saw (tokens spread over time, exact text). */
  streamingCheck?: string;
}

/** Garbage-collection pauses of one kind: how many, and their durations in ms. */
export interface GcPauseSummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Everything one run measured. */
export interface BenchResult {
  mode: 'full' | 'smoke' | 'profile';
  date: string;
  durationSeconds: number;
  environment: { node: string; cpuModel: string; cores: number; availableParallelism: number; platform: string; totalMemoryGiB: number };
  settings: Record<string, string | number | boolean>;
  portkey: PortkeyStatus;
  sequential?: SequentialPathResult[];
  /** Non-streaming requests at concurrency 1, direct beside Portkey and the REST API (`bench/non-streaming.ts`). */
  nonStreaming?: NonStreamingResult;
  tokenGaps?: TokenGapPathResult[];
  concurrent?: ConcurrentPathResult[];
  ramp?: RampPathResult[];
  idleSubscriptions?: IdleSubscriptionsResult[];
  /** Tracing on versus off (`bench/tracing-overhead.ts`). */
  tracing?: TracingOverheadResult;
  /** The scaled-out paths over Redis (`bench/redis-phases.ts`). */
  redis?: RedisPhaseResult;
  /** What a retained finished generation holds (`bench/retention-cost.ts`). */
  retention?: RetentionCostResult;
  llama?: LlamaResult;
  llamaBatch?: LlamaBatchResult;
  /** What a usage row costs, per database (`bench/usage-writes.ts`). */
  usageWrites?: UsageWritesResult[];
  /** CPU used during the run by the benchmark's processes and by every other process of the machine (noise). */
  machineLoad?: {
    benchmarkCpuSeconds: number;
    otherProcessesCpuSeconds: number;
    otherProcessesShareOfCapacity: number;
    /** Hypervisor steal: time this virtual machine's cores wanted to run but did not. */
    stealCpuSeconds: number;
    stealShareOfCapacity: number;
  };
  /** Gateway CPU time per gateway request (all gateway paths mixed) in the concurrency-1 phase, ms. */
  sequentialGatewayCpuMsPerRequest?: number;
  /**
   * The gateway's garbage-collection pauses during the concurrency-1 phase (its measured requests
   * and their direct neighbours; `bench/gateway-process.ts`, command `gc-pauses`), with the number of gateway requests.
   */
  sequentialGatewayPauses?: { gatewayRequests: number; young: GcPauseSummary; full: GcPauseSummary };
  /** Resident memory of the gateway process after the concurrency-N phase, MiB. */
  gatewayResidentMiB?: number;
  phaseErrors: string[];
  targets: Array<{ name: string; target: string; measured: string; met: boolean | undefined }>;
  profileSummary?: string;
}

const milliseconds = (value: number) => formatNumber(value, 2);
const failuresCell = (failures: FailureCounts) => `${failures.errors} / ${failures.wrongText}`;
/** `+1.20` / `−1.20`; a value that rounds to zero is `+0.00` (its sign is noise). */
const signed = (value: number, digits: number) => {
  if (!Number.isFinite(value)) return '—';
  const magnitude = formatNumber(Math.abs(value), digits);
  return `${value >= 0 || magnitude === formatNumber(0, digits) ? '+' : '−'}${magnitude}`;
};
/** Added times (ms) of Portkey's below this (or negative) are noise: no ratio to them is shown (nor of a negative added time of a path). */
const ADDED_NOISE_FLOOR_MS = 0.5;
/**
 * One addition to direct's cell in the added-time rows, e.g. `; beside itself +0.02 ms` (direct
 * beside direct) or `; through a byte relay +0.14 ms` (empty when not measured).
 */
const directAddition = (label: string, value: number | undefined) => (value !== undefined && Number.isFinite(value) ? `; ${label} ${signed(value, 2)} ms` : '');
const ratio = (value: number, reference: number) => (Number.isFinite(value) && Number.isFinite(reference) && reference !== 0 ? `×${formatNumber(value / reference, 2)}` : '');

/** What one subscription of each idle variant includes, one line each. */
export const IDLE_VARIANT_DESCRIPTIONS: Record<IdleSubscriptionsResult['variant'], string> = {
  followers: '`chatCompletionEvents` subscriptions following generations that were started and held before the first reading: the subscription alone, waiting for data',
  multiplexed: '`chatCompletion` (start and stream) subscriptions over shared WebSockets: each with its own generation and its own upstream request and socket, held mid-generation',
  'one-per-socket': 'the same start-and-stream subscriptions, one WebSocket each: adds a WebSocket per subscription',
};

/** An idle variant's resident memory per subscription and its scale, e.g. `4.1 kB (10,000 on 100 sockets, 100 generations)`. */
export function formatIdleFigure(entry: IdleSubscriptionsResult): string {
  const generations = entry.variant === 'followers' ? `, ${formatNumber(entry.generations, 0)} generations` : '';
  return `${formatNumber(entry.residentBytesPerSubscription / 1000, 1)} kB (${formatNumber(entry.subscriptions, 0)} on ${formatNumber(entry.sockets, 0)} sockets${generations})`;
}

/** A ramp result as text: `3,200`, or `≥ 6,400` when no level failed. */
export function formatRampLevel(ramp: RampPathResult): string {
  return `${ramp.atLeast ? '≥ ' : ''}${formatNumber(ramp.largestClean, 0)}`;
}

/** The rows of the headline table: one figure per row, one path per column. */
function summaryTable(result: BenchResult): string[] {
  const paths = ALL_PATHS.filter(
    (path) =>
      result.sequential?.some((entry) => entry.path === path) ||
      result.concurrent?.some((entry) => entry.path === path) ||
      result.tokenGaps?.some((entry) => entry.path === path),
  );
  if (paths.length === 0) return [];
  const find = <Entry extends { path: UpstreamPath }>(list: Entry[] | undefined, path: UpstreamPath) => list?.find((entry) => entry.path === path);
  const portkeyOn = paths.includes('portkey');
  /**
   * One row. `value(path)` is the figure; `added` rows are already "minus direct" (direct shows its
   * own baseline `baseline()` instead); otherwise gateway cells show the difference to direct.
   */
  const row = (figure: string, options: { value: (path: UpstreamPath) => number; digits: number; unit: string; added?: boolean; baseline?: () => string; noDirect?: boolean; format?: (path: UpstreamPath) => string | undefined }) => {
    const cells = paths.map((path) => {
      const custom = options.format?.(path);
      if (custom !== undefined) return custom;
      const value = options.value(path);
      if (path === 'direct') {
        if (options.added) return options.baseline?.() ?? '—';
        return options.noDirect || !Number.isFinite(value) ? '—' : `${formatNumber(value, options.digits)}${options.unit}`;
      }
      if (!Number.isFinite(value)) return '—';
      const shown = options.added ? signed(value, options.digits) : formatNumber(value, options.digits);
      const direct = options.value('direct');
      const difference = !options.added && !options.noDirect && Number.isFinite(direct) ? ` (${signed(value - direct, options.digits)})` : '';
      // An added time of Portkey's under the noise floor makes no meaningful denominator, and a
      // negative added time (the path beside a slower direct request) no meaningful numerator.
      const portkeyValue = options.value('portkey');
      const meaningful = !options.added || (portkeyValue >= ADDED_NOISE_FLOOR_MS && value >= 0);
      const versusPortkey = path !== 'portkey' && portkeyOn && meaningful ? ` ${ratio(value, portkeyValue)}` : '';
      return `${shown}${options.unit}${difference}${versusPortkey}`.trim();
    });
    return `| ${figure} | ${cells.join(' | ')} |`;
  };
  const lines: string[] = [];
  lines.push(`| figure | ${paths.map((path) => PATH_SHORT_LABELS[path]).join(' | ')} |`);
  lines.push(`|---|${paths.map(() => '---:').join('|')}|`);
  if (result.sequential) {
    const direct = find(result.sequential, 'direct');
    lines.push(row('added time to first token p50, concurrency 1', { value: (path) => find(result.sequential, path)?.addedFirstTokenP50 ?? Number.NaN, digits: 2, unit: ' ms', added: true, baseline: () => `TTFT ${milliseconds(direct?.firstTokenP50 ?? Number.NaN)} ms${directAddition('beside itself', direct?.addedFirstTokenP50)}${directAddition('through a byte relay', direct?.relayAddedFirstTokenP50)}` }));
    lines.push(row('added time to first token p99, concurrency 1', { value: (path) => find(result.sequential, path)?.addedFirstTokenP99 ?? Number.NaN, digits: 2, unit: ' ms', added: true, baseline: () => `TTFT ${milliseconds(direct?.firstTokenP99 ?? Number.NaN)} ms${directAddition('beside itself', direct?.addedFirstTokenP99)}${directAddition('through a byte relay', direct?.relayAddedFirstTokenP99)}` }));
  }
  if (result.tokenGaps) {
    const direct = find(result.tokenGaps, 'direct');
    lines.push(row(`added gap between tokens p50 (upstream: ${result.settings.gapMs} ms)`, { value: (path) => find(result.tokenGaps, path)?.addedGapP50 ?? Number.NaN, digits: 2, unit: ' ms', added: true, baseline: () => `gap ${milliseconds(direct?.gapP50 ?? Number.NaN)} ms` }));
    lines.push(row(`added gap between tokens p99 (upstream: ${result.settings.gapMs} ms)`, { value: (path) => find(result.tokenGaps, path)?.addedGapP99 ?? Number.NaN, digits: 2, unit: ' ms', added: true, baseline: () => `gap ${milliseconds(direct?.gapP99 ?? Number.NaN)} ms` }));
  }
  if (result.concurrent) {
    lines.push(row(`requests/s, concurrency ${result.settings.concurrency}`, { value: (path) => find(result.concurrent, path)?.requestsPerSecond ?? Number.NaN, digits: 0, unit: '' }));
    lines.push(row(`tokens/s, concurrency ${result.settings.concurrency}`, { value: (path) => find(result.concurrent, path)?.tokensPerSecond ?? Number.NaN, digits: 0, unit: '' }));
  }
  if (result.ramp) {
    lines.push(
      row('most concurrent streams with no lost or reordered token', {
        value: (path) => find(result.ramp, path)?.largestClean ?? Number.NaN,
        digits: 0,
        unit: '',
        format: (path) => {
          const ramp = find(result.ramp, path);
          if (!ramp) return '—';
          if (path === 'direct' || path === 'portkey') return formatRampLevel(ramp);
          // A lower bound ("≥") on either side bounds the comparison the same way; two lower bounds compare nothing.
          const compare = (other: RampPathResult | undefined, form: (mine: number, theirs: number) => string) => {
            if (!other || other.largestClean === 0 || (ramp.atLeast && other.atLeast)) return '';
            const bound = ramp.atLeast ? '≥ ' : other.atLeast ? '≤ ' : '';
            return `${bound}${form(ramp.largestClean, other.largestClean)}`;
          };
          const difference = compare(find(result.ramp, 'direct'), (mine, theirs) => signed(mine - theirs, 0));
          const versusPortkey = compare(find(result.ramp, 'portkey'), (mine, theirs) => `×${formatNumber(mine / theirs, 2)}`);
          return `${formatRampLevel(ramp)}${difference ? ` (${difference})` : ''}${versusPortkey ? ` ${versusPortkey}` : ''}`;
        },
      }),
    );
  }
  if (result.idleSubscriptions && result.idleSubscriptions.length > 0) {
    lines.push(
      row('resident memory per open idle subscription (graphql-ws)', {
        value: () => Number.NaN,
        digits: 0,
        unit: '',
        format: (path) => {
          if (path !== 'graphql-ws') return path === 'direct' || path === 'portkey' ? 'n/a' : '—';
          return result.idleSubscriptions!.map((entry) => `${entry.variant}: ${formatIdleFigure(entry)}`).join('; ');
        },
      }),
    );
  }
  if (result.tokenGaps) {
    lines.push(row('middle process CPU per streamed token, paced tokens', { value: (path) => (path === 'direct' ? Number.NaN : (find(result.tokenGaps, path)?.middleCpuMicrosecondsPerToken ?? Number.NaN)), digits: 1, unit: ' µs', noDirect: true }));
  }
  if (result.concurrent) {
    lines.push(row(`middle process CPU per streamed token, concurrency ${result.settings.concurrency}`, { value: (path) => (path === 'direct' ? Number.NaN : (find(result.concurrent, path)?.middleCpuMicrosecondsPerToken ?? Number.NaN)), digits: 1, unit: ' µs', noDirect: true }));
  }
  return lines;
}

/** Renders a result as Markdown (the content of `bench/results/latest.md`). */
export function formatMarkdown(result: BenchResult): string {
  const lines: string[] = [];
  const environment = result.environment;
  lines.push(`# Gateway benchmark${result.mode === 'full' ? '' : ` (${result.mode} mode)`}`);
  lines.push('');
  lines.push(`- Date: ${result.date}`);
  lines.push(`- Machine: Node ${environment.node} on ${environment.platform}; CPU: ${environment.cpuModel}, ${environment.cores} cores (available parallelism ${environment.availableParallelism}); ${environment.totalMemoryGiB.toFixed(1)} GiB RAM`);
  lines.push(`- Settings: ${Object.entries(result.settings).map(([key, value]) => `${key}=${value}`).join(', ')}`);
  lines.push(
    `- Run time: ${result.durationSeconds.toFixed(1)} s. Processes: benchmark client, gateway (\`bench/gateway-process.ts\`${result.settings.idleFreshGateway === true ? ', a fresh one for each idle-subscription variant' : ''}), fake upstream (\`bench/fake-upstream-process.ts\`)${result.portkey.measured ? ', Portkey (`bench/portkey-process.ts`)' : ''}${result.llama ? ', raw llama.cpp (`bench/llama-raw-process.ts`)' : ''}.`,
  );
  const portkey = result.portkey;
  lines.push(
    portkey.measured
      ? `- Portkey: \`@portkey-ai/gateway\` ${portkey.version} on \`@hono/node-server\` ${portkey.nodeServerVersion}${portkey.installedInMs !== undefined ? ` (installed by this run in ${formatNumber(portkey.installedInMs / 1000, 1)} s)` : ''}; streaming check: ${portkey.streamingCheck ?? '—'}.`
      : `- Portkey: not measured: ${portkey.reason ?? 'unknown reason'}.`,
  );
  if (result.machineLoad && Number.isFinite(result.machineLoad.otherProcessesCpuSeconds)) {
    const load = result.machineLoad;
    lines.push(
      `- Machine noise during the run: other processes used ${formatNumber(load.otherProcessesCpuSeconds, 1)} CPU-seconds (${formatNumber(load.otherProcessesShareOfCapacity * 100, 1)} % of the machine's capacity), hypervisor steal ${formatNumber(load.stealCpuSeconds, 1)} CPU-seconds (${formatNumber(load.stealShareOfCapacity * 100, 1)} %); the benchmark's processes used ${formatNumber(load.benchmarkCpuSeconds, 1)} CPU-seconds.`,
    );
  }
  if (result.mode === 'smoke') lines.push('- Smoke mode: every path runs briefly; figures are not meaningful and no thresholds apply.');
  if (result.mode === 'profile') lines.push('- Profile mode: the V8 profiler runs in the gateway during the gateway paths\' windows, which slows it; figures are not comparable with a normal run.');
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

  const summary = summaryTable(result);
  if (summary.length > 0) {
    lines.push('## Summary');
    lines.push('');
    lines.push(
      'Direct is the baseline. Rows "added …" give each path minus direct (direct shows its own value; "beside itself", one direct request minus another: the noise floor at concurrency 1; "through a byte relay", a direct request through a process that only relays bytes minus one beside it: the floor of any middle process). Other rows give the value, then in brackets the difference to direct. `×` is the ratio to Portkey\'s figure (below 1 is better for times, memory and CPU; above 1 is better for rates and streams), left out where Portkey\'s added time is under 0.5 ms (noise) or the path\'s is negative. `≥`: the ramp stopped without a failed level. "Middle process": this gateway, or Portkey.',
    );
    lines.push('');
    lines.push(...summary);
    lines.push('');
  }

  if (result.sequential) {
    const requests = result.sequential.find((path) => path.path !== 'direct' && path.path !== 'portkey')?.requests ?? 0;
    const portkeyRequests = result.sequential.find((path) => path.path === 'portkey')?.requests;
    const portkeyNote = portkeyRequests !== undefined && portkeyRequests !== requests ? ` (Portkey ${portkeyRequests})` : '';
    lines.push(`## Upstream path, concurrency 1 (${requests} requests per path${portkeyNote}, each alternated with direct)`);
    lines.push('');
    lines.push(`Fake upstream: ${result.settings.upstreamTokens} tokens, no delay. Times in ms, measured by the client from the request to the first text / to the end of the stream. Each path runs a block of iterations alternating it with a direct request (the order switching every iteration); "added TTFT" is paired per iteration (path minus the direct request beside it); the direct row gathers the direct requests of all blocks, and its "added TTFT" comes from a last block pairing direct with direct (one minus the other): what a path that adds nothing shows on this machine at that moment, the noise floor of the other rows' added figures${result.sequential?.some((entry) => entry.relayAddedFirstTokenP99 !== undefined) ? '; "through a byte relay" comes from one more block, a direct request through a process that only relays bytes (`bench/tcp-relay-process.ts`) beside a direct one: what the two extra process hops of any gateway add here, without its work' : ''}. Measured after a warm-up at full concurrency and ${result.settings.warmupIterations} untimed iterations per block; between iterations, untimed, the client and the fake upstream collect their young generations (their own pauses stay out of measured requests; the gateway and Portkey are left alone)${result.settings.clientCollectsGarbage ? '' : ' — not the client in this run: it ran without --expose-gc'}.`);
    lines.push('');
    lines.push('| path | TTFT p50 | TTFT p99 | total p50 | total p99 | added TTFT p50 | added TTFT p99 | text messages per stream | errors / wrong text |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const path of result.sequential) {
      lines.push(
        `| ${PATH_LABELS[path.path]} | ${milliseconds(path.firstTokenP50)} | ${milliseconds(path.firstTokenP99)} | ${milliseconds(path.totalP50)} | ${milliseconds(path.totalP99)} | ${milliseconds(path.addedFirstTokenP50)} | ${milliseconds(path.addedFirstTokenP99)} | ${formatNumber(path.messagesPerStreamP50, 0)} | ${failuresCell(path.failures)} |`,
      );
    }
    if (result.sequentialGatewayCpuMsPerRequest !== undefined && Number.isFinite(result.sequentialGatewayCpuMsPerRequest)) {
      lines.push('');
      lines.push(`Gateway CPU time (user + system, from /proc) per gateway request in this phase: ${formatNumber(result.sequentialGatewayCpuMsPerRequest, 2)} ms.`);
    }
    const pauses = result.sequentialGatewayPauses;
    if (pauses && pauses.gatewayRequests > 0) {
      lines.push('');
      lines.push(
        `Gateway garbage-collection pauses in this phase (${pauses.gatewayRequests} gateway requests): ${pauses.young.count} young-generation collections` +
          (pauses.young.count > 0
            ? ` (one per ${formatNumber(pauses.gatewayRequests / pauses.young.count, 0)} requests; p50 ${milliseconds(pauses.young.p50Ms)} ms, max ${milliseconds(pauses.young.maxMs)} ms), `
            : ', ') +
          `${pauses.full.count} full${pauses.full.count > 0 ? ` (max ${milliseconds(pauses.full.maxMs)} ms)` : ''}. A request that meets one is that much later; with the delays of the hops between processes on this machine (most of the tail: docs/performance.md), this makes the added time to first token p99.`,
      );
    }
    lines.push('');
  }

  if (result.nonStreaming) {
    lines.push(formatNonStreaming(result.nonStreaming));
    lines.push('');
  }

  if (result.tokenGaps) {
    lines.push(`## Gaps between tokens (upstream: ${result.settings.gapTokens} tokens, one every ${result.settings.gapMs} ms)`);
    lines.push('');
    lines.push(
      `Each window runs ${result.settings.gapStreams} streams of one path and ${result.settings.gapDirectStreams} direct streams at once; ${result.settings.gapRounds} windows per path. A gap is the time between two text-carrying messages at the client. "Added" is the path's gap quantile minus the quantile of the direct streams beside it. CPU per token: the middle process's CPU time (from /proc) during the path's windows over its verified tokens.`,
    );
    lines.push('');
    lines.push('| path | streams | gaps | gap p50 ms | gap p99 ms | added p50 ms | added p99 ms | text messages per stream | middle CPU µs per token | errors / wrong text |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const path of result.tokenGaps) {
      lines.push(
        `| ${PATH_LABELS[path.path]} | ${path.streams} | ${path.gaps} | ${milliseconds(path.gapP50)} | ${milliseconds(path.gapP99)} | ${path.path === 'direct' ? '—' : milliseconds(path.addedGapP50)} | ${path.path === 'direct' ? '—' : milliseconds(path.addedGapP99)} | ${formatNumber(path.messagesPerStreamP50, 0)} | ${path.path === 'direct' ? '—' : formatNumber(path.middleCpuMicrosecondsPerToken, 1)} | ${failuresCell(path.failures)} |`,
      );
    }
    lines.push('');
  }

  if (result.concurrent) {
    lines.push(`## Upstream path, concurrency ${result.settings.concurrency}`);
    lines.push('');
    lines.push(
      `${result.settings.rounds} rounds × ${result.settings.windowMs} ms per path, paths interleaved within each round. Tokens/s counts verified tokens only. CPU ms per request: CPU time (user + system, all threads, from /proc) each process used during the path's windows, divided by its verified requests; "middle" is this gateway or Portkey.`,
    );
    lines.push('');
    lines.push('| path | requests | requests/s | tokens/s | ratio to direct | ratio per round | TTFT p50 ms | total p50 ms | total p99 ms | text messages per stream | CPU ms per request: middle / upstream / client | middle CPU µs per token | errors / wrong text |');
    lines.push('|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|');
    for (const path of result.concurrent) {
      lines.push(
        `| ${PATH_LABELS[path.path]} | ${path.requests} | ${formatNumber(path.requestsPerSecond, 0)} | ${formatNumber(path.tokensPerSecond, 0)} | ${formatNumber(path.ratioToDirect, 2)} | ${path.roundRatios.map((value) => formatNumber(value, 2)).join(', ')} | ${milliseconds(path.firstTokenP50)} | ${milliseconds(path.totalP50)} | ${milliseconds(path.totalP99)} | ${formatNumber(path.messagesPerStreamP50, 0)} | ${formatNumber(path.middleCpuMsPerRequest, 2)} / ${formatNumber(path.upstreamCpuMsPerRequest, 2)} / ${formatNumber(path.clientCpuMsPerRequest, 2)} | ${path.path === 'direct' ? '—' : formatNumber(path.middleCpuMicrosecondsPerToken, 1)} | ${failuresCell(path.failures)} |`,
      );
    }
    if (result.gatewayResidentMiB !== undefined && Number.isFinite(result.gatewayResidentMiB)) {
      lines.push('');
      lines.push(`Gateway resident memory after this phase: ${formatNumber(result.gatewayResidentMiB, 0)} MiB (finished generations are kept for GENERATION_RETENTION_MS, default 1 h, at most GENERATION_RETENTION_MAX).`);
    }
    lines.push('');
  }

  if (result.ramp) {
    lines.push('## Most concurrent streams with no lost or reordered token');
    lines.push('');
    lines.push(
      `Levels double from ${result.settings.rampStart}. At each level every stream is opened and held by the upstream after its first chunk until all are open, then all get ${result.settings.rampTokens} tokens, one every ${result.settings.gapMs} ms, at once. A level fails on an error, a lost, duplicated or reordered token, streams not all open within ${formatNumber(Number(result.settings.rampOpenTimeoutMs) / 1000, 0)} s, or not all finished within ${formatNumber(Number(result.settings.rampFlowTimeoutMs) / 1000, 0)} s after the release. Each path stops at its first failed level, after ${formatNumber(Number(result.settings.rampPathBudgetMs) / 1000, 0)} s, or where the next level would pass the open-files limit (\`≥\`: no level failed). graphql-ws shares ${result.settings.concurrency} WebSockets. The client is one Node process on the same 2 cores, so direct's figure is also the client's limit.`,
    );
    lines.push('');
    lines.push('| path | largest clean level | levels (concurrency: seconds) | stopped because |');
    lines.push('|---|---:|---|---|');
    for (const ramp of result.ramp) {
      const levels = ramp.levels.map((level) => `${level.concurrency}: ${formatNumber(level.seconds, 1)} s${level.clean ? '' : ' ✗'}`).join(', ');
      lines.push(`| ${PATH_LABELS[ramp.path]} | ${formatRampLevel(ramp)} | ${levels} | ${ramp.stoppedBecause.replaceAll('|', '/')} |`);
    }
    lines.push('');
  }

  if (result.idleSubscriptions && result.idleSubscriptions.length > 0) {
    lines.push('## Open idle subscriptions');
    lines.push('');
    lines.push(
      `${result.settings.idleFreshGateway === true ? 'Each variant runs on a fresh gateway process (started with `--expose-gc`), warmed up first.' : 'Smoke mode: on the gateway of the other phases, not warmed up.'} The fake upstream holds every generation's upstream stream after its first chunk, so the generations run but are idle. Resident memory (\`VmRSS\` from /proc, after two full garbage collections) is read before the WebSockets are opened (followers: once the upstream holds every generation, so the generations are in both readings) and once every subscription is open (its first event, \`ChatCompletionStarted\`, received); the difference, sockets included, is divided by the subscriptions. Then the upstream releases all streams (${result.idleSubscriptions[0]?.tokensPerStream} tokens each, no delay) and every subscription's text is checked. One per socket: as many as the open-files limit (${formatNumber(Number(result.settings.openFilesLimit), 0)} per process) allows, since the gateway holds a WebSocket and an upstream socket per subscription; the client process copes with that many.`,
    );
    lines.push('');
    for (const entry of result.idleSubscriptions) lines.push(`- ${entry.variant}: ${IDLE_VARIANT_DESCRIPTIONS[entry.variant]}.`);
    lines.push('');
    lines.push('| variant | subscriptions | WebSockets | generations | upstream streams held | resident before → open (MiB) | resident per subscription | heap per subscription | open in | flow in | complete and exact | errors / wrong text |');
    lines.push('|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|');
    for (const entry of result.idleSubscriptions) {
      lines.push(
        `| ${entry.variant} | ${formatNumber(entry.subscriptions, 0)} | ${formatNumber(entry.sockets, 0)} | ${formatNumber(entry.generations, 0)} | ${formatNumber(entry.upstreamHeld, 0)} | ${formatNumber(entry.residentBeforeBytes / 2 ** 20, 0)} → ${formatNumber(entry.residentOpenBytes / 2 ** 20, 0)} | ${formatNumber(entry.residentBytesPerSubscription / 1000, 1)} kB | ${formatNumber(entry.heapBytesPerSubscription / 1000, 1)} kB | ${formatNumber(entry.openSeconds, 1)} s | ${formatNumber(entry.flowSeconds, 1)} s | ${formatNumber(entry.completeAndExact, 0)} | ${failuresCell(entry.failures)} |`,
      );
    }
    if (result.idleSubscriptions.some((entry) => !entry.garbageCollected)) {
      lines.push('');
      lines.push('The gateway did not expose `gc()`: the readings include uncollected garbage.');
    }
    lines.push('');
  }

  if (result.redis) {
    lines.push(formatRedisPhases(result.redis));
    lines.push('');
  }

  if (result.retention) {
    lines.push(formatRetentionCost(result.retention));
    lines.push('');
  }

  if (result.tracing) {
    lines.push(formatTracingOverhead(result.tracing));
    lines.push('');
  }

  if (result.llama) {
    const llama = result.llama;
    lines.push('## llama-cpp path');
    lines.push('');
    lines.push(
      `Model ${result.settings.llamaModel}, prompt "${result.settings.llamaPrompt}", maxTokens ${result.settings.llamaMaxTokens}, temperature 0, LLAMA_THREADS=${result.settings.llamaThreads}, LLAMA_SEQUENCES=${result.settings.llamaSequences}; raw and gateway runs alternate, one at a time, each in its own process. Raw time: \`LlamaCompletion\` creation to cleared sequence; gateway time: client subscribe to \`ChatCompletionCompleted\` over graphql-ws.`,
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
      `Gateway / raw: **${formatNumber(llama.ratioMedian * 100, 1)} %** (median of pairs; aggregate ${formatNumber(llama.ratioAggregate * 100, 1)} %; pairs: ${llama.pairRatios.map((value) => formatNumber(value * 100, 0)).join(', ')} %). Gateway text identical to raw text in ${llama.raw.runs - llama.textMismatches} of ${llama.raw.runs} pairs.`,
    );
    lines.push('');
  }

  if (result.llamaBatch) {
    const batch = result.llamaBatch;
    lines.push(`## llama-cpp, ${batch.generations} generations on one model`);
    lines.push('');
    lines.push(
      `${batch.rounds} rounds; each runs ${batch.generations} identical generations one at a time, then ${batch.generations} at once (LLAMA_SEQUENCES=${batch.sequences}: one context, ${batch.sequences} sequences, decoded in one batch). Aggregate tokens/s = all tokens of a round's generations over the round's wall time. One at a time, every text must equal the first one (temperature 0); at once, batched decoding may change the numbers and so the text: counted, not a failure.`,
    );
    lines.push('');
    lines.push('| side | one at a time, tokens/s | all at once, tokens/s | all at once / one at a time | texts at once differing | errors / wrong text |');
    lines.push('|---|---:|---:|---:|---:|---:|');
    const row = (name: string, side: LlamaBatchSide) =>
      `| ${name} | ${formatNumber(side.oneAtATimeTokensPerSecond, 0)} | ${formatNumber(side.concurrentTokensPerSecond, 0)} | **${formatNumber(side.speedup, 2)}×** | ${side.concurrentTextsDifferent} of ${batch.generations * batch.rounds} | ${failuresCell(side.failures)} |`;
    lines.push(row('gateway, graphql-ws subscriptions', batch.gateway));
    if (batch.raw) lines.push(row('raw node-llama-cpp', batch.raw));
    lines.push('');
  }

  if (result.usageWrites) {
    lines.push(formatUsageWrites(result.usageWrites));
    lines.push('');
  }

  const examples = [
    ...(result.sequential ?? []).flatMap((path) => path.failures.examples.map((example) => `${path.path} (c=1): ${example}`)),
    ...(result.tokenGaps ?? []).flatMap((path) => path.failures.examples.map((example) => `${path.path} (gaps): ${example}`)),
    ...(result.concurrent ?? []).flatMap((path) => path.failures.examples.map((example) => `${path.path} (c=${result.settings.concurrency}): ${example}`)),
    ...(result.nonStreaming?.paths ?? []).flatMap((path) => path.failures.examples.map((example) => `${path.path} (non-streaming): ${example}`)),
    ...(result.idleSubscriptions ?? []).flatMap((entry) => entry.failures.examples.map((example) => `idle subscriptions, ${entry.variant}: ${example}`)),
    ...(result.llama ? [...result.llama.raw.failures.examples.map((example) => `llama raw: ${example}`), ...result.llama.gateway.failures.examples.map((example) => `llama gateway: ${example}`)] : []),
    ...(result.llamaBatch
      ? [
          ...result.llamaBatch.gateway.failures.examples.map((example) => `llama batch, gateway: ${example}`),
          ...(result.llamaBatch.raw?.failures.examples ?? []).map((example) => `llama batch, raw: ${example}`),
        ]
      : []),
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
