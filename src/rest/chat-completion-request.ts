/**
 * The body of `POST /v1/chat/completions` as the official OpenAI SDKs and gpt4free's clients send
 * it (`docs/protocols.md` §1, https://platform.openai.com/docs/api-reference/chat/create), and the
 * generation service's input it becomes: messages with content parts (text, `image_url`), tool
 * calls and tool results; tools and `tool_choice`; `response_format`; `reasoning_effort`.
 */
import { z } from 'zod';
import type { ChatCompletionInput } from '../generations/generation-inputs.js';
import { RestError } from './rest-http.js';

/** One part of an array `content`: `text` or `image_url` (others are refused, never dropped). */
const contentPartSchema = z.looseObject({
  type: z.string(),
  text: z.string().optional(),
  image_url: z.union([z.string(), z.looseObject({ url: z.string(), detail: z.string().optional() })]).optional(),
});

const toolCallSchema = z.looseObject({
  id: z.string(),
  type: z.string().optional(),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});

const messageSchema = z.looseObject({
  role: z.string(),
  /** A string, an array of parts, or null (an assistant message that only called tools). */
  content: z.union([z.string(), z.array(contentPartSchema), z.null()]).optional(),
  tool_calls: z.array(toolCallSchema).optional(),
  tool_call_id: z.string().optional(),
});

const toolSchema = z.looseObject({
  type: z.string(),
  function: z.looseObject({
    name: z.string(),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
});

/**
 * The request body. Unknown fields are dropped; `presence_penalty`, `frequency_penalty` and
 * `web_search` are accepted and ignored. `image` / `images` (gpt4free's vision fields: data URIs,
 * or `[data URI, file name]` pairs) become image parts of the last user message. `api_key` is the
 * provider's key for this request only. Ranges (temperature 0..2, …) are the service's to check.
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
  tools: z.array(toolSchema).nullish(),
  tool_choice: z.union([z.enum(['auto', 'none', 'required']), z.looseObject({ type: z.string(), function: z.looseObject({ name: z.string() }) })]).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: z
    .looseObject({
      type: z.enum(['text', 'json_object', 'json_schema']),
      json_schema: z
        .looseObject({
          name: z.string().optional(),
          description: z.string().optional(),
          schema: z.record(z.string(), z.unknown()).optional(),
          strict: z.boolean().nullish(),
        })
        .optional(),
    })
    .nullish(),
  reasoning_effort: z.enum(['minimal', 'low', 'medium', 'high']).nullish(),
  presence_penalty: z.number().nullish(),
  frequency_penalty: z.number().nullish(),
  web_search: z.boolean().nullish(),
  api_key: z.string().nullish(),
  image: z.unknown().optional(),
  images: z.unknown().optional(),
});

/** A validated chat request body. */
export type ChatCompletionRequest = z.output<typeof chatCompletionRequestSchema>;

type InputMessage = ChatCompletionInput['messages'][number];
type InputPart = NonNullable<InputMessage['parts']>[number];

/** A refusal naming the field, OpenAI-style `param`. */
function refuse(param: string, why: string, code = 'BAD_USER_INPUT'): RestError {
  return new RestError(code, `${param}: ${why}`, { param, status: 400 });
}

/** An `image_url` part's URL and detail. */
function imagePart(imageUrl: NonNullable<z.output<typeof contentPartSchema>['image_url']>): InputPart {
  const url = typeof imageUrl === 'string' ? imageUrl : imageUrl.url;
  const detail = typeof imageUrl === 'string' ? undefined : imageUrl.detail;
  return { type: 'image-url', imageUrl: url, ...((detail === 'auto' || detail === 'low' || detail === 'high') && { detail }) };
}

/**
 * Maps a request's messages: `developer` becomes `system`; array contents become parts (`text`,
 * `image_url`); assistant `tool_calls` and tool `tool_call_id` are kept.
 * @throws RestError 400: `function` messages (the legacy form), unknown roles, a null or missing
 *   content where OpenAI requires one, and `UNSUPPORTED_INPUT` for content parts other than text and images.
 */
export function toChatMessages(messages: ChatCompletionRequest['messages']): InputMessage[] {
  return messages.map((message, index) => {
    const role = message.role === 'developer' ? 'system' : message.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'tool') {
      const why = role === 'function' ? 'function messages are the legacy form: send tool messages with tool_call_id' : `role must be system, developer, user, assistant or tool, not "${role}"`;
      throw refuse(`messages[${index}].role`, why);
    }
    const content = message.content;
    const calledTools = role === 'assistant' && message.tool_calls !== undefined && message.tool_calls.length > 0;
    // OpenAI allows a null content only on an assistant message that called tools.
    if (content == null && !calledTools) {
      throw refuse(`messages[${index}].content`, 'content must be a string or an array of content parts (it is null only on an assistant message with tool_calls)');
    }
    const parts = Array.isArray(content)
      ? content.map((part, partIndex): InputPart => {
          if (part.type === 'text' && typeof part.text === 'string') return { type: 'text', text: part.text };
          if (part.type === 'image_url' && part.image_url !== undefined) return imagePart(part.image_url);
          throw refuse(`messages[${index}].content[${partIndex}].type`, `content parts of type "${part.type}" are not supported (text and image_url are)`, 'UNSUPPORTED_INPUT');
        })
      : undefined;
    const onlyText = parts?.every((part) => part.type === 'text');
    return {
      role,
      ...(typeof content === 'string' && { content }),
      ...(parts && onlyText && { content: parts.map((part) => (part.type === 'text' ? part.text : '')).join('') }),
      ...(parts && !onlyText && { parts }),
      ...(content == null && calledTools && { content: '' }),
      ...(calledTools && {
        toolCalls: message.tool_calls!.map((call) => ({ id: call.id, name: call.function.name, arguments: call.function.arguments })),
      }),
      ...(message.tool_call_id !== undefined && { toolCallId: message.tool_call_id }),
    };
  });
}

/** gpt4free's `image` / `images` (data URIs or URLs; `images` may hold `[data URI, file name]` pairs) as image parts. */
function gpt4freeImages(body: ChatCompletionRequest): InputPart[] {
  const given = [body.image, ...(Array.isArray(body.images) ? body.images : body.images !== undefined ? [body.images] : [])];
  return given.flatMap((entry, index): InputPart[] => {
    if (entry === undefined || entry === null) return [];
    const url = Array.isArray(entry) ? entry[0] : entry;
    if (typeof url !== 'string') throw refuse(index === 0 ? 'image' : 'images', 'images are data URIs or URLs (or [data URI, file name] pairs)');
    return [{ type: 'image-url', imageUrl: url }];
  });
}

/**
 * The service input for a validated request: `model: ""` means the default; `provider` may name
 * several providers separated by spaces (the service tries them in order); `conversation_id`
 * continues a conversation the server keeps; `stop` may be one string; `max_completion_tokens`
 * wins over `max_tokens`; `reasoning_effort: "minimal"` is asked as `low`; `api_key` goes to the
 * provider for this request only (never stored or logged).
 * @throws RestError 400 for bad messages (see {@link toChatMessages}), tools that are not functions, or `n` other than 1.
 */
export function toChatInput(body: ChatCompletionRequest): ChatCompletionInput {
  if (body.n != null && body.n !== 1) throw refuse('n', 'only one choice per request is supported (n = 1)');
  const stop = typeof body.stop === 'string' ? (body.stop === '' ? [] : [body.stop]) : body.stop;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const messages = toChatMessages(body.messages);
  const images = gpt4freeImages(body);
  if (images.length > 0) {
    const lastUser = messages.findLastIndex((message) => message.role === 'user');
    if (lastUser < 0) throw refuse('images', 'images go with a user message');
    const message = messages[lastUser]!;
    const text: InputPart[] = message.content ? [{ type: 'text', text: message.content }] : [];
    messages[lastUser] = { role: 'user', parts: [...text, ...(message.parts ?? []), ...images] };
  }
  const tools = body.tools?.map((tool, index) => {
    if (tool.type !== 'function') throw refuse(`tools[${index}].type`, `only function tools are supported, not "${tool.type}"`, 'UNSUPPORTED_INPUT');
    const { name, description, parameters, strict } = tool.function;
    return {
      name,
      ...(description !== undefined && { description }),
      ...(parameters !== undefined && { parameters }),
      ...(strict != null && { strict }),
    };
  });
  const choice = body.tool_choice;
  const format = body.response_format;
  return {
    messages,
    ...(body.model && { model: body.model }),
    ...(body.provider?.trim() && { provider: body.provider.trim() }),
    ...(body.conversation_id && { conversationId: body.conversation_id }),
    ...(body.temperature != null && { temperature: body.temperature }),
    ...(body.top_p != null && { topP: body.top_p }),
    ...(maxTokens != null && { maxTokens }),
    ...(stop != null && stop.length > 0 && { stop }),
    ...(body.seed != null && { seed: body.seed }),
    ...(tools && tools.length > 0 && { tools }),
    ...(choice != null && { toolChoice: typeof choice === 'string' ? { mode: choice } : { name: choice.function.name } }),
    ...(body.parallel_tool_calls != null && { parallelToolCalls: body.parallel_tool_calls }),
    ...(format != null && {
      responseFormat:
        format.type === 'json_schema'
          ? {
              type: 'json-schema' as const,
              ...(format.json_schema?.name !== undefined && { name: format.json_schema.name }),
              ...(format.json_schema?.description !== undefined && { description: format.json_schema.description }),
              ...(format.json_schema?.schema !== undefined && { jsonSchema: format.json_schema.schema }),
              ...(format.json_schema?.strict != null && { strict: format.json_schema.strict }),
            }
          : { type: format.type === 'json_object' ? ('json-object' as const) : ('text' as const) },
    }),
    ...(body.reasoning_effort != null && { reasoningEffort: body.reasoning_effort === 'minimal' ? 'low' : body.reasoning_effort }),
    ...(body.api_key && { apiKey: body.api_key }),
  };
}
