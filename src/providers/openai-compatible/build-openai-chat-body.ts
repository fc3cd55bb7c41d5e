/**
 * The JSON body of `POST {baseURL}/chat/completions` (`docs/protocols.md` §2) for a gateway chat
 * request, in the shapes of the OpenAI API reference
 * (https://platform.openai.com/docs/api-reference/chat/create).
 */
import type { ChatContentPart, ChatMessage, ChatRequest, ChatResponseFormat, ChatTool, ChatToolChoice } from '../provider.js';

/** The `json_schema.name` sent when a JSON-schema response format names none (OpenAI requires one). */
export const DEFAULT_JSON_SCHEMA_NAME = 'response';

/** One content part as OpenAI writes it: `{type: "text", text}` or `{type: "image_url", image_url: {url, detail?}}`. */
type OpenAIContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: 'auto' | 'low' | 'high' } };

function toOpenAIContentPart(part: ChatContentPart): OpenAIContentPart {
  if (part.type === 'text') return { type: 'text', text: part.text };
  return { type: 'image_url', image_url: part.detail === undefined ? { url: part.url } : { url: part.url, detail: part.detail } };
}

/**
 * One message as OpenAI writes it:
 * - a message with `parts` → `{role, content: [parts]}` (text and `image_url` parts, in order);
 * - an assistant message with `toolCalls` → `{role: "assistant", content, tool_calls: [{id, type:
 *   "function", function: {name, arguments}}]}`, `content` null when it has no text;
 * - a tool message → `{role: "tool", tool_call_id, content}`;
 * - any other → `{role, content}`.
 */
function toOpenAIMessage(message: ChatMessage): Record<string, unknown> {
  const content = message.parts ? message.parts.map(toOpenAIContentPart) : message.content;
  if (message.role === 'tool') {
    return message.toolCallId === undefined ? { role: 'tool', content } : { role: 'tool', tool_call_id: message.toolCallId, content };
  }
  if (message.role === 'assistant' && message.toolCalls && message.toolCalls.length > 0) {
    return {
      role: 'assistant',
      content: content === '' ? null : content,
      tool_calls: message.toolCalls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
    };
  }
  return { role: message.role, content };
}

/** A tool as OpenAI writes it: `{type: "function", function: {name, description?, parameters?, strict?}}`. */
function toOpenAITool(tool: ChatTool): Record<string, unknown> {
  const definition: Record<string, unknown> = { name: tool.name };
  if (tool.description !== undefined) definition.description = tool.description;
  if (tool.parameters !== undefined) definition.parameters = tool.parameters;
  if (tool.strict !== undefined) definition.strict = tool.strict;
  return { type: 'function', function: definition };
}

/** `tool_choice`: `"auto"`, `"none"`, `"required"`, or `{type: "function", function: {name}}` for one named tool. */
function toOpenAIToolChoice(choice: ChatToolChoice): unknown {
  return typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
}

/**
 * `response_format`: `{type: "text"}`, `{type: "json_object"}`, or `{type: "json_schema",
 * json_schema: {name, schema, strict?}}` (`name` defaults to {@link DEFAULT_JSON_SCHEMA_NAME}).
 */
function toOpenAIResponseFormat(format: ChatResponseFormat): Record<string, unknown> {
  switch (format.type) {
    case 'text':
      return { type: 'text' };
    case 'json-object':
      return { type: 'json_object' };
    case 'json-schema': {
      const jsonSchema: Record<string, unknown> = { name: format.name ?? DEFAULT_JSON_SCHEMA_NAME, schema: format.schema };
      if (format.description !== undefined) jsonSchema.description = format.description;
      if (format.strict !== undefined) jsonSchema.strict = format.strict;
      return { type: 'json_schema', json_schema: jsonSchema };
    }
  }
}

/**
 * The request body, as JSON text: `model`, `messages` ({@link toOpenAIMessage}), `stream: true`
 * and `stream_options.include_usage: true` (so the last chunk carries the token counts), then
 * whichever of `temperature`, `top_p`, `max_tokens`, `stop` (when non-empty), `seed`, `tools`
 * (when non-empty, as `{type: "function", function: {name, description?, parameters?}}`),
 * `tool_choice`, `parallel_tool_calls`, `response_format` and `reasoning_effort` the request sets.
 * Nothing is checked here: an upstream that cannot do a feature answers with its own 400.
 */
export function buildOpenAIChatBody(request: ChatRequest): string {
  const body: Record<string, unknown> = {
    model: request.model,
    messages: request.messages.map(toOpenAIMessage),
    stream: true,
    stream_options: { include_usage: true },
  };
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.topP !== undefined) body.top_p = request.topP;
  if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
  if (request.stop !== undefined && request.stop.length > 0) body.stop = request.stop;
  if (request.seed !== undefined) body.seed = request.seed;
  if (request.tools !== undefined && request.tools.length > 0) body.tools = request.tools.map(toOpenAITool);
  if (request.toolChoice !== undefined) body.tool_choice = toOpenAIToolChoice(request.toolChoice);
  if (request.parallelToolCalls !== undefined) body.parallel_tool_calls = request.parallelToolCalls;
  if (request.responseFormat !== undefined) body.response_format = toOpenAIResponseFormat(request.responseFormat);
  if (request.reasoningEffort !== undefined) body.reasoning_effort = request.reasoningEffort;
  return JSON.stringify(body);
}
