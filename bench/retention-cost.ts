/**
 * The retention phase: what a finished generation costs the gateway while it is kept for replay
 * (`GENERATION_RETENTION_MS`, up to `GENERATION_RETENTION_MAX`). On a fresh gateway (the main one
 * already keeps thousands) and an upstream that sends a token every 20 ms, longer than the
 * gateway's coalescing window, so that every token is a delta event of its own (a real model's
 * pace; the worst case for the event log): a warm-up at the phase's
 * concurrency, two full collections, the used heap and resident memory; then `generations` REST
 * chats run to completion, two full collections, the same readings again. The difference over the
 * number of generations is what one retained generation holds, its text included.
 */
import type { ManagedProcess } from './child-processes.js';
import { residentBytes } from './child-processes.js';
import { collectGarbage } from './idle-subscriptions.js';
import { formatNumber } from './statistics.js';
import { streamChatCompletions } from './stream-clients.js';
import { BENCH_PROVIDER } from './upstream-paths.js';

/** What the phase needs. */
export interface RetentionCostOptions {
  /** The fresh gateway (started with `--expose-gc`) and its URL. */
  gateway: { url: string; handle: ManagedProcess };
  /** The model naming a paced stream, e.g. `bench?tokens=64&gapMs=2`. */
  model: string;
  /** The text every stream must end with. */
  expectedText: string;
  generations: number;
  warmupGenerations: number;
  concurrency: number;
  timeoutMs: number;
}

/** The phase's result. */
export interface RetentionCostResult {
  generations: number;
  /** Characters of each generation's text. */
  textCharacters: number;
  /** Delta events per generation the gateway sent (median; one per token when nothing was grouped). */
  deltasPerGeneration: number;
  /** Used heap after full collections, per retained generation, bytes (text included). */
  heapBytesPerGeneration: number;
  /** Resident memory per retained generation, bytes (heap growth, fragmentation and all). */
  residentBytesPerGeneration: number;
  failures: number;
}

/** Two full collections in the gateway; its used heap and resident memory then, bytes. */
async function readings(gateway: ManagedProcess): Promise<{ heapUsedBytes: number; residentBytes: number }> {
  const { collected, heapUsedBytes } = await collectGarbage(gateway);
  if (!collected) throw new Error('the gateway cannot collect garbage (it runs without --expose-gc)');
  return { heapUsedBytes, residentBytes: residentBytes(gateway.child.pid) };
}

/** Runs `count` chats, `concurrency` at a time; returns their delta counts and the failures. */
async function runChats(options: RetentionCostOptions, count: number): Promise<{ deltas: number[]; failures: number }> {
  const deltas: number[] = [];
  let failures = 0;
  let started = 0;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (started < count) {
        started++;
        const result = await streamChatCompletions(
          `${options.gateway.url}/v1`,
          { model: options.model, provider: BENCH_PROVIDER, messages: [{ role: 'user', content: 'Tell me a story.' }] },
          {},
          { timeoutMs: options.timeoutMs },
        );
        if (result.error !== undefined || result.text !== options.expectedText) failures++;
        else deltas.push(result.textMessages);
      }
    }),
  );
  return { deltas, failures };
}

/** Runs the phase (see the module comment). */
export async function measureRetentionCost(options: RetentionCostOptions): Promise<RetentionCostResult> {
  const warm = await runChats(options, options.warmupGenerations);
  const before = await readings(options.gateway.handle);
  const measured = await runChats(options, options.generations);
  const after = await readings(options.gateway.handle);
  const sorted = [...measured.deltas].sort((first, second) => first - second);
  return {
    generations: options.generations,
    textCharacters: options.expectedText.length,
    deltasPerGeneration: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN,
    heapBytesPerGeneration: (after.heapUsedBytes - before.heapUsedBytes) / options.generations,
    residentBytesPerGeneration: (after.residentBytes - before.residentBytes) / options.generations,
    failures: warm.failures + measured.failures,
  };
}

/** The phase as a Markdown section of the report. */
export function formatRetentionCost(result: RetentionCostResult): string {
  return [
    '## Retained finished generations',
    '',
    `A fresh gateway, an upstream sending a token every 20 ms (one delta event per token: ${formatNumber(result.deltasPerGeneration, 0)} per generation), ${formatNumber(result.generations, 0)} REST chats run to completion after a warm-up, readings after two full collections before and after.`,
    '',
    '| per retained generation | heap | resident memory | text | failed or wrong streams |',
    '|---|---:|---:|---:|---:|',
    `| bytes | ${formatNumber(result.heapBytesPerGeneration, 0)} | ${formatNumber(result.residentBytesPerGeneration, 0)} | ${result.textCharacters} characters | ${result.failures} |`,
  ].join('\n');
}
