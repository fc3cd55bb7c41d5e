/**
 * Non-streaming chat completions at concurrency 1: a request without `stream: true`, answered with
 * one `chat.completion` JSON body, straight from the fake upstream (the baseline), through Portkey
 * and through this gateway's REST API. Each iteration runs a direct request beside one through the
 * middle process (the order switching every iteration); the figure is the middle one's whole
 * response time minus its direct neighbour's.
 *
 * Why it is here: Portkey 1.15.2 waits a fixed 25 ms before it forwards the first event of a
 * stream (`readStream` in its `src/handlers/streamHandler.ts`) and has no such wait on a
 * non-streaming answer, so its streaming figure alone would hide what its request handling costs
 * (`docs/performance.md`, "The reference peer").
 */
import { FailureTally } from './failure-tally.js';
import { portkeyHeaders } from './portkey-process.js';
import type { FailureCounts } from './report.js';
import { formatNumber, quantile } from './statistics.js';
import { BENCH_PROVIDER, type PathTargets } from './upstream-paths.js';

/** The middle processes measured. */
export type NonStreamingPath = 'portkey' | 'rest';

/** One middle process's figures. */
export interface NonStreamingPathResult {
  path: NonStreamingPath;
  requests: number;
  /** The middle process's whole response time p50, ms. */
  totalP50: number;
  /** Its response time minus the direct request's beside it, p50 and p99, ms. */
  addedP50: number;
  addedP99: number;
  failures: FailureCounts;
}

/** The phase's result. */
export interface NonStreamingResult {
  iterations: number;
  /** Direct's whole response time p50, ms (all its requests). */
  directTotalP50: number;
  paths: NonStreamingPathResult[];
}

/** One request's outcome: its whole time, ms, the answer's text (`choices[0].message.content`), or its error. */
interface Completion {
  totalMs: number;
  text: string;
  error?: string;
}

/**
 * Sends one chat completion without streaming to `POST {baseURL}/chat/completions` and reads the
 * whole answer. Never rejects.
 */
async function complete(baseURL: string, body: Record<string, unknown>, headers: Record<string, string>, timeoutMs: number): Promise<Completion> {
  const startedAt = performance.now();
  try {
    const response = await fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify({ ...body, stream: false }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    const totalMs = performance.now() - startedAt;
    if (!response.ok) return { totalMs, text: '', error: `HTTP ${response.status}: ${text.slice(0, 200)}` };
    const content = (JSON.parse(text) as { choices?: Array<{ message?: { content?: string | null } }> }).choices?.[0]?.message?.content;
    return { totalMs, text: content ?? '' };
  } catch (error) {
    return { totalMs: performance.now() - startedAt, text: '', error: (error as Error).message };
  }
}

/**
 * Runs `iterations` pairs (direct beside the path) for each path that runs (Portkey only when
 * `targets.portkeyBaseURL` is set), after `warmupIterations` unmeasured pairs.
 * @param model the fake upstream's model name (its reply's text is `expectedText`).
 * @param betweenIterations run untimed between iterations (the stand-ins collect their garbage).
 */
export async function measureNonStreaming(options: {
  targets: PathTargets;
  model: string;
  expectedText: string;
  iterations: number;
  warmupIterations: number;
  timeoutMs: number;
  betweenIterations?: () => Promise<void>;
}): Promise<NonStreamingResult> {
  const { targets, model, expectedText, timeoutMs } = options;
  const messages = [{ role: 'user', content: 'Tell me a story.' }];
  const direct = () => complete(targets.upstreamBaseURL, { model, messages }, {}, timeoutMs);
  const through: Partial<Record<NonStreamingPath, () => Promise<Completion>>> = {
    ...(targets.portkeyBaseURL && {
      portkey: () => complete(targets.portkeyBaseURL!, { model, messages }, portkeyHeaders(targets.upstreamBaseURL), timeoutMs),
    }),
    rest: () => complete(`${targets.gatewayURL}/v1`, { model, provider: BENCH_PROVIDER, messages }, {}, timeoutMs),
  };
  const directTotals: number[] = [];
  const paths: NonStreamingPathResult[] = [];
  for (const [path, viaPath] of Object.entries(through) as Array<[NonStreamingPath, () => Promise<Completion>]>) {
    const added: number[] = [];
    const totals: number[] = [];
    const tally = new FailureTally();
    for (let iteration = -options.warmupIterations; iteration < options.iterations; iteration++) {
      await options.betweenIterations?.();
      const pathFirst = iteration % 2 === 0;
      const first = await (pathFirst ? viaPath() : direct());
      const second = await (pathFirst ? direct() : viaPath());
      const [viaResult, directResult] = pathFirst ? [first, second] : [second, first];
      if (iteration < 0) continue;
      if (!tally.check(viaResult, expectedText)) continue;
      if (directResult.error !== undefined || directResult.text !== expectedText) continue;
      totals.push(viaResult.totalMs);
      directTotals.push(directResult.totalMs);
      added.push(viaResult.totalMs - directResult.totalMs);
    }
    paths.push({ path, requests: totals.length, totalP50: quantile(totals, 0.5), addedP50: quantile(added, 0.5), addedP99: quantile(added, 0.99), failures: tally.counts });
  }
  return { iterations: options.iterations, directTotalP50: quantile(directTotals, 0.5), paths };
}

/** The phase as a Markdown section. */
export function formatNonStreaming(result: NonStreamingResult): string {
  const label: Record<NonStreamingPath, string> = { portkey: 'Portkey', rest: 'gateway, REST API' };
  const lines = [
    '## Non-streaming chat completions, concurrency 1',
    '',
    `A request without \`stream: true\` (one \`chat.completion\` body), ${result.iterations} per path, each beside a direct one (the order switching every iteration); times in ms to the whole answer. Direct: ${formatNumber(result.directTotalP50, 2)} ms p50. Beside the streaming figures this shows what a middle process costs without any stream handling (Portkey waits 25 ms before the first event of every stream: docs/performance.md).`,
    '',
    '| path | requests | total p50 | added p50 | added p99 | errors / wrong text |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const path of result.paths) {
    lines.push(
      `| ${label[path.path]} | ${path.requests} | ${formatNumber(path.totalP50, 2)} | ${formatNumber(path.addedP50, 2)} | ${formatNumber(path.addedP99, 2)} | ${path.failures.errors} / ${path.failures.wrongText} |`,
    );
  }
  return lines.join('\n');
}
