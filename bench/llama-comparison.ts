/**
 * The llama-cpp comparison: raw node-llama-cpp (`bench/llama-raw-process.ts`) versus the gateway's
 * `chatCompletion` subscription with `provider: "llama-cpp"` over graphql-ws, same model, prompt,
 * thread count, context and sequences, temperature 0; raw and gateway runs alternate, one at a
 * time, so they never compete for the cores.
 */
import type { Client } from 'graphql-ws';
import { processCpuMs, type ManagedProcess } from './child-processes.js';
import { FailureTally } from './failure-tally.js';
import type { GatewayProfiler } from './gateway-profiler.js';
import type { LlamaResult, LlamaSideResult } from './report.js';
import { median } from './statistics.js';
import { streamWebSocket, type ChatCompletionInput } from './stream-clients.js';

/** What the comparison needs to know. */
export interface LlamaComparisonOptions {
  llamaModel: string;
  llamaPrompt: string;
  llamaMaxTokens: number;
  /** Pairs (one raw, one gateway generation each). */
  llamaRuns: number;
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
async function runRawLlama(options: LlamaComparisonOptions, raw: ManagedProcess, rawTally: FailureTally): Promise<LlamaRun | undefined> {
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
  options: LlamaComparisonOptions,
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
  const result = await streamWebSocket(client, input, { timeoutMs: LLAMA_RUN_TIMEOUT_MS });
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
export async function warmUpRawLlama(options: LlamaComparisonOptions, raw: ManagedProcess): Promise<void> {
  const tally = new FailureTally();
  if (!(await runRawLlama(options, raw, tally))) throw new Error(`raw llama warm-up failed: ${tally.counts.examples.join('; ')}`);
}

/** First generation through the gateway: loads the model there; throws when it fails. */
export async function warmUpGatewayLlama(options: LlamaComparisonOptions, client: Client): Promise<void> {
  const tally = new FailureTally();
  if (!(await runGatewayLlama(options, client, tally, undefined))) throw new Error(`gateway llama warm-up failed: ${tally.counts.examples.join('; ')}`);
}

/**
 * llama-cpp: raw and gateway runs alternate (order flipping each pair), one at a time, after one
 * more untimed pair (models are loaded at startup by the warm-ups).
 */
export async function measureLlama(
  options: LlamaComparisonOptions,
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