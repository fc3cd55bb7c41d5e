/**
 * What a chat request may say: its messages (text, images, tool calls and tool results), its
 * tools, the shape of the reply, and the sampling settings (`ChatCompletionInput`).
 */
import { builder } from './builder.js';
import './scalars.js';

export const ChatRole = builder.enumType('ChatRole', {
  description: 'Who wrote a message: TOOL is the result of a tool call, sent back to the model.',
  values: { SYSTEM: { value: 'system' }, USER: { value: 'user' }, ASSISTANT: { value: 'assistant' }, TOOL: { value: 'tool' } } as const,
});

const ChatContentPartType = builder.enumType('ChatContentPartType', {
  values: { TEXT: { value: 'text' }, IMAGE_URL: { value: 'image-url' } } as const,
});

const ImageDetail = builder.enumType('ImageDetail', {
  description: 'How closely a vision model looks at an image (OpenAI: auto, low, high).',
  values: { AUTO: { value: 'auto' }, LOW: { value: 'low' }, HIGH: { value: 'high' } } as const,
});

const ChatContentPartInput = builder.inputType('ChatContentPartInput', {
  description: 'Part of a user message: text, or an image (needs a model with the VISION capability).',
  fields: (t) => ({
    type: t.field({ type: ChatContentPartType, required: true }),
    text: t.string({ description: 'TEXT: the text.' }),
    imageUrl: t.string({ description: 'IMAGE_URL: an https URL or a data:image/…;base64 URI.' }),
    detail: t.field({ type: ImageDetail }),
  }),
});

const ChatToolCallInput = builder.inputType('ChatToolCallInput', {
  description: 'A tool call an assistant message made (sent back as history).',
  fields: (t) => ({
    id: t.string({ required: true }),
    name: t.string({ required: true }),
    arguments: t.string({ required: true, description: 'The arguments as JSON text.' }),
  }),
});

const ChatMessageInput = builder.inputType('ChatMessageInput', {
  description: 'One message. A user message may carry parts (text and images), an assistant message the toolCalls it made, a TOOL message the toolCallId it answers.',
  fields: (t) => ({
    role: t.field({ type: ChatRole, required: true }),
    content: t.string({ description: 'The text; may be left out when parts or toolCalls say it all.' }),
    parts: t.field({ type: [ChatContentPartInput] }),
    toolCalls: t.field({ type: [ChatToolCallInput] }),
    toolCallId: t.string(),
  }),
});

const ChatToolInput = builder.inputType('ChatToolInput', {
  description: 'A tool (a function) the model may call.',
  fields: (t) => ({
    name: t.string({ required: true, description: '1 to 64 letters, digits, "_" or "-".' }),
    description: t.string(),
    parameters: t.field({ type: 'JSON', description: 'Its arguments as a JSON Schema (an object schema).' }),
    strict: t.boolean({ description: 'The arguments must follow parameters exactly (where the provider makes the difference).' }),
  }),
});

const ChatToolChoiceMode = builder.enumType('ChatToolChoiceMode', {
  values: { AUTO: { value: 'auto' }, NONE: { value: 'none' }, REQUIRED: { value: 'required' } } as const,
});

const ChatToolChoiceInput = builder.inputType('ChatToolChoiceInput', {
  description: 'Either mode (AUTO: the model decides; NONE: no tool; REQUIRED: some tool), or the name of the one tool the model must call.',
  fields: (t) => ({
    mode: t.field({ type: ChatToolChoiceMode }),
    name: t.string(),
  }),
});

const ChatResponseFormatType = builder.enumType('ChatResponseFormatType', {
  values: { TEXT: { value: 'text' }, JSON_OBJECT: { value: 'json-object' }, JSON_SCHEMA: { value: 'json-schema' } } as const,
});

const ChatResponseFormatInput = builder.inputType('ChatResponseFormatInput', {
  description: 'The shape of the reply: TEXT, any JSON object, or JSON matching jsonSchema (JSON_OBJECT and JSON_SCHEMA need the JSON_SCHEMA capability).',
  fields: (t) => ({
    type: t.field({ type: ChatResponseFormatType, required: true }),
    name: t.string({ description: 'A name for the schema (OpenAI json_schema.name).' }),
    description: t.string({ description: 'What the reply is (OpenAI json_schema.description).' }),
    jsonSchema: t.field({ type: 'JSON', description: 'JSON_SCHEMA: the JSON Schema the reply must match.' }),
    strict: t.boolean({ description: 'Enforce the schema rather than suggest it (where the provider makes the difference).' }),
  }),
});

const ReasoningEffort = builder.enumType('ReasoningEffort', {
  values: { LOW: { value: 'low' }, MEDIUM: { value: 'medium' }, HIGH: { value: 'high' } } as const,
});

export const ChatCompletionInput = builder.inputType('ChatCompletionInput', {
  fields: (t) => ({
    messages: t.field({ type: [ChatMessageInput], required: true, description: 'At least one message.' }),
    model: t.string({
      description: 'A model id, provider:model, an alias, or a provider id (its first model); empty or absent = the configured default.',
    }),
    provider: t.string({
      description: 'A provider id or gpt4free provider name (e.g. PollinationsAI), in any case, or several separated by spaces, tried in that order; absent = every provider that serves the model.',
    }),
    providers: t.stringList({ description: 'Provider ids or gpt4free provider names tried in this order (the list form of provider).' }),
    conversationId: t.id({
      description:
        'Continue (or start) a conversation the server keeps: send only the new message(s); the provider receives the whole history.',
    }),
    temperature: t.float({ description: 'Sampling temperature, 0..2.' }),
    topP: t.float({ description: 'Nucleus sampling mass, greater than 0 and at most 1.' }),
    maxTokens: t.int({
      description:
        "Upper bound on generated tokens, 1 to the server's MAX_TOKENS_LIMIT. Unset: the server's DEFAULT_MAX_TOKENS when configured, else the provider's own bound (a local model stops when its context is full).",
    }),
    stop: t.stringList({ description: 'Up to 16 strings that end the generation.' }),
    seed: t.int({ description: 'Seed for reproducible sampling, where the provider supports it.' }),
    tools: t.field({ type: [ChatToolInput], description: 'Tools the model may call (at most 128; needs the TOOLS capability). Calls stream as ChatToolCallDelta.' }),
    toolChoice: t.field({ type: ChatToolChoiceInput }),
    parallelToolCalls: t.boolean({ description: 'Whether the model may make several tool calls in one turn.' }),
    responseFormat: t.field({ type: ChatResponseFormatInput }),
    reasoningEffort: t.field({ type: ReasoningEffort, description: 'How much a reasoning model reasons (needs the REASONING capability).' }),
    apiKey: t.string({
      description:
        "The provider's API key for this request only: the first provider tried gets it instead of its configured key, and no other provider is tried (the key must not reach another upstream). Never stored, published or logged.",
    }),
  }),
});
