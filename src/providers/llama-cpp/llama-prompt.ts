/**
 * What a local model is given: the messages rendered by the model's chat template (node-llama-cpp's
 * chat wrapper) or, without one, a plain completion prompt; measured in tokens, and fitted to the
 * context by leaving out the oldest turns of a kept conversation.
 */
import type { ChatHistoryItem, ChatWrapper, LlamaModel, Token } from 'node-llama-cpp';
import type { ChatMessage, ChatRequest } from '../provider.js';

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

/** Chat history in node-llama-cpp's shape, ending with the model response to generate (a prefill when the last message is the assistant's). */
function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((message) =>
    message.role === 'system'
      ? { type: 'system', text: message.content }
      : message.role === 'user'
        ? { type: 'user', text: message.content }
        : { type: 'model', response: [message.content] },
  );
  if (messages[messages.length - 1]?.role !== 'assistant') history.push({ type: 'model', response: [] });
  return history;
}

/**
 * What `messages` become for `model`, measured in tokens: with a chat template, the chat history
 * the template renders (counted as node-llama-cpp's `LlamaChat` renders it, generation prompt
 * included); without one, the tokens of the plain prompt (see {@link buildPlainPrompt}) plus the
 * beginning-of-text token llama.cpp puts in front.
 */
function prepare(model: PromptModel, messages: ChatMessage[]): PreparedPrompt {
  if (model.chatWrapper) {
    const history = toChatHistory(messages);
    const { contextText } = model.chatWrapper.generateContextState({ chatHistory: history });
    return { kind: 'chat', history, tokenCount: contextText.tokenize(model.model.tokenizer).length };
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
 */
export function fitPrompt(model: PromptModel, request: ChatRequest, replyTokens: number): PreparedPrompt {
  let messages = request.messages;
  let historyLength = Math.min(request.historyLength ?? 0, messages.length);
  let prompt = prepare(model, messages);
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
    prompt = prepare(model, messages);
    if (remainingHistory.length === 0) break;
  }
  return prompt;
}
