/**
 * `POST /v1/chat/completions` (`docs/protocols.md` §1): the gpt4free/OpenAI chat
 * API over the generation service, as a JSON reply or (`stream: true`) as server-sent events.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChatGenerationEvent } from '../generations/generation-events.js';
import type { ChatGenerationRecord } from '../generations/generation-records.js';
import type { ChatToolCall, FinishReason, Usage } from '../providers/provider.js';
import type { RestApiDependencies } from './rest-dependencies.js';
import { chatCompletionRequestSchema, toChatInput, type ChatCompletionRequest } from './chat-completion-request.js';

export { chatCompletionRequestSchema, toChatInput, toChatMessages, type ChatCompletionRequest } from './chat-completion-request.js';
import { followGeneration } from './generation-follower.js';
import { sendJson, unixSeconds, type EventStreamWriter } from './rest-http.js';

/** A complete tool call as OpenAI writes it: `{ id, type: "function", function: { name, arguments } }`. */
function toOpenAIToolCall(call: ChatToolCall): { id: string; type: 'function'; function: { name: string; arguments: string } } {
  return { id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } };
}

/** OpenAI's `finish_reason` for the gateway's finish reason. */
export function toOpenAIFinishReason(reason: FinishReason): 'stop' | 'length' | 'content_filter' | 'tool_calls' {
  switch (reason) {
    case 'length':
      return 'length';
    case 'content-filter':
      return 'content_filter';
    case 'tool-calls':
      return 'tool_calls';
    default:
      return 'stop';
  }
}

/**
 * OpenAI's `usage` (tokens). A count the provider did not report is 0; the total defaults to the
 * sum of the other two.
 */
export function toOpenAIUsage(usage: Usage | undefined): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  const promptTokens = usage?.promptTokens ?? 0;
  const completionTokens = usage?.completionTokens ?? 0;
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: usage?.totalTokens ?? promptTokens + completionTokens };
}

/** The fields every reply and chunk starts with. */
function replyHead(record: ChatGenerationRecord, object: 'chat.completion' | 'chat.completion.chunk') {
  const conversationId = record.conversationId;
  return {
    id: `chatcmpl-${record.id}`,
    object,
    created: unixSeconds(record.createdAt),
    model: record.model,
    provider: record.provider,
    ...(conversationId !== undefined && { conversation_id: conversationId }),
  };
}

/**
 * Handles `POST /v1/chat/completions`.
 *
 * - Non-streaming: waits for the end, then `200 {"id":"chatcmpl-<generation id>","object":"chat.completion",
 *   "created"(unix s),"model","provider","conversation_id"?,"choices":[{"index":0,"message":{"role":"assistant","content"},
 *   "finish_reason"}],"usage":{"prompt_tokens","completion_tokens","total_tokens"}}`.
 * - Streaming: nothing is written before the first text (or the end); then 200 `text/event-stream`
 *   with one `chat.completion.chunk` per delta (the first carries `role: "assistant"`), a last chunk
 *   with `delta: {}`, `finish_reason` and `usage`, and `data: [DONE]`. A failure after the first
 *   text is sent in-band as `data: {"error":{…}}` then `data: [DONE]`.
 * - Errors before any text get an HTTP status (see `httpStatusForCode`) and `{"error":{…}}`:
 *   400 bad body, 404 unknown model or provider, 413 body too large, 429/502/503/504 provider failures.
 * - A client that leaves before the end cancels the generation (`client disconnected`), which
 *   aborts the upstream request.
 * `provider-attempt-failed` events (a provider failed and the next is tried) are skipped.
 * The shared flow is {@link followGeneration}'s.
 */
export function handleChatCompletions(dependencies: RestApiDependencies, request: IncomingMessage, response: ServerResponse): Promise<void> {
  return followGeneration<ChatCompletionRequest, ChatGenerationRecord, ChatGenerationEvent>(dependencies, request, response, {
    schema: chatCompletionRequestSchema,
    kind: 'chat',
    start: (generations, body) => generations.startChat(toChatInput(body)),
    answer: (body, record, writer) => (body.stream === true ? streamChat(record, writer) : replyChat(record, writer.response)),
  });
}

/** Answers one JSON reply at the end of the generation. */
function replyChat(record: ChatGenerationRecord, response: ServerResponse): (event: ChatGenerationEvent) => boolean {
  return (event) => {
    if (event.type !== 'chat-completion-completed') return false; // started, provider-attempt-failed: nothing to say yet
    sendJson(response, 200, {
      ...replyHead(record, 'chat.completion'),
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            // OpenAI sends null content on a reply that only called tools.
            content: event.text === '' && event.toolCalls ? null : event.text,
            ...(event.toolCalls && { tool_calls: event.toolCalls.map(toOpenAIToolCall) }),
            ...(event.reasoning !== undefined && { reasoning_content: event.reasoning }),
          },
          finish_reason: toOpenAIFinishReason(event.finishReason),
        },
      ],
      usage: toOpenAIUsage(event.usage),
    });
    return true;
  };
}

/** Streams the generation as chat completion chunks; see {@link handleChatCompletions}. */
function streamChat(record: ChatGenerationRecord, writer: EventStreamWriter): (event: ChatGenerationEvent) => boolean {
  let head: ReturnType<typeof replyHead> | undefined;
  const chunk = (delta: Record<string, unknown>, finishReason: string | null, extra: Record<string, unknown> = {}) => {
    head ??= replyHead(record, 'chat.completion.chunk');
    // Object.assign rather than spreads: on Node 20 `{ ...head, …, ...extra }` made a hidden class per chunk.
    return Object.assign({}, head, { choices: [{ index: 0, delta, finish_reason: finishReason }] }, extra);
  };
  return (event) => {
    switch (event.type) {
      case 'chat-token-delta':
        writer.send(chunk(writer.started ? { content: event.text } : { role: 'assistant', content: event.text }, null));
        return false;
      case 'chat-reasoning-delta':
        // `reasoning_content`, as gpt4free and DeepSeek-style servers stream a model's reasoning.
        writer.send(chunk(writer.started ? { reasoning_content: event.text } : { role: 'assistant', reasoning_content: event.text }, null));
        return false;
      case 'chat-tool-call-delta': {
        const call = {
          index: event.index,
          ...(event.id !== undefined && { id: event.id, type: 'function' }),
          function: { ...(event.name !== undefined && { name: event.name }), arguments: event.argumentsDelta },
        };
        writer.send(chunk(writer.started ? { tool_calls: [call] } : { role: 'assistant', content: null, tool_calls: [call] }, null));
        return false;
      }
      case 'chat-completion-completed':
        if (!writer.started) writer.send(chunk({ role: 'assistant', content: '' }, null));
        writer.send(chunk({}, toOpenAIFinishReason(event.finishReason), { usage: toOpenAIUsage(event.usage) }));
        writer.done();
        return true;
      default:
        return false; // started, provider-attempt-failed
    }
  };
}
