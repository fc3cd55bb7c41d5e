/**
 * The `llama-cpp` provider: in-process inference through `node-llama-cpp`.
 *
 * Models are the `.gguf` files of one folder; a model's id is its file name without the
 * extension. Each model is loaded once, on first use, with one context holding
 * `sequences` context sequences, so that many generations run at once (batched by
 * llama.cpp); more requests wait for a free sequence. The thread count is always explicit:
 * left to itself, llama.cpp starts a thread per core for every evaluation, which oversubscribes a
 * small machine.
 *
 * Every generation ends: node-llama-cpp would shift the context when it fills and go on (a model
 * that rarely emits end-of-text then never stops), so the prompt is measured in tokens first — one
 * that leaves no room in a sequence's context is refused with `CONTEXT_LENGTH_EXCEEDED`, never cut
 * — and generation stops when the context is full (finish reason `length`), as llama.cpp's own
 * server does since it turned context shift off by default
 * (https://github.com/ggml-org/llama.cpp/tree/master/tools/server, `--context-shift`).
 *
 * Structured replies (`responseFormat` `json-object`, `json-schema`) are held to a grammar on both
 * paths (`llama-grammar.ts`); tools go through node-llama-cpp's function calling on models with a
 * chat template (`llama-functions.ts`); what the models cannot take is refused with
 * `UNSUPPORTED_INPUT` (`llama-unsupported-input.ts`); `listModels()` says which model can do what
 * without loading it (`llama-model-files.ts`).
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type {
  ChatModelFunctions,
  ChatWrapper,
  LLamaChatGenerateResponseOptions,
  Llama,
  LlamaChatResponse,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
} from 'node-llama-cpp';

/**
 * node-llama-cpp, imported on first use: loading it costs memory that a gateway that never runs a
 * local model (or has not yet) should not pay (figures in `docs/performance.md`).
 */
let nodeLlamaCpp: Promise<typeof import('node-llama-cpp')> | undefined;
const importNodeLlamaCpp = (): Promise<typeof import('node-llama-cpp')> => (nodeLlamaCpp ??= import('node-llama-cpp'));
import {
  ProviderError,
  type Availability,
  type ChatProvider,
  type ChatRequest,
  type ChatStreamPart,
  type ModelDescriptor,
  type StreamOptions,
} from '../provider.js';
import { planFunctionCalling, toolCallParts } from './llama-functions.js';
import { GrammarCache } from './llama-grammar.js';
import { UnsupportedSchemaError } from './llama-json-schema.js';
import { createDefaultModel } from './default-model.js';
import { capabilitiesOf, createModelFiles } from './llama-model-files.js';
import type { ModelDownload } from './model-download.js';
import { fitPrompt } from './llama-prompt.js';
import { LLAMA_CPP_PROVIDER_ID, refuseToolMessagesWithoutTemplate, refuseUnsupportedRequest, unsupportedInput } from './llama-unsupported-input.js';
import { SequencePool } from './sequence-pool.js';

export { buildPlainPrompt } from './llama-prompt.js';
export { LLAMA_CPP_PROVIDER_ID } from './llama-unsupported-input.js';

/** Settings of the `llama-cpp` provider. */
export interface LlamaCppProviderOptions {
  /** Folder scanned for `.gguf` files. */
  modelsDir: string;
  /** CPU threads per evaluation. */
  threads: number;
  /** Context size of each sequence, tokens. */
  contextSize: number;
  /** Generations one model runs at once. */
  sequences: number;
  /** GPU backend, or `false` for the CPU. */
  gpu: 'auto' | false | 'cuda' | 'vulkan' | 'metal';
  /** Downloaded by `start()` when the models folder holds no model (`default-model.ts`). */
  defaultModel?: ModelDownload;
}

/** The function calls a chat reply ended with. */
type FunctionCalls = NonNullable<LlamaChatResponse<ChatModelFunctions>['functionCalls']>;

interface LoadedModel {
  model: LlamaModel;
  context: LlamaContext;
  pool: SequencePool<LlamaContextSequence>;
  /** The chat wrapper resolved from the GGUF file's chat template; absent = no template (the plain completion path is used). */
  chatWrapper?: ChatWrapper;
  /** Tokens one sequence holds: the prompt and everything generated must fit in it. */
  contextSize: number;
  /** The reply-format grammars built for this model. */
  grammars: GrammarCache;
}

/**
 * Creates the provider. Nothing is loaded until the first generation.
 * `streamChat` throws ProviderError `UPSTREAM_NOT_FOUND` for a model with no file,
 * `PROVIDER_UNAVAILABLE` when llama.cpp or the model cannot load, `UNSUPPORTED_INPUT` for what the
 * model cannot take (images, a reasoning effort, tools on a model without a chat template, a JSON
 * schema or tool parameters the grammar cannot enforce, tools together with a JSON reply format),
 * `PROVIDER_ERROR` when inference fails.
 */
export function createLlamaCppProvider(options: LlamaCppProviderOptions): ChatProvider {
  const modelsDir = resolve(options.modelsDir);
  let llamaPromise: Promise<Llama> | undefined;
  const loaded = new Map<string, Promise<LoadedModel>>();
  /** The sequence pools of the loaded models, for `queueDepth`. */
  const pools = new Set<SequencePool<LlamaContextSequence>>();
  let closed = false;
  /** Aborted by `close`: ends every running generation and every wait for a sequence. */
  const closing = new AbortController();
  /** Each running generation's inference (settles, never rejects, once llama.cpp has stopped evaluating for it). */
  const inference = new Set<Promise<void>>();
  const closedError = (): ProviderError =>
    new ProviderError({ code: 'PROVIDER_UNAVAILABLE', provider: LLAMA_CPP_PROVIDER_ID, message: 'llama-cpp is closed' });

  const modelFiles = createModelFiles(modelsDir);
  const defaultModel = options.defaultModel && createDefaultModel(options.defaultModel, modelFiles);

  function loadLlama(): Promise<Llama> {
    llamaPromise ??= importNodeLlamaCpp().then(({ getLlama, LlamaLogLevel }) =>
      getLlama({ gpu: options.gpu, build: 'never', logLevel: LlamaLogLevel.error }),
    );
    return llamaPromise;
  }

  function loadModel(id: string, path: string): Promise<LoadedModel> {
    let promise = loaded.get(id);
    if (!promise) {
      promise = (async () => {
        const llama = await loadLlama();
        const model = await llama.loadModel({ modelPath: path });
        const context = await model.createContext({
          sequences: options.sequences,
          contextSize: Math.min(options.contextSize, model.trainContextSize),
          threads: options.threads,
        });
        const sequences = Array.from({ length: options.sequences }, () => context.getSequence());
        const pool = new SequencePool(sequences);
        pools.add(pool);
        const { resolveChatWrapper } = await importNodeLlamaCpp();
        const chatWrapper = model.fileInfo.metadata.tokenizer?.chat_template ? resolveChatWrapper(model) : undefined;
        // From now on the resolved wrapper, not the file's header, says whether the model calls tools.
        modelFiles.setLoadedCapabilities(id, capabilitiesOf(chatWrapper !== undefined, chatWrapper?.settings.functions !== undefined));
        return { model, context, pool, ...(chatWrapper && { chatWrapper }), contextSize: context.contextSize, grammars: new GrammarCache(llama) };
      })();
      // A failed load is not cached, so a fixed file can be retried.
      promise.catch(() => loaded.delete(id));
      loaded.set(id, promise);
    }
    return promise;
  }

  /**
   * The grammar of the request's reply format for `model`, if it asks for JSON.
   * @throws ProviderError `UNSUPPORTED_INPUT` for a schema the grammar cannot enforce.
   */
  async function grammarOf(model: LoadedModel, request: ChatRequest): Promise<LlamaGrammar | undefined> {
    try {
      return await model.grammars.grammarFor(request.responseFormat);
    } catch (error) {
      if (error instanceof UnsupportedSchemaError) throw unsupportedInput(`The JSON schema uses what llama.cpp's grammar cannot enforce: ${error.message}.`, error);
      throw unsupportedInput(`llama.cpp cannot make a grammar of the JSON schema: ${(error as Error).message}`, error);
    }
  }

  return {
    id: LLAMA_CPP_PROVIDER_ID,
    label: 'llama.cpp (local GGUF models)',
    capabilities: ['chat'],

    async listModels(): Promise<ModelDescriptor[]> {
      const models = await modelFiles.descriptors();
      const pending = defaultModel?.pending();
      return pending && !models.some((model) => model.id === pending.id) ? [...models, pending] : models;
    },

    start: () => defaultModel?.start() ?? Promise.resolve(),
    status: () => defaultModel?.status(),
    loading: () => defaultModel?.loading(),

    async checkAvailability(): Promise<Availability> {
      try {
        if (!(await stat(modelsDir)).isDirectory()) return { available: false, reason: `MODELS_DIR ${modelsDir} is not a folder` };
      } catch {
        return { available: false, reason: `MODELS_DIR ${modelsDir} does not exist` };
      }
      if ((await modelFiles.files()).size === 0) {
        const download = defaultModel?.status();
        return { available: false, reason: `no .gguf files in ${modelsDir}${download ? `; ${download}` : ''}` };
      }
      if (llamaPromise) {
        try {
          await llamaPromise;
        } catch (error) {
          return { available: false, reason: `llama.cpp cannot load: ${(error as Error).message}` };
        }
      }
      return { available: true };
    },

    async *streamChat(request: ChatRequest, { signal, deltaIntervalMs = 0 }: StreamOptions): AsyncGenerator<ChatStreamPart> {
      if (closed) throw closedError();
      refuseUnsupportedRequest(request);
      const path = (await modelFiles.files()).get(request.model);
      if (!path) {
        const downloading = defaultModel?.unavailable(request.model);
        if (downloading) throw downloading;
        throw new ProviderError({
          code: 'UPSTREAM_NOT_FOUND',
          provider: LLAMA_CPP_PROVIDER_ID,
          message: `no file ${request.model}.gguf in ${modelsDir}`,
        });
      }
      let model: LoadedModel;
      try {
        model = await loadModel(request.model, path);
      } catch (error) {
        throw new ProviderError({
          code: 'PROVIDER_UNAVAILABLE',
          provider: LLAMA_CPP_PROVIDER_ID,
          message: `cannot load ${request.model}: ${(error as Error).message}`,
          cause: error,
        });
      }
      // Loaded with the model already; taken before the sequence is, so no await sits between acquiring that and the `finally` that releases it.
      const { LlamaChat, LlamaCompletion, LlamaText } = await importNodeLlamaCpp();
      if (!model.chatWrapper) refuseToolMessagesWithoutTemplate(request);
      const functionCalling = planFunctionCalling(request, model.chatWrapper, request.model, LlamaText);
      const grammar = await grammarOf(model, request);
      // A reply without a limit of its own keeps a quarter of the context when older turns can make room for it.
      const replyTokens = Math.min(request.maxTokens ?? Number.POSITIVE_INFINITY, Math.floor(model.contextSize / 4));
      const prompt = fitPrompt(model, request, replyTokens, functionCalling);
      // One token of room at least: node-llama-cpp would otherwise cut the prompt (plain path) or
      // drop messages from its start (chat path) without a word.
      const room = model.contextSize - prompt.tokenCount - 1;
      if (room < 1) {
        throw new ProviderError({
          code: 'CONTEXT_LENGTH_EXCEEDED',
          provider: LLAMA_CPP_PROVIDER_ID,
          message: `This model's context holds ${model.contextSize} tokens, and the messages take ${prompt.tokenCount}. Shorten the messages (or raise LLAMA_CONTEXT_SIZE, up to what the model was trained on).`,
        });
      }
      const sequence = await model.pool.acquire(AbortSignal.any([signal, closing.signal]));
      // Aborts inference when the caller aborts, when the consumer stops iterating early, and when the provider closes.
      const stopController = new AbortController();
      const generationSignal = AbortSignal.any([signal, stopController.signal, closing.signal]);
      const pending: string[] = [];
      let wake: (() => void) | undefined;
      let outcome: { stopReason: string; functionCalls?: FunctionCalls } | { error: unknown } | undefined;
      const meterBefore = sequence.tokenMeter.getState();
      // The consumer is woken for the first text at once, then at most once per `deltaIntervalMs`:
      // node-llama-cpp dispatches the next token's evaluation on the next event-loop turn, so
      // per-token work on this thread (resuming generators, coalescing) delays every token.
      let lastWakeAt = Number.NEGATIVE_INFINITY;
      let wakeTimer: NodeJS.Timeout | undefined;
      const wakeConsumer = (): void => {
        clearTimeout(wakeTimer);
        wakeTimer = undefined;
        lastWakeAt = performance.now();
        wake?.();
      };
      const generationOptions = {
        signal: generationSignal,
        onTextChunk: (text: string) => {
          pending.push(text);
          if (!wake || wakeTimer) return;
          const waitMs = lastWakeAt + deltaIntervalMs - performance.now();
          if (waitMs <= 0) wakeConsumer();
          else wakeTimer = setTimeout(wakeConsumer, waitMs);
        },
        // The generation stops when the context is full, whatever the request allows.
        maxTokens: Math.min(request.maxTokens ?? room, room),
        ...(request.temperature !== undefined && { temperature: request.temperature }),
        ...(request.topP !== undefined && { topP: request.topP }),
        ...(request.seed !== undefined && { seed: request.seed }),
        ...(request.stop !== undefined && { customStopTriggers: request.stop }),
      };
      const generation = (async () => {
        if (prompt.kind === 'chat') {
          const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: functionCalling?.chatWrapper ?? model.chatWrapper! });
          try {
            // node-llama-cpp takes either functions or a grammar (`refuseUnsupportedRequest` refuses both).
            const options: LLamaChatGenerateResponseOptions<ChatModelFunctions> = functionCalling
              ? { ...generationOptions, functions: functionCalling.functions, ...(functionCalling.maxParallelFunctionCalls && { maxParallelFunctionCalls: functionCalling.maxParallelFunctionCalls }) }
              : { ...generationOptions, ...(grammar && { grammar }) };
            const { metadata, functionCalls } = await chat.generateResponse(prompt.history, options);
            return { stopReason: metadata.stopReason, ...(functionCalls && functionCalls.length > 0 && { functionCalls }) };
          } finally {
            chat.dispose({ disposeSequence: false });
          }
        }
        const completion = new LlamaCompletion({ contextSequence: sequence });
        try {
          // No context shift, and a shift size of one token so the prompt (which fits, see above) is never cut to make room for one.
          const result = await completion.generateCompletionWithMeta(prompt.tokens, {
            ...generationOptions,
            ...(grammar && { grammar }),
            disableContextShift: true,
            contextShiftSize: 1,
          });
          return { stopReason: result.metadata.stopReason };
        } finally {
          completion.dispose({ disposeSequence: false });
        }
      })().then(
        (result) => {
          outcome = result;
          wakeConsumer();
        },
        (error: unknown) => {
          outcome = { error };
          wakeConsumer();
        },
      );
      // `close` waits for inference to stop before it disposes the context it runs on.
      inference.add(generation);
      try {
        for (;;) {
          if (pending.length > 0) {
            // Everything generated since the last read goes out as one delta.
            const text = pending.length === 1 ? pending[0]! : pending.join('');
            pending.length = 0;
            yield { type: 'text-delta', text };
            continue;
          }
          if (outcome) break;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
        if ('error' in outcome) {
          if (signal.aborted) throw signal.reason;
          if (closing.signal.aborted) throw closedError();
          throw new ProviderError({
            code: 'PROVIDER_ERROR',
            provider: LLAMA_CPP_PROVIDER_ID,
            message: `inference failed: ${(outcome.error as Error)?.message ?? String(outcome.error)}`,
            cause: outcome.error,
          });
        }
        // Every token the model wrote counts, those of function calls (not text) too.
        const { usedInputTokens: promptTokens, usedOutputTokens: completionTokens } = sequence.tokenMeter.diff(meterBefore);
        if (outcome.functionCalls) yield* toolCallParts(outcome.functionCalls);
        yield {
          type: 'finish',
          finishReason: outcome.stopReason === 'maxTokens' ? 'length' : outcome.functionCalls ? 'tool-calls' : 'stop',
          usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
        };
      } finally {
        clearTimeout(wakeTimer);
        stopController.abort();
        await generation;
        inference.delete(generation);
        // Once closing, the context may be gone: the sequence goes with it.
        if (!closing.signal.aborted) await model.pool.release(sequence, () => sequence.clearHistory());
      }
    },

    queueDepth(): number {
      let waiting = 0;
      for (const pool of pools) waiting += pool.queueLength;
      return waiting;
    },

    async close(): Promise<void> {
      closed = true;
      await defaultModel?.stop();
      // Stops every running and waiting generation, and waits until llama.cpp has stopped evaluating
      // for them: disposing a context while an evaluation is in flight makes node-llama-cpp throw
      // (`DisposedError`) where nothing can catch it.
      closing.abort(closedError());
      await Promise.all(inference);
      pools.clear();
      const models = await Promise.allSettled(loaded.values());
      loaded.clear();
      modelFiles.clearLoadedCapabilities();
      for (const result of models) {
        if (result.status === 'fulfilled') {
          await result.value.context.dispose();
          await result.value.model.dispose();
        }
      }
      if (llamaPromise) {
        const llama = await llamaPromise.catch(() => undefined);
        llamaPromise = undefined;
        await llama?.dispose();
      }
    },
  };
}
