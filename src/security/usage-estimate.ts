/**
 * The tokens a generation is assumed to use before it starts, for a virtual key's tokens-per-minute
 * and budget checks (the real usage settles them when it ends): the prompt at one token per
 * {@link CHARACTERS_PER_TOKEN} characters of the request's messages (OpenAI's rule of thumb for
 * English text, https://help.openai.com/en/articles/4936856), plus the request's `maxTokens`, else a
 * default. A conversation's stored history is not counted (it is added later); the settlement is.
 */
import type { ChatCompletionInput, ImageGenerationInput } from '../generations/generation-inputs.js';

/** Characters per token of the prompt estimate. */
export const CHARACTERS_PER_TOKEN = 4;

/** Characters of the text of a message as transports hand it over (content, text parts, tool call arguments). */
function messageCharacters(message: unknown): number {
  if (typeof message !== 'object' || message === null) return 0;
  const { content, parts, toolCalls } = message as { content?: unknown; parts?: unknown; toolCalls?: unknown };
  let characters = typeof content === 'string' ? content.length : 0;
  if (Array.isArray(parts)) {
    for (const part of parts) if (typeof (part as { text?: unknown })?.text === 'string') characters += (part as { text: string }).text.length;
  }
  if (Array.isArray(toolCalls)) {
    for (const call of toolCalls) if (typeof (call as { arguments?: unknown })?.arguments === 'string') characters += (call as { arguments: string }).arguments.length;
  }
  return characters;
}

/**
 * Prompt plus completion tokens a chat request is assumed to use (the input is not validated yet:
 * what is not of the expected shape counts nothing).
 * @param defaultCompletionTokens completion tokens assumed without a `maxTokens` (`DEFAULT_MAX_TOKENS`, else `ESTIMATED_COMPLETION_TOKENS`).
 */
export function estimateChatTokens(input: ChatCompletionInput, defaultCompletionTokens: number): number {
  const messages: unknown = input.messages;
  const characters = Array.isArray(messages) ? messages.reduce((sum: number, message) => sum + messageCharacters(message), 0) : 0;
  const maxTokens = input.maxTokens;
  const completion = typeof maxTokens === 'number' && Number.isInteger(maxTokens) && maxTokens > 0 ? maxTokens : defaultCompletionTokens;
  return Math.ceil(characters / CHARACTERS_PER_TOKEN) + completion;
}

/** Tokens an image generation is assumed to use: none (its usage rows count images, not tokens). */
export function estimateImageTokens(_input: ImageGenerationInput): number {
  return 0;
}
