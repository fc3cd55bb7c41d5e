/**
 * What a local model is given: the messages rendered by the model's chat template (node-llama-cpp's
 * chat wrapper) or, without one, a plain completion prompt; measured in tokens, and fitted to the
 * context by leaving out the oldest turns of a kept conversation.
 */
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse, ChatWrapper, LlamaModel, Token } from 'node-llama-cpp';
import type { ChatMessage, ChatRequest } from '../provider.js';
import type { FunctionCalling } from './llama-functions.js';
import { unsupportedInput } from './llama-unsupported-input.js';

/** What prompting needs of a loaded model. */
export interface PromptModel {
  model: LlamaModel;
  /** The chat wrapper resolved from the GGUF file's chat template; absent = no template (the plain completion path). */
  chatWrapper?: ChatWrapper;
  /** Tokens one sequence holds: the prompt and everything generated must fit in it. */
  contextSize: number;
}

/** What a generation evaluates: a rendered chat (chat path) or the plain prompt's tokens, and how many tokens that is. */
export type PreparedPrompt =
  | { kind: 'chat'; history: ChatHistoryItem[]; tokenCount: number }
  | { kind: 'completion'; tokens: Token[]; tokenCount: number };

/**
 * Builds the plain completion prompt for a model without a chat template: one message gives its
 * content verbatim (a story start for `stories260K`); a conversation becomes a transcript of
 * `User:`/`Assistant:` lines, with system messages first, ending with `Assistant:` (or the
 * unfinished assistant message to continue).
 */
export function buildPlainPrompt(messages: ChatMessage[]): string {
  const onlyMessage = messages.length === 1 ? messages[0] : undefined;
  if (onlyMessage) return onlyMessage.content;
  const lines: string[] = [];
  for (const message of messages) {
    if (message.role === 'system') lines.push(message.content);
    else lines.push(`${message.role === 'user' ? 'User' : 'Assistant'}: ${message.content}`);
  }
  const last = messages[messages.length - 1];
  return last?.role === 'assistant' ? lines.join('\n') : `${lines.join('\n')}\nAssistant:`;
}

/** `text` parsed as JSON, or `text` itself when it is not JSON. */
function parsedOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Chat history in node-llama-cpp's shape, ending with the model response to generate (a prefill
 * when the last message is the assistant's). An assistant message's tool calls, the tool messages
 * answering them and the assistant's next message form one model response, as node-llama-cpp keeps
 * a turn with function calls: `{type: 'functionCall', name, params, result}` items (params and
 * result parsed from JSON when they are JSON), the text after them; a conversation ending with tool
 * results ends with that response, which the model continues.
 * @throws ProviderError `UNSUPPORTED_INPUT` for a tool message that answers no call of the assistant message before it.
 */
function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  /** The model response of the last assistant message that called tools, and those calls by id. */
  let open: { response: ChatModelResponse['response']; calls: Map<string, ChatModelFunctionCall> } | undefined;
  let previousRole: ChatMessage['role'] | undefined;
  for (const message of messages) {
    if (message.role === 'system' || message.role === 'user') {
      open = undefined;
      history.push(message.role === 'system' ? { type: 'system', text: message.content } : { type: 'user', text: message.content });
    } else if (message.role === 'tool') {
      const call = open?.calls.get(message.toolCallId ?? '');
      if (!call) throw unsupportedInput(`A tool message answers the call ${JSON.stringify(message.toolCallId)}, which the assistant message before it did not make.`);
      call.result = parsedOrText(message.content);
    } else {
      // After tool results the assistant goes on with the same response.
      const continuing = previousRole === 'tool' && open !== undefined;
      const response: ChatModelResponse['response'] = continuing ? open!.response : [];
      if (!continuing) history.push({ type: 'model', response });
      if (message.content) response.push(message.content);
      const calls = (message.toolCalls ?? []).map(
        (toolCall, index): [string, ChatModelFunctionCall] => [
          toolCall.id,
          {
            type: 'functionCall',
            name: toolCall.name,
            params: toolCall.arguments ? parsedOrText(toolCall.arguments) : undefined,
            result: undefined,
            // The calls of one assistant message were made together (for wrappers with parallel calls).
            ...(index === 0 && { startsNewChunk: true }),
          },
        ],
      );
      response.push(...calls.map(([, call]) => call));
      open = calls.length > 0 ? { response, calls: new Map(calls) } : undefined;
    }
    previousRole = message.role;
  }
  if (previousRole !== 'assistant' && previousRole !== 'tool') history.push({ type: 'model', response: [] });
  return history;
}

/** The tools a prompt offers (documented in the chat's system text) and the call prefix injected at the reply's start, if any. */
export type PromptFunctions = Pick<FunctionCalling, 'functions' | 'injectedPrefix'>;

/**
 * What `messages` become for `model`, measured in tokens: with a chat template, the chat history
 * the template renders (counted as node-llama-cpp's `LlamaChat` renders it: generation prompt,
 * the offered functions' documentation and an injected call prefix included); without one, the
 * tokens of the plain prompt (see {@link buildPlainPrompt}) plus the beginning-of-text token
 * llama.cpp puts in front.
 */
function prepare(model: PromptModel, messages: ChatMessage[], functions: PromptFunctions | undefined): PreparedPrompt {
  if (model.chatWrapper) {
    const history = toChatHistory(messages);
    const { contextText } = model.chatWrapper.generateContextState({ chatHistory: history, ...(functions && { availableFunctions: functions.functions }) });
    const injectedTokens = functions?.injectedPrefix?.tokenize(model.model.tokenizer, 'trimLeadingSpace').length ?? 0;
    return { kind: 'chat', history, tokenCount: contextText.tokenize(model.model.tokenizer).length + injectedTokens };
  }
  const tokens = model.model.tokenize(buildPlainPrompt(messages), false, 'trimLeadingSpace');
  return { kind: 'completion', tokens, tokenCount: tokens.length + 1 };
}

/**
 * The prompt of a request, with room left in the context for the reply: when the messages leave
 * fewer than `replyTokens` tokens of the context free, the oldest turns of the kept conversation
 * (`request.historyLength`; a turn is a user message and the replies after it; system messages stay)
 * are left out, oldest first, until they do or no history is left. The caller's own messages are
 * never left out: whether what remains fits at all is the caller's to check.
 * @param replyTokens tokens to keep free for the reply.
 * @param functions the tools offered, when any (their documentation takes room in the prompt).
 * @throws ProviderError `UNSUPPORTED_INPUT` for a tool message that answers no call before it.
 */
export function fitPrompt(model: PromptModel, request: ChatRequest, replyTokens: number, functions?: PromptFunctions): PreparedPrompt {
  let messages = request.messages;
  let historyLength = Math.min(request.historyLength ?? 0, messages.length);
  let prompt = prepare(model, messages, functions);
  const excess = (): number => prompt.tokenCount + 1 + replyTokens - model.contextSize;
  while (excess() > 0 && historyLength > 0) {
    // Leaves out whole turns until their tokens (counted without the template's markers) cover the excess, then measures again.
    let needed = excess();
    const kept: ChatMessage[] = [];
    let index = 0;
    for (; index < historyLength; index += 1) {
      const message = messages[index]!;
      const turnEnded = needed <= 0 && message.role === 'user';
      if (message.role === 'system' || turnEnded) {
        if (turnEnded) break;
        kept.push(message);
        continue;
      }
      needed -= model.model.tokenize(message.content).length + 1;
    }
    // Every history message was left out or kept: nothing more can go after this pass.
    const remainingHistory = messages.slice(index, historyLength);
    messages = [...kept, ...remainingHistory, ...messages.slice(historyLength)];
    historyLength = kept.length + remainingHistory.length;
    prompt = prepare(model, messages, functions);
    if (remainingHistory.length === 0) break;
  }
  return prompt;
}
