/**
 * `npm run bench -- --soak [--soak-minutes N]` (default 10): a steady mixed load on one gateway for
 * N minutes, reading its resident memory, heap and event-loop delay (p99 and max) every minute,
 * as the gateway runs in production (no forced collections). The evidence asked for is that memory
 * does not grow over time once the retention of finished generations is saturated: RSS in the
 * last minute at most 10 % above minute 2's (lower is no leak: a collection came late there).
 *
 * The load, from `workers` loops each picking its next request by a fixed pseudo-random sequence:
 * chats over graphql-ws (40 %), GraphQL over SSE (20 %) and REST (20 %); REST chats the client
 * leaves mid-stream (8 %); chats started with `startChatCompletion` and cancelled with
 * `cancelGeneration` mid-stream (7 %); image generations through a fake Hugging Face space
 * (5 %; `test/helpers/fake-gradio-space.ts`, in this process). Chats ask the fake upstream for 32
 * tokens 5 ms apart. Every completed chat's text is checked; a failure that is not the expected
 * outcome of a cancel or disconnect counts as an error.
 */
import type { Client } from 'graphql-ws';
import { startFakeGradioSpace } from '../test/helpers/fake-gradio-space.js';
import { residentBytes, type ManagedProcess } from './child-processes.js';
import { benchTokens, BENCH_MODEL } from './fake-upstream.js';
import { formatNumber } from './statistics.js';
import { connectWebSocketClient, startChatCompletion, streamChatCompletions, streamServerSentEvents, streamWebSocket } from './stream-clients.js';
import { BENCH_PROVIDER } from './upstream-paths.js';

/** Tokens and pace of the soak's chats. */
const SOAK_TOKENS = 32;
export const SOAK_MODEL = `${BENCH_MODEL}?tokens=${SOAK_TOKENS}&gapMs=5`;

/** One minute's readings. */
export interface SoakMinute {
  minute: number;
  /** Resident memory, mean of the readings every 5 s during the minute (`/proc`; collections come and go within it). */
  rssMiB: number;
  /** Resident memory at the end of the minute. */
  rssEndMiB: number;
  heapUsedMiB: number;
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  /** Requests finished in the minute, by outcome. */
  completed: number;
  cancelled: number;
  errors: number;
}

/** The soak's result. */
export interface SoakResult {
  minutes: SoakMinute[];
  /** RSS at the end as a ratio to minute 2's. */
  endToMinuteTwo: number;
  errorExamples: string[];
}

/** What the soak needs: the gateway under load, and a way to start the image space's gateway settings. */
export interface SoakOptions {
  minutes: number;
  workers: number;
  gateway: { url: string; handle: ManagedProcess };
  log(message: string): void;
}

/** A fixed pseudo-random sequence (mulberry32), so every run asks for the same mix. */
function pseudoRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Starts the fake space the soak's images come from; the gateway must be started with these settings. */
export async function startSoakSpace(): Promise<{ settings: Record<string, string>; close(): Promise<void> }> {
  const space = await startFakeGradioSpace();
  return {
    settings: { HF_SPACES_ENABLED: 'true', HF_FLUX_SCHNELL_URL: space.baseURL, ALLOW_PRIVATE_NETWORK_DOWNLOADS: 'true' },
    close: () => space.close(),
  };
}

/** Runs the soak (see the module comment). */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const { gateway } = options;
  const graphqlURL = `${gateway.url}/graphql`;
  const expected = benchTokens(SOAK_TOKENS).join('');
  const input = { provider: BENCH_PROVIDER, model: SOAK_MODEL, messages: [{ role: 'USER' as const, content: 'Tell me a story.' }] };
  const clients: Client[] = await Promise.all(Array.from({ length: Math.max(1, Math.ceil(options.workers / 10)) }, () => connectWebSocketClient(`${gateway.url.replace(/^http/, 'ws')}/graphql`, 10_000)));
  const counts = { completed: 0, cancelled: 0, errors: 0 };
  const errorExamples = new Set<string>();
  const fail = (message: string) => {
    counts.errors++;
    if (errorExamples.size < 5) errorExamples.add(message);
  };
  const endsAt = performance.now() + options.minutes * 60_000;

  const oneRequest = async (random: () => number, worker: number): Promise<void> => {
    const pick = random();
    const timeoutMs = 30_000;
    if (pick < 0.8) {
      const result =
        pick < 0.4
          ? await streamWebSocket(clients[worker % clients.length]!, input, { timeoutMs })
          : pick < 0.6
            ? await streamServerSentEvents(graphqlURL, input, { timeoutMs })
            : await streamChatCompletions(`${gateway.url}/v1`, { model: SOAK_MODEL, provider: BENCH_PROVIDER, messages: [{ role: 'user', content: 'Tell me a story.' }] }, {}, { timeoutMs });
      if (result.error !== undefined) fail(result.error);
      else if (result.text !== expected) fail('wrong text');
      else counts.completed++;
    } else if (pick < 0.88) {
      // The client leaves mid-stream.
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 40).unref();
      await streamChatCompletions(`${gateway.url}/v1`, { model: SOAK_MODEL, provider: BENCH_PROVIDER, messages: [{ role: 'user', content: 'Bye.' }] }, {}, { timeoutMs, signal: controller.signal });
      counts.cancelled++;
    } else if (pick < 0.95) {
      const id = await startChatCompletion(graphqlURL, input, timeoutMs);
      await new Promise((resolve) => setTimeout(resolve, 30));
      const response = await fetch(graphqlURL, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'mutation Cancel($id: ID!) { cancelGeneration(id: $id) { id status } }', variables: { id } }),
      });
      const body = (await response.json()) as { data?: { cancelGeneration?: { status: string } }; errors?: Array<{ message: string }> };
      if (body.errors) fail(`cancelGeneration: ${body.errors[0]?.message}`);
      else counts.cancelled++;
    } else {
      const response = await fetch(`${gateway.url}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'flux-1-schnell', prompt: 'a red fox', size: '64x48', response_format: 'b64_json' }),
      });
      const body = (await response.json()) as { data?: Array<{ b64_json?: string }> };
      if (response.status !== 200 || !body.data?.[0]?.b64_json) fail(`image: HTTP ${response.status}`);
      else counts.completed++;
    }
  };

  const workers = Array.from({ length: options.workers }, async (_, worker) => {
    const random = pseudoRandom(worker + 1);
    while (performance.now() < endsAt) {
      try {
        await oneRequest(random, worker);
      } catch (error) {
        fail((error as Error).message);
      }
    }
  });

  const minutes: SoakMinute[] = [];
  let rssReadings: number[] = [];
  const rssTimer = setInterval(() => rssReadings.push(residentBytes(gateway.handle.child.pid)), 5_000);
  for (let minute = 1; minute <= options.minutes; minute++) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, endsAt - (options.minutes - minute) * 60_000 - performance.now())));
    const meanRss = rssReadings.length > 0 ? rssReadings.reduce((sum, value) => sum + value, 0) / rssReadings.length : Number.NaN;
    rssReadings = [];
    gateway.handle.send({ command: 'stats' });
    const stats = await gateway.handle.nextMessage<{ rssBytes: number; heapUsedBytes: number; eventLoopDelayP99Ms: number; eventLoopDelayMaxMs: number }>(10_000);
    minutes.push({
      minute,
      rssMiB: meanRss / 2 ** 20,
      rssEndMiB: stats.rssBytes / 2 ** 20,
      heapUsedMiB: stats.heapUsedBytes / 2 ** 20,
      eventLoopDelayP99Ms: stats.eventLoopDelayP99Ms,
      eventLoopDelayMaxMs: stats.eventLoopDelayMaxMs,
      ...counts,
    });
    options.log(`soak minute ${minute}: RSS ${formatNumber(meanRss / 2 ** 20, 0)} MiB (mean), ${formatNumber(stats.rssBytes / 2 ** 20, 0)} MiB (end), heap ${formatNumber(stats.heapUsedBytes / 2 ** 20, 0)} MiB, event-loop delay p99 ${formatNumber(stats.eventLoopDelayP99Ms, 1)} ms; ${counts.completed} completed, ${counts.cancelled} cancelled or left, ${counts.errors} errors`);
    counts.completed = counts.cancelled = counts.errors = 0;
  }
  clearInterval(rssTimer);
  await Promise.all(workers);
  await Promise.all(clients.map((client) => client.dispose()));
  const second = minutes[Math.min(1, minutes.length - 1)]!;
  return { minutes, endToMinuteTwo: minutes.at(-1)!.rssMiB / second.rssMiB, errorExamples: [...errorExamples] };
}

/** The soak as a Markdown report. */
export function formatSoak(result: SoakResult, workers: number): string {
  const lines = [
    '# Soak run',
    '',
    `${workers} concurrent clients, mixed load (graphql-ws, SSE and REST chats, clients leaving mid-stream, cancels, images through a fake space), ${result.minutes.length} minutes. RSS in the last minute ${formatNumber(result.endToMinuteTwo * 100, 1)} % of minute 2's (means of readings every 5 s; target: at most 10 % above it).`,
    '',
    '| minute | RSS (mean) | RSS (end) | heap used (end) | event-loop delay p99 | max | completed | cancelled or left | errors |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...result.minutes.map(
      (minute) =>
        `| ${minute.minute} | ${formatNumber(minute.rssMiB, 0)} MiB | ${formatNumber(minute.rssEndMiB, 0)} MiB | ${formatNumber(minute.heapUsedMiB, 0)} MiB | ${formatNumber(minute.eventLoopDelayP99Ms, 1)} ms | ${formatNumber(minute.eventLoopDelayMaxMs, 1)} ms | ${minute.completed} | ${minute.cancelled} | ${minute.errors} |`,
    ),
  ];
  if (result.errorExamples.length > 0) lines.push('', `Errors, for example: ${result.errorExamples.join('; ')}`);
  return lines.join('\n');
}
