/**
 * Raw node-llama-cpp, without the gateway, as its own process: the baseline of the llama-cpp
 * benchmark. It loads the model exactly as the `llama-cpp` provider does
 * (`src/providers/llama-cpp/llama-cpp-provider.ts`): `getLlama({ gpu, build: 'never' })`, one
 * context with `sequences` sequences, `contextSize = min(LLAMA_CONTEXT_SIZE, trainContextSize)`,
 * the configured `threads`, and a `LlamaCompletion` on the plain prompt (the test model has no
 * chat template), with the same callbacks (`onTextChunk`, `onToken`) and an abort signal.
 * The settings come from `BENCH_GATEWAY_SETTINGS` through the gateway's own `loadConfig`, so both
 * sides run the same thread count, context and sequence setup.
 *
 * Protocol: JSON lines. After loading it prints `{"ready":true}`. Each stdin line
 * `{"id":1,"model":"stories260K","prompt":"Once upon a time","maxTokens":256,"temperature":0}`
 * gets one stdout line `{"id":1,"completionTokens":N,"durationMs":X,"firstTokenMs":Y,"stopReason":"…","text":"…","textChunks":K}`
 * (or `{"id":1,"error":"…"}`). With `"parallel":K` (at most the context's sequences), the request
 * runs K identical generations at once, one per sequence (batched by node-llama-cpp), and the
 * answer is `{"id":1,"wallMs":X,"runs":[{…one generation's fields…}, …]}`.
 * Requests run one after another. Exits when stdin closes, on SIGTERM and SIGINT.
 */
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { getLlama, LlamaCompletion, LlamaLogLevel, type LlamaContextSequence } from 'node-llama-cpp';
import { loadConfig } from '../src/config.js';
import { buildPlainPrompt } from '../src/providers/llama-cpp/llama-cpp-provider.js';

/** One generation request from the parent. */
interface RawRequest {
  id: number;
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  /** Identical generations to run at once (default 1: the plain answer). */
  parallel?: number;
}

/** Process entry point. */
async function main(): Promise<void> {
  const settings = JSON.parse(process.env.BENCH_GATEWAY_SETTINGS ?? '{}') as Record<string, string>;
  const config = loadConfig({ ...settings, HOST: '127.0.0.1', PORT: '0' });
  const modelName = process.env.BENCH_LLAMA_MODEL ?? 'stories260K';

  const llama = await getLlama({ gpu: config.llamaGpu, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: join(resolve(config.modelsDir), `${modelName}.gguf`) });
  const context = await model.createContext({
    sequences: config.llamaSequences,
    contextSize: Math.min(config.llamaContextSize, model.trainContextSize),
    threads: config.llamaThreads,
  });
  const sequences: LlamaContextSequence[] = Array.from({ length: config.llamaSequences }, () => context.getSequence());

  let exiting = false;
  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    setTimeout(() => process.exit(code), 2_000).unref();
    void (async () => {
      await context.dispose().catch(() => {});
      await model.dispose().catch(() => {});
      await llama.dispose().catch(() => {});
      process.exit(code);
    })();
  };
  process.on('SIGTERM', () => exit(0));
  process.on('SIGINT', () => exit(0));

  const runOne = async (request: RawRequest, sequence: LlamaContextSequence) => {
    const prompt = buildPlainPrompt([{ role: 'user', content: request.prompt }]);
    const pending: string[] = [];
    let completionTokens = 0;
    let firstTokenMs: number | undefined;
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(60_000)]);
    const startedAt = performance.now();
    const completion = new LlamaCompletion({ contextSequence: sequence });
    let stopReason: string;
    try {
      const result = await completion.generateCompletionWithMeta(prompt, {
        signal,
        onTextChunk: (text: string) => {
          firstTokenMs ??= performance.now() - startedAt;
          pending.push(text);
        },
        onToken: (tokens: readonly unknown[]) => {
          completionTokens += tokens.length;
        },
        maxTokens: request.maxTokens,
        temperature: request.temperature,
      });
      stopReason = result.metadata.stopReason;
    } finally {
      completion.dispose({ disposeSequence: false });
    }
    controller.abort();
    // The provider clears the sequence before the gateway reports completion: same work here.
    await sequence.clearHistory();
    const durationMs = performance.now() - startedAt;
    return { completionTokens, durationMs, firstTokenMs: firstTokenMs ?? durationMs, stopReason, text: pending.join(''), textChunks: pending.length };
  };

  // Requests run one after another, in arrival order.
  let queue: Promise<void> = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    queue = queue.then(async () => {
      let request: RawRequest | undefined;
      try {
        request = JSON.parse(line) as RawRequest;
        if (request.model !== modelName) throw new Error(`this process serves ${modelName}, not ${request.model}`);
        if (request.parallel !== undefined && request.parallel > 1) {
          if (request.parallel > sequences.length) throw new Error(`parallel ${request.parallel} > LLAMA_SEQUENCES ${sequences.length}`);
          const startedAt = performance.now();
          const runs = await Promise.all(sequences.slice(0, request.parallel).map((sequence) => runOne(request!, sequence)));
          process.stdout.write(`${JSON.stringify({ id: request.id, wallMs: performance.now() - startedAt, runs })}\n`);
        } else {
          const result = await runOne(request, sequences[0]!);
          process.stdout.write(`${JSON.stringify({ id: request.id, ...result })}\n`);
        }
      } catch (error) {
        process.stdout.write(`${JSON.stringify({ id: request?.id ?? -1, error: (error as Error)?.message ?? String(error) })}\n`);
      }
    });
  });
  lines.on('close', () => void queue.then(() => exit(0)));
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
}

main().catch((error: unknown) => {
  console.error('[llama-raw-process] failed:', error);
  process.exit(1);
});
