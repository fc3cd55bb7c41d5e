/**
 * Tool calling on a local model through node-llama-cpp's function calling
 * (https://node-llama-cpp.withcat.ai/guide/function-calling): the request's tools become the
 * `functions` of `LlamaChat.generateResponse`, which the model's chat wrapper documents in the
 * prompt in its own syntax (`settings.functions`); once the model starts that syntax, node-llama-cpp
 * holds the function name and the parameters to the tools' schemas with a grammar, stops with
 * `stopReason: 'functionCalls'` and returns the calls (`functionCalls`), which become
 * `tool-call-delta` parts and finish reason `tool-calls`.
 *
 * `toolChoice`: `auto` lets the model decide; `none` offers no function; `required` and `{name}` are
 * forced — the reply starts with the wrapper's call prefix (the prefix is injected, as node-llama-cpp
 * does for wrappers whose replies open with a call: the context state's `noPrefixTrigger` of type
 * `functionCall`), so the model can only write a call; `{name}` offers that tool alone. A wrapper that
 * steers the start of its replies itself (Functionary, Harmony, Muse: their own prefix triggers or an
 * initially engaged call) cannot be forced: that request is refused with `UNSUPPORTED_INPUT`.
 */
import { randomBytes } from 'node:crypto';
import type { ChatModelFunctions, ChatWrapper, ChatWrapperGenerateContextStateOptions, ChatWrapperGeneratedContextState, LlamaChatResponseFunctionCall, LlamaText } from 'node-llama-cpp';
import type { ChatRequest, ChatStreamPart, ChatTool } from '../provider.js';
import { unsupportedInput } from './llama-unsupported-input.js';
import { toGrammarSchema, UnsupportedSchemaError } from './llama-json-schema.js';

/** What `LlamaChat.generateResponse` gets for a request's tools. */
export interface FunctionCalling {
  /** The tools offered, by name, with their parameters as node-llama-cpp's grammar schema. */
  functions: ChatModelFunctions;
  /** The model's chat wrapper, or one whose replies start with a call (a forced tool choice). */
  chatWrapper: ChatWrapper;
  /** 1 when the request allows no parallel calls (wrappers without parallel calls make one anyway). */
  maxParallelFunctionCalls?: number;
  /** The call prefix the forcing wrapper injects at the start of the reply (counts against the context); absent when not forced. */
  injectedPrefix?: LlamaText;
}

/** The constructor of node-llama-cpp's `LlamaText` (node-llama-cpp is imported on first use). */
type LlamaTextFactory = typeof import('node-llama-cpp').LlamaText;

/** The parameters schema of `tool` for node-llama-cpp, or a refusal naming the tool and what its schema uses. */
function parametersOf(tool: ChatTool): ChatModelFunctions[string]['params'] {
  if (!tool.parameters) return undefined;
  try {
    return toGrammarSchema(tool.parameters);
  } catch (error) {
    if (!(error instanceof UnsupportedSchemaError)) throw error;
    throw unsupportedInput(`The parameters of tool "${tool.name}" use what llama.cpp's grammar cannot enforce: ${error.message}.`, error);
  }
}

/** Whether node-llama-cpp can start `chatWrapper`'s replies with a call: its rendered chat leaves the reply's start open. */
function canForce(state: ChatWrapperGeneratedContextState): boolean {
  return !('functionCall' in state && state.functionCall) && !state.prefixTriggers?.length && !state.noPrefixTrigger;
}

/**
 * `chatWrapper` with every reply starting with its function-call prefix: it renders the chat as
 * `chatWrapper` does and asks node-llama-cpp to inject the prefix when the reply starts (the state's
 * `noPrefixTrigger`), after which the model can only complete a call of an offered function.
 */
function forcingFunctionCall(chatWrapper: ChatWrapper, prefix: LlamaText): ChatWrapper {
  const forcing: ChatWrapper = Object.create(chatWrapper);
  forcing.generateContextState = function (this: ChatWrapper, options: ChatWrapperGenerateContextStateOptions) {
    const state = chatWrapper.generateContextState.call(this, options);
    return { ...state, prefixTriggers: [], noPrefixTrigger: { type: 'functionCall', inject: prefix } } as ChatWrapperGeneratedContextState;
  };
  return forcing;
}

/**
 * What the request's tools become for a model whose chat wrapper is `chatWrapper` (absent: no chat
 * template), or `undefined` when no function is offered (no tools, or `toolChoice: 'none'`).
 * @param modelId names the model in refusals.
 * @throws ProviderError `UNSUPPORTED_INPUT` for a model without a chat template or whose wrapper has no
 *   function-call syntax, a `toolChoice` naming no tool, a forced choice the wrapper cannot force, or
 *   tool parameters the grammar cannot enforce.
 */
export function planFunctionCalling(
  request: ChatRequest,
  chatWrapper: ChatWrapper | undefined,
  modelId: string,
  createLlamaText: LlamaTextFactory,
): FunctionCalling | undefined {
  const tools = request.tools ?? [];
  const choice = request.toolChoice ?? 'auto';
  if (tools.length === 0 || choice === 'none') return undefined;
  if (!chatWrapper) throw unsupportedInput(`${modelId} has no chat template, so it has no syntax to call tools in.`);
  const syntax = chatWrapper.settings.functions as ChatWrapper['settings']['functions'] | undefined;
  if (!syntax) throw unsupportedInput(`The ${chatWrapper.wrapperName} chat template of ${modelId} has no syntax to call tools in.`);
  const offered = typeof choice === 'object' ? tools.filter((tool) => tool.name === choice.name) : tools;
  if (offered.length === 0) throw unsupportedInput(`toolChoice names "${(choice as { name: string }).name}", which is not among the tools.`);
  const functions: ChatModelFunctions = Object.fromEntries(
    offered.map((tool) => {
      const params = parametersOf(tool);
      return [tool.name, { ...(tool.description && { description: tool.description }), ...(params && { params }) }];
    }),
  );
  const parallel = request.parallelToolCalls === false ? { maxParallelFunctionCalls: 1 } : {};
  if (choice === 'auto') return { functions, chatWrapper, ...parallel };
  const sample = chatWrapper.generateContextState({ chatHistory: [{ type: 'user', text: '' }, { type: 'model', response: [] }], availableFunctions: functions });
  if (!canForce(sample)) {
    throw unsupportedInput(
      `The ${chatWrapper.wrapperName} chat template of ${modelId} opens its replies itself, so llama-cpp cannot force a tool call (toolChoice ${JSON.stringify(choice)}); use toolChoice auto.`,
    );
  }
  const injectedPrefix = createLlamaText(syntax.call.prefix);
  return { functions, chatWrapper: forcingFunctionCall(chatWrapper, injectedPrefix), ...parallel, injectedPrefix };
}

/** A new tool call id, `call_` and 16 random URL-safe characters (OpenAI's ids look alike). */
export function newToolCallId(): string {
  return `call_${randomBytes(12).toString('base64url')}`;
}

/**
 * The calls a reply ended with, as stream parts: one `tool-call-delta` per call, carrying a new id,
 * the function's name and its whole arguments as JSON text (`{}` for a function without parameters).
 */
export function toolCallParts(calls: ReadonlyArray<Pick<LlamaChatResponseFunctionCall<ChatModelFunctions>, 'functionName' | 'params'>>): ChatStreamPart[] {
  return calls.map((call, index) => ({
    type: 'tool-call-delta',
    index,
    id: newToolCallId(),
    name: call.functionName,
    argumentsDelta: JSON.stringify(call.params ?? {}),
  }));
}
