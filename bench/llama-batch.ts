/**
 * Concurrent generations on one llama.cpp model: K identical generations one at a time versus all
 * K at once, as aggregate tokens/s (all tokens over the wall time). With `LLAMA_SEQUENCES` ≥ K the
 * gateway's provider runs them on K sequences of one context, which node-llama-cpp decodes in one
 * batch, so all at once should beat one at a time. Measured through the gateway (graphql-ws
 * subscriptions) and, for reference, in the raw node-llama-cpp process.
 */
import { performance } from 'node:perf_hooks';
import type { Client } from 'graphql-ws';
import type { ManagedProcess } from './child-processes.js';
import { FailureTally } from './failure-tally.js';
import type { LlamaBatchResult, LlamaBatchSide } from './report.js';
import { streamWebSocket, type ChatCompletionInput } from './stream-clients.js';

/** How the comparison runs. */
export interface LlamaBatchOptions {
  generations: number;
  rounds: number;
  sequences: number;
  model: string;
  prompt: string;
  maxTokens: number;
  /** Upper bound of one round, ms. */
  timeoutMs: number;
}

/** One generation's outcome: its tokens and text, or undefined when it failed (tallied). */
interface Generation {
  tokens: number;
  text: string;
}

/** Sums rounds into a side. */
class SideAccumulator {
  readonly tally = new FailureTally();
  private oneAtATime = { tokens: 0, ms: 0 };
  private concurrent = { tokens: 0, ms: 0 };
  private referenceText: string | undefined;
  private concurrentTextsDifferent = 0;

  /**
   * Adds one round of one mode. One at a time, every text must equal the first one (temperature 0
   * on an empty sequence is deterministic); all at once, batched decoding may change the numbers
   * and so the text, which is counted but is no failure.
   */
  add(mode: 'oneAtATime' | 'concurrent', generations: Array<Generation | undefined>, wallMs: number): void {
    const sums = mode === 'oneAtATime' ? this.oneAtATime : this.concurrent;
    for (const generation of generations) {
      if (!generation) continue;
      if (mode === 'oneAtATime') {
        this.referenceText ??= generation.text;
        if (generation.text !== this.referenceText) {
          this.tally.counts.wrongText += 1;
          this.tally.example(`one-at-a-time text differs from the first generation's (${generation.text.length} vs ${this.referenceText.length} characters)`);
        }
      } else if (generation.text !== this.referenceText) {
        this.concurrentTextsDifferent += 1;
      }
      sums.tokens += generation.tokens;
    }
    sums.ms += wallMs;
  }

  result(): LlamaBatchSide {
    const oneAtATimeTokensPerSecond = (this.oneAtATime.tokens / this.oneAtATime.ms) * 1000;
    const concurrentTokensPerSecond = (this.concurrent.tokens / this.concurrent.ms) * 1000;
    return {
      oneAtATimeTokensPerSecond,
      concurrentTokensPerSecond,
      speedup: concurrentTokensPerSecond / oneAtATimeTokensPerSecond,
      concurrentTextsDifferent: this.concurrentTextsDifferent,
      failures: this.tally.counts,
    };
  }
}

/** Ids of raw requests sent by this module (apart from run.ts's). */
let rawRequestId = 1_000_000;

interface RawRun {
  completionTokens?: number;
  text?: string;
}

/** Runs `parallel` raw generations in one request (1: the plain form); returns them and the wall time. */
async function runRaw(raw: ManagedProcess, options: LlamaBatchOptions, parallel: number, tally: FailureTally): Promise<{ generations: Array<Generation | undefined>; wallMs: number }> {
  rawRequestId += 1;
  const id = rawRequestId;
  const startedAt = performance.now();
  raw.send({ id, model: options.model, prompt: options.prompt, maxTokens: options.maxTokens, temperature: 0, ...(parallel > 1 && { parallel }) });
  const answer = await raw.nextMessage<{ id: number; error?: string; runs?: RawRun[] } & RawRun>(options.timeoutMs);
  const wallMs = performance.now() - startedAt;
  if (answer.id !== id) throw new Error(`raw llama answered request ${answer.id}, expected ${id}`);
  if (answer.error !== undefined) {
    tally.counts.errors += parallel;
    tally.example(answer.error);
    return { generations: [], wallMs };
  }
  const runs = parallel > 1 ? (answer.runs ?? []) : [answer];
  return {
    wallMs,
    generations: runs.map((run) => {
      if (!run.completionTokens) {
        tally.counts.errors += 1;
        tally.example('no tokens');
        return undefined;
      }
      return { tokens: run.completionTokens, text: run.text ?? '' };
    }),
  };
}

/** One generation through the gateway's `chatCompletion` subscription. */
async function runGateway(client: Client, options: LlamaBatchOptions, tally: FailureTally): Promise<Generation | undefined> {
  const input: ChatCompletionInput = {
    provider: 'llama-cpp',
    model: options.model,
    messages: [{ role: 'USER', content: options.prompt }],
    maxTokens: options.maxTokens,
    temperature: 0,
  };
  const result = await streamWebSocket(client, input, { timeoutMs: options.timeoutMs });
  if (!tally.check(result, undefined)) return undefined;
  if (!result.completionTokens) {
    tally.counts.errors += 1;
    tally.example('no usage.completionTokens');
    return undefined;
  }
  return { tokens: result.completionTokens, text: result.text };
}

/**
 * Runs the rounds: per round and side, one at a time then all at once (raw and gateway take turns,
 * so they never compete for the cores).
 * @param raw the raw process, or undefined to measure the gateway only.
 */
export async function measureLlamaBatch(options: LlamaBatchOptions, client: Client, raw: ManagedProcess | undefined): Promise<LlamaBatchResult> {
  const gateway = new SideAccumulator();
  const rawSide = raw ? new SideAccumulator() : undefined;
  const count = options.generations;
  for (let round = 0; round < options.rounds; round++) {
    let startedAt = performance.now();
    const sequential: Array<Generation | undefined> = [];
    for (let index = 0; index < count; index++) sequential.push(await runGateway(client, options, gateway.tally));
    gateway.add('oneAtATime', sequential, performance.now() - startedAt);
    startedAt = performance.now();
    const concurrent = await Promise.all(Array.from({ length: count }, () => runGateway(client, options, gateway.tally)));
    gateway.add('concurrent', concurrent, performance.now() - startedAt);

    if (raw && rawSide) {
      let wallMs = 0;
      const rawSequential: Array<Generation | undefined> = [];
      for (let index = 0; index < count; index++) {
        const one = await runRaw(raw, options, 1, rawSide.tally);
        wallMs += one.wallMs;
        rawSequential.push(...one.generations);
      }
      rawSide.add('oneAtATime', rawSequential, wallMs);
      const batch = await runRaw(raw, options, count, rawSide.tally);
      rawSide.add('concurrent', batch.generations, batch.wallMs);
    }
  }
  return {
    generations: count,
    rounds: options.rounds,
    sequences: options.sequences,
    gateway: gateway.result(),
    ...(rawSide && { raw: rawSide.result() }),
  };
}
