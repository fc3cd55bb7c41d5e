/**
 * What the `llama-cpp` provider's models cannot take, refused before a generation starts with
 * ProviderError `UNSUPPORTED_INPUT` naming it. `listModels()` declares none of these capabilities,
 * so the generation service sends such requests elsewhere; these checks hold for direct callers.
 */
import { ProviderError, type ChatRequest } from '../provider.js';

/** The provider id. */
export const LLAMA_CPP_PROVIDER_ID = 'llama-cpp';

/** ProviderError `UNSUPPORTED_INPUT`: the request needs what the model cannot do; `message` names it. */
export function unsupportedInput(message: string, cause?: unknown): ProviderError {
  return new ProviderError({ code: 'UNSUPPORTED_INPUT', provider: LLAMA_CPP_PROVIDER_ID, message, ...(cause !== undefined && { cause }) });
}

/**
 * Refuses what no local model here can take, before its model loads: images (no multimodal
 * support), a reasoning effort, and a JSON reply format together with tools that may be called
 * (node-llama-cpp constrains a reply with a grammar or with functions, not both:
 * `LlamaChat.generateResponse` throws "Using both grammar and functions is not supported yet").
 * @throws ProviderError `UNSUPPORTED_INPUT`.
 */
export function refuseUnsupportedRequest(request: ChatRequest): void {
  if (request.messages.some((message) => message.parts?.some((part) => part.type === 'image-url'))) {
    throw unsupportedInput(`${request.model} cannot see images: llama-cpp runs no multimodal models here. Send text only, or use a model with the vision capability.`);
  }
  if (request.reasoningEffort !== undefined) throw unsupportedInput(`${request.model} takes no reasoning effort.`);
  const toolsOffered = (request.tools?.length ?? 0) > 0 && request.toolChoice !== 'none';
  if (toolsOffered && request.responseFormat && request.responseFormat.type !== 'text') {
    throw unsupportedInput(`llama-cpp cannot hold a reply to a JSON format while it may call tools; send one or the other (or toolChoice none).`);
  }
}

/**
 * Refuses tool calls and tool results in the messages of a model without a chat template: its plain
 * completion prompt has no way to show them.
 * @throws ProviderError `UNSUPPORTED_INPUT`.
 */
export function refuseToolMessagesWithoutTemplate(request: ChatRequest): void {
  if (request.messages.some((message) => message.role === 'tool' || (message.toolCalls?.length ?? 0) > 0)) {
    throw unsupportedInput(`${request.model} has no chat template, so its prompt cannot show tool calls or tool results.`);
  }
}
