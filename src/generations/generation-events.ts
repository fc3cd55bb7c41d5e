/**
 * The events of a generation (chat or image): one discriminated union shared by the generation service,
 * the event log, the GraphQL schema and (later) the REST routes.
 *
 * Every event carries `generationId` and `sequence`: 1, 2, 3, … per generation, with no
 * gaps and no repeats. The last event of a generation is terminal
 * (`chat-completion-completed`, `image-generation-completed`, `generation-failed` or `generation-cancelled`).
 */
import type { ChatToolCall, FinishReason, Usage } from '../providers/provider.js';

/** A failure as clients see it: a stable `code`, a message, and the provider that failed (if any). */
export interface GenerationErrorShape {
  code: string;
  message: string;
  provider?: string;
}

interface EventBase {
  generationId: string;
  /** Position in the generation's event log, from 1. */
  sequence: number;
}

/** First event: which provider and model serve the generation. */
export interface ChatCompletionStartedEvent extends EventBase {
  type: 'chat-completion-started';
  provider: string;
  model: string;
}

/** Text that arrived together (one or more tokens). */
export interface ChatTokenDeltaEvent extends EventBase {
  type: 'chat-token-delta';
  text: string;
}

/** Text of the model's reasoning, kept apart from the reply (`ChatReasoningDelta`). */
export interface ChatReasoningDeltaEvent extends EventBase {
  type: 'chat-reasoning-delta';
  text: string;
}

/**
 * A piece of tool call number `index` of the reply (`ChatToolCallDelta`): `id` and `name` come with
 * its first piece; the JSON arguments arrive in pieces, to be concatenated in order.
 */
export interface ChatToolCallDeltaEvent extends EventBase {
  type: 'chat-tool-call-delta';
  index: number;
  id?: string;
  name?: string;
  argumentsDelta: string;
}

/**
 * Terminal success: `text` is the concatenation of every delta's text, `toolCalls` the complete
 * calls the reply made (finish reason `tool-calls`), `reasoning` the whole reasoning text.
 */
export interface ChatCompletionCompletedEvent extends EventBase {
  type: 'chat-completion-completed';
  finishReason: FinishReason;
  usage?: Usage;
  text: string;
  toolCalls?: ChatToolCall[];
  reasoning?: string;
  /** The conversation this turn was added to, when the request named one. */
  conversationId?: string;
}

/**
 * Not terminal: a provider failed before any content, and the next candidate is tried
 * (a `*-started` event naming it follows).
 */
export interface ProviderAttemptFailedEvent extends EventBase {
  type: 'provider-attempt-failed';
  provider: string;
  error: GenerationErrorShape;
}

/** Terminal failure. */
export interface GenerationFailedEvent extends EventBase {
  type: 'generation-failed';
  error: GenerationErrorShape;
}

/** Terminal cancellation (by `cancelGeneration`, a closed subscription or shutdown). */
export interface GenerationCancelledEvent extends EventBase {
  type: 'generation-cancelled';
  reason?: string;
}

/** An image as clients get it: a URL served by this service, or the bytes inline as base64. */
export interface GeneratedImage {
  /** `{PUBLIC_BASE_URL}/images/{sha256}.{ext}` when stored. */
  url?: string;
  /** The image bytes, base64, when `B64_JSON` was asked for. */
  b64Json?: string;
  /** From the bytes, e.g. `image/png`. */
  mimeType: string;
  /** Pixels, when the provider said. */
  width?: number;
  height?: number;
  seed?: number;
  revisedPrompt?: string;
  /** The provider's own URL of the image, when it gave one. */
  sourceUrl?: string;
}

/** First event of an image generation: which provider and model serve it. */
export interface ImageGenerationStartedEvent extends EventBase {
  type: 'image-generation-started';
  provider: string;
  model: string;
}

/** What the provider says while it works; `progress` in 0..1 when known. */
export interface ImageGenerationProgressEvent extends EventBase {
  type: 'image-generation-progress';
  message?: string;
  progress?: number;
  queuePosition?: number;
}

/** Terminal success of an image generation. */
export interface ImageGenerationCompletedEvent extends EventBase {
  type: 'image-generation-completed';
  images: GeneratedImage[];
}

/** Any event of a chat or image generation. */
export type GenerationEvent =
  | ChatCompletionStartedEvent
  | ChatTokenDeltaEvent
  | ChatReasoningDeltaEvent
  | ChatToolCallDeltaEvent
  | ChatCompletionCompletedEvent
  | ImageGenerationStartedEvent
  | ImageGenerationProgressEvent
  | ImageGenerationCompletedEvent
  | ProviderAttemptFailedEvent
  | GenerationFailedEvent
  | GenerationCancelledEvent;

/** Events of a chat generation. */
export type ChatGenerationEvent =
  | ChatCompletionStartedEvent
  | ChatTokenDeltaEvent
  | ChatReasoningDeltaEvent
  | ChatToolCallDeltaEvent
  | ChatCompletionCompletedEvent
  | ProviderAttemptFailedEvent
  | GenerationFailedEvent
  | GenerationCancelledEvent;

/** Events of an image generation. */
export type ImageGenerationEvent =
  | ImageGenerationStartedEvent
  | ImageGenerationProgressEvent
  | ImageGenerationCompletedEvent
  | ProviderAttemptFailedEvent
  | GenerationFailedEvent
  | GenerationCancelledEvent;

/** An event before its number is given; the generation service adds `generationId` and `sequence`. */
export type UnnumberedGenerationEvent = GenerationEvent extends infer Event
  ? Event extends GenerationEvent
    ? Omit<Event, 'generationId' | 'sequence'>
    : never
  : never;

/** Whether the event ends its generation's stream. */
export function isTerminalEvent(event: GenerationEvent): boolean {
  return (
    event.type === 'chat-completion-completed' ||
    event.type === 'image-generation-completed' ||
    event.type === 'generation-failed' ||
    event.type === 'generation-cancelled'
  );
}
