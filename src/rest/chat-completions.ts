/**
 * `POST /v1/chat/completions` (`docs/protocols.md` §1): the gpt4free/OpenAI chat
 * API over the generation service, as a JSON reply or (`stream: true`) as server-sent events.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { ChatGenerationEvent } from '../generations/generation-events.js';
import type { ChatCompletionInput } from '../generations/generation-inputs.js';
import type { ChatGenerationRecord } from '../generations/generation-records.js';
import type { ChatMessage, FinishReason, Usage } from '../providers/provider.js';
import type { RestApiDependencies } from './rest-dependencies.js';
import { followGeneration } from './generation-follower.js';
import { RestError, sendJson, unixSeconds, type EventStreamWriter } from './rest-http.js';

/** One part of an array `content`: only `text` parts carry text; other parts (`image_url`, …) are ignored for now. */
const contentPartSchema = z.looseObject({
  type: z.string(),
  text: z.string().optional(),
});

const messageSchema = z.looseObject({
  role: z.string(),
  /** A string, an array of parts, or null (an assistant message that only called tools). */
  content: z.union([z.string(), z.array(contentPartSchema), z.null()]).optional(),
  tool_calls: z.array(z.unknown()).optional(),
});

/**
 * The request body. Unknown fields are dropped; `presence_penalty`, `frequency_penalty`,
 * `web_search`, `image` and `images` are accepted and ignored for now. `api_key` is the provider's
 * key for this request only (see {@link toChatInput}).
 * Ranges (temperature 0..2, …) are the generation service's to check.
 */
export const chatCompletionRequestSchema = z.object({
  model: z.string().nullish(),
  /** A provider id, or several separated by spaces (tried in that order). */
  provider: z.string().nullish(),
  messages: z.array(messageSchema),
  stream: z.boolean().nullish(),
  conversation_id: z.string().nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  max_tokens: z.number().nullish(),
  max_completion_tokens: z.number().nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  seed: z.number().nullish(),
  n: z.number().nullish(),
  presence_penalty: z.number().nullish(),
  frequency_penalty: z.number().nullish(),
  web_search: z.boolean().nullish(),
  api_key: z.string().nullish(),
  image: z.unknown().optional(),
  images: z.unknown().optional(),
});

/** A validated chat request body. */
export type ChatCompletionRequest = z.output<typeof chatCompletionRequestSchema>;

/**
 * Maps a request's messages to chat messages: `developer` becomes `system`; array contents are
 * the join of their `text` parts; the null content of an assistant message with `tool_calls` is empty.
 * @throws RestError 400 for `tool`/`function` messages (tool calling is not supported), unknown
 *   roles, and a null or missing content anywhere else.
 */
export function toChatMessages(messages: ChatCompletionRequest['messages']): ChatMessage[] {
  return messages.map((message, index) => {
    const role = message.role === 'developer' ? 'system' : message.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant') {
      const param = `messages[${index}].role`;
      const why =
        role === 'tool' || role === 'function'
          ? `${role} messages are not supported (this server does not call tools)`
          : `role must be system, developer, user or assistant, not "${role}"`;
      throw new RestError('BAD_USER_INPUT', `${param}: ${why}`, { param });
    }
    const content = message.content;
    // OpenAI allows a null content only on an assistant message that called tools.
    if (content == null && !(role === 'assistant' && Array.isArray(message.tool_calls))) {
      const param = `messages[${index}].content`;
      throw new RestError('BAD_USER_INPUT', `${param}: content must be a string or an array of content parts (it is null only on an assistant message with tool_calls)`, { param });
    }
    const text =
      typeof content === 'string'
        ? content
        : (content ?? [])
            .filter((part) => part.type === 'text' && typeof part.text === 'string')
            .map((part) => part.text)
            .join('');
    return { role, content: text };
  });
}

/**
 * The service input for a validated request: `model: ""` means the default; `provider` may name
 * several providers separated by spaces (the service tries them in order); `conversation_id`
 * continues a conversation the server keeps; `stop` may be one string; `max_completion_tokens`
 * wins over `max_tokens`; `api_key` goes to the provider for this request only (never stored or logged).
 * @throws RestError 400 for bad messages (see {@link toChatMessages}) or `n` other than 1.
 */
export function toChatInput(body: ChatCompletionRequest): ChatCompletionInput {
  if (body.n != null && body.n !== 1) {
    throw new RestError('BAD_USER_INPUT', 'n: only one choice per request is supported (n = 1)', { param: 'n' });
  }
  const stop = typeof body.stop === 'string' ? (body.stop === '' ? [] : [body.stop]) : body.stop;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  return {
    messages: toChatMessages(body.messages),
    ...(body.model && { model: body.model }),
    ...(body.provider?.trim() && { provider: body.provider.trim() }),
    ...(body.conversation_id && { conversationId: body.conversation_id }),
    ...(body.temperature != null && { temperature: body.temperature }),
    ...(body.top_p != null && { topP: body.top_p }),
    ...(maxTokens != null && { maxTokens }),
    ...(stop != null && stop.length > 0 && { stop }),
    ...(body.seed != null && { seed: body.seed }),
    ...(body.api_key && { apiKey: body.api_key }),
  };
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
          message: { role: 'assistant', content: event.text },
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
  const chunk = (delta: Record<string, string>, finishReason: string | null, extra: Record<string, unknown> = {}) => {
    head ??= replyHead(record, 'chat.completion.chunk');
    // Object.assign rather than spreads: on Node 20 `{ ...head, …, ...extra }` made a hidden class per chunk.
    return Object.assign({}, head, { choices: [{ index: 0, delta, finish_reason: finishReason }] }, extra);
  };
  return (event) => {
    switch (event.type) {
      case 'chat-token-delta':
        writer.send(chunk(writer.started ? { content: event.text } : { role: 'assistant', content: event.text }, null));
        return false;
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
