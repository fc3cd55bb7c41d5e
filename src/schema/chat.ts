/**
 * Chat generations: the input, the `ChatGeneration` type, the chat events and their union,
 * `startChatCompletion`, and the `chatCompletionEvents` and `chatCompletion` subscriptions.
 * Resolvers only translate; the generation service does the work.
 */
import type {
  ChatCompletionCompletedEvent,
  ChatCompletionStartedEvent,
  ChatGenerationEvent,
  ChatTokenDeltaEvent,
  GenerationEvent,
} from '../generations/generation-events.js';
import type { ChatGenerationRecord } from '../generations/generation-records.js';
import type { Usage as UsageShape } from '../providers/provider.js';
import { builder } from './builder.js';
import {
  eventTypeName,
  Generation,
  GenerationCancelled,
  GenerationError,
  GenerationEventInterface,
  GenerationFailed,
  ProviderAttemptFailed,
} from './generation.js';

export const ChatRole = builder.enumType('ChatRole', {
  values: { SYSTEM: { value: 'system' }, USER: { value: 'user' }, ASSISTANT: { value: 'assistant' } } as const,
});

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

const ChatMessageInput = builder.inputType('ChatMessageInput', {
  fields: (t) => ({
    role: t.field({ type: ChatRole, required: true }),
    content: t.string({ required: true }),
  }),
});

const ChatCompletionInput = builder.inputType('ChatCompletionInput', {
  fields: (t) => ({
    messages: t.field({ type: [ChatMessageInput], required: true, description: 'At least one message.' }),
    model: t.string({
      description: 'A model id, provider:model, an alias, or a provider id (its first model); empty or absent = the configured default.',
    }),
    provider: t.string({
      description: 'A provider id, or several separated by spaces, tried in that order; absent = every provider that serves the model.',
    }),
    providers: t.stringList({ description: 'Provider ids tried in this order (the list form of provider).' }),
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
    apiKey: t.string({
      description:
        "The provider's API key for this request only: the first provider tried gets it instead of its configured key, and no other provider is tried (the key must not reach another upstream). Never stored, published or logged.",
    }),
  }),
});

export const ChatGeneration = builder.objectRef<ChatGenerationRecord>('ChatGeneration').implement({
  description: 'A chat completion generation; text grows while it runs.',
  interfaces: [Generation],
  isTypeOf: (record) => (record as ChatGenerationRecord).kind === 'chat',
  fields: (t) => ({
    text: t.exposeString('text', { description: 'All text generated so far.' }),
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

const ChatCompletionCompleted = builder.objectRef<ChatCompletionCompletedEvent>('ChatCompletionCompleted').implement({
  description: 'Terminal: the generation finished; text is the concatenation of every ChatTokenDelta.',
  interfaces: [GenerationEventInterface],
  isTypeOf: (event) => (event as GenerationEvent).type === 'chat-completion-completed',
  fields: (t) => ({
    finishReason: t.field({ type: FinishReason, resolve: (event) => event.finishReason }),
    usage: t.field({ type: Usage, nullable: true, resolve: (event) => event.usage }),
    text: t.exposeString('text'),
    conversationId: t.exposeID('conversationId', { nullable: true }),
  }),
});

const ChatCompletionEvent = builder.unionType('ChatCompletionEvent', {
  description: 'An event of a chat generation; every member implements GenerationEvent.',
  types: [ChatCompletionStarted, ChatTokenDelta, ChatCompletionCompleted, ProviderAttemptFailed, GenerationFailed, GenerationCancelled],
  resolveType: eventTypeName,
});

builder.mutationField('startChatCompletion', (t) =>
  t.field({
    type: ChatGeneration,
    nullable: true,
    description:
      'Starts a chat generation and returns at once (status RUNNING). Follow it with chatCompletionEvents. Null, with an error at its path, when refused: BAD_USER_INPUT, MODEL_NOT_FOUND, PROVIDER_NOT_FOUND, RATE_LIMITED (each start of a mutation is admitted or refused on its own).',
    args: { input: t.arg({ type: ChatCompletionInput, required: true }) },
    resolve: (_root, { input }, { generations }) => generations.startChat(input),
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
    subscribe: (_root, { input }, { generations }) => generations.startChatStream(input),
    resolve: (event: GenerationEvent) => event as ChatGenerationEvent,
  }),
);
