/**
 * Chat generations: the input, the `ChatGeneration` type, the chat events and their union,
 * `startChatCompletion`, and the `chatCompletionEvents` and `chatCompletion` subscriptions.
 * Resolvers only translate; the generation service does the work.
 */
import type {
  ChatCompletionCompletedEvent,
  ChatCompletionStartedEvent,
  ChatGenerationEvent,
  ChatReasoningDeltaEvent,
  ChatTokenDeltaEvent,
  ChatToolCallDeltaEvent,
  GenerationEvent,
} from '../generations/generation-events.js';
import type { ChatCompletionInput as ChatCompletionInputValues } from '../generations/generation-inputs.js';
import type { ChatGenerationRecord } from '../generations/generation-records.js';
import type { ChatToolCall as ChatToolCallShape, Usage as UsageShape } from '../providers/provider.js';
import { builder } from './builder.js';
import { ChatCompletionInput } from './chat-inputs.js';
import {
  eventTypeName,
  Generation,
  GenerationCancelled,
  GenerationError,
  GenerationEventInterface,
  GenerationFailed,
  ProviderAttemptFailed,
} from './generation.js';

const FinishReason = builder.enumType('FinishReason', {
  description: 'Why a chat generation stopped: STOP (natural end or stop sequence), LENGTH (maxTokens reached), CONTENT_FILTER, TOOL_CALLS.',
  values: {
    STOP: { value: 'stop' },
    LENGTH: { value: 'length' },
    CONTENT_FILTER: { value: 'content-filter' },
    TOOL_CALLS: { value: 'tool-calls' },
  } as const,
});

const Usage = builder.objectRef<UsageShape>('Usage').implement({
  description: 'Token counts of a generation, as reported by the provider.',
  fields: (t) => ({
    promptTokens: t.exposeInt('promptTokens', { nullable: true }),
    completionTokens: t.exposeInt('completionTokens', { nullable: true }),
    totalTokens: t.exposeInt('totalTokens', { nullable: true }),
  }),
});

const ChatToolCall = builder.objectRef<ChatToolCallShape>('ChatToolCall').implement({
  description: 'A tool call the model made: answer it with a TOOL message carrying its id as toolCallId.',
  fields: (t) => ({
    id: t.exposeString('id'),
    name: t.exposeString('name'),
    arguments: t.exposeString('arguments', { description: 'The arguments as JSON text (complete once the generation completed).' }),
  }),
});

export const ChatGeneration = builder.objectRef<ChatGenerationRecord>('ChatGeneration').implement({
  description: 'A chat completion generation; text grows while it runs.',
  interfaces: [Generation],
  isTypeOf: (record) => (record as ChatGenerationRecord).kind === 'chat',
  fields: (t) => ({
    text: t.exposeString('text', { description: 'All text generated so far.' }),
    toolCalls: t.field({ type: [ChatToolCall], nullable: true, description: 'The tool calls of the reply so far.', resolve: (record) => record.toolCalls }),
    reasoning: t.exposeString('reasoning', { nullable: true, description: "The model's reasoning so far, when it gives one." }),
    conversationId: t.exposeID('conversationId', { nullable: true }),
    finishReason: t.field({ type: FinishReason, nullable: true, resolve: (record) => record.finishReason }),
    usage: t.field({ type: Usage, nullable: true, resolve: (record) => record.usage }),
    error: t.field({ type: GenerationError, nullable: true, resolve: (record) => record.error }),
  }),
});

const ChatCompletionStarted = builder.objectRef<ChatCompletionStartedEvent>('ChatCompletionStarted').implement({
  description: 'The provider and model serving the generation: the first event, and again after each ProviderAttemptFailed.',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'chat-completion-started',
  fields: (t) => ({
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
  }),
});

const ChatTokenDelta = builder.objectRef<ChatTokenDeltaEvent>('ChatTokenDelta').implement({
  description: 'Text that arrived together: one or more tokens.',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'chat-token-delta',
  fields: (t) => ({
    text: t.exposeString('text'),
  }),
});

const ChatReasoningDelta = builder.objectRef<ChatReasoningDeltaEvent>('ChatReasoningDelta').implement({
  description: "Text of the model's reasoning, kept apart from the reply's text.",
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'chat-reasoning-delta',
  fields: (t) => ({
    text: t.exposeString('text'),
  }),
});

const ChatToolCallDelta = builder.objectRef<ChatToolCallDeltaEvent>('ChatToolCallDelta').implement({
  description: 'A piece of tool call number index of the reply: id and name come with its first piece; concatenate argumentsDelta in order for its JSON arguments.',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'chat-tool-call-delta',
  fields: (t) => ({
    index: t.exposeInt('index'),
    id: t.exposeString('id', { nullable: true }),
    name: t.exposeString('name', { nullable: true }),
    argumentsDelta: t.exposeString('argumentsDelta'),
  }),
});

const ChatCompletionCompleted = builder.objectRef<ChatCompletionCompletedEvent>('ChatCompletionCompleted').implement({
  description:
    'Terminal: the generation finished; text is the concatenation of every ChatTokenDelta, toolCalls the complete calls (finishReason TOOL_CALLS), reasoning the whole reasoning text.',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'chat-completion-completed',
  fields: (t) => ({
    finishReason: t.field({ type: FinishReason, resolve: (event) => event.finishReason }),
    usage: t.field({ type: Usage, nullable: true, resolve: (event) => event.usage }),
    text: t.exposeString('text'),
    toolCalls: t.field({ type: [ChatToolCall], nullable: true, resolve: (event) => event.toolCalls }),
    reasoning: t.exposeString('reasoning', { nullable: true }),
    conversationId: t.exposeID('conversationId', { nullable: true }),
  }),
});

const ChatCompletionEvent = builder.unionType('ChatCompletionEvent', {
  description: 'An event of a chat generation; every member implements GenerationEvent.',
  types: [ChatCompletionStarted, ChatTokenDelta, ChatReasoningDelta, ChatToolCallDelta, ChatCompletionCompleted, ProviderAttemptFailed, GenerationFailed, GenerationCancelled],
  resolveType: eventTypeName,
});

builder.mutationField('startChatCompletion', (t) =>
  t.field({
    type: ChatGeneration,
    nullable: true,
    description:
      'Starts a chat generation and returns at once (status RUNNING). Follow it with chatCompletionEvents. Null, with an error at its path, when refused: BAD_USER_INPUT, MODEL_NOT_FOUND, PROVIDER_NOT_FOUND, RATE_LIMITED (each start of a mutation is admitted or refused on its own).',
    args: { input: t.arg({ type: ChatCompletionInput, required: true }) },
    // The service validates the input (its schema is the one rule for every transport).
    resolve: (_root, { input }, { generations }) => generations.startChat(input as ChatCompletionInputValues),
  }),
);

builder.subscriptionField('chatCompletionEvents', (t) =>
  t.field({
    type: ChatCompletionEvent,
    description:
      'Replays the events with sequence > after (default: all), then follows live ones; completes after the terminal event. Errors: GENERATION_NOT_FOUND, BAD_USER_INPUT (an image generation), EVENTS_EXPIRED (events after `after` are gone from the log), EVENT_LOG_UNAVAILABLE (Redis unreachable).',
    args: {
      generationId: t.arg.id({ required: true }),
      after: t.arg.int({ description: 'Last sequence already seen; 0 or absent = from the start.' }),
    },
    subscribe: (_root, { generationId, after }, { generations }) => generations.subscribe(generationId, after ?? 0, 'chat'),
    resolve: (event: GenerationEvent) => event as ChatGenerationEvent,
  }),
);

builder.subscriptionField('chatCompletion', (t) =>
  t.field({
    type: ChatCompletionEvent,
    description: 'Starts a chat generation and streams its events in one operation; closing the subscription cancels the generation.',
    args: { input: t.arg({ type: ChatCompletionInput, required: true }) },
    subscribe: (_root, { input }, { generations }) => generations.startChatStream(input as ChatCompletionInputValues),
    resolve: (event: GenerationEvent) => event as ChatGenerationEvent,
  }),
);
