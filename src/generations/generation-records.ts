/** What the generation service keeps about each generation, as resolvers and routes read it. */
import type { ChatToolCall, FinishReason, Usage } from '../providers/provider.js';
import type { GeneratedImage, GenerationErrorShape, GenerationEvent } from './generation-events.js';

/** Lifecycle of a generation. QUEUED and RUNNING are live; the others are final. */
export type GenerationStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** Fields every generation has. Times are `Date`s. */
interface GenerationRecordBase {
  id: string;
  status: GenerationStatus;
  provider: string;
  model: string;
  createdAt: Date;
  finishedAt?: Date;
  /** Who started it: the caller's id (`key:…` by API key, `ip:…` without authentication; never a key). Absent for starts from code. */
  owner?: string;
  error?: GenerationErrorShape;
  /** Sequence of the last event appended. */
  lastSequence: number;
}

/** A chat generation; `text` is what has streamed so far. */
export interface ChatGenerationRecord extends GenerationRecordBase {
  kind: 'chat';
  text: string;
  /** The conversation this generation continues, when the request named one. */
  conversationId?: string;
  finishReason?: FinishReason;
  usage?: Usage;
  /** The tool calls of the reply, complete once the generation completed (arguments grow while it streams). */
  toolCalls?: ChatToolCall[];
  /** The model's reasoning so far, when it gives one. */
  reasoning?: string;
}

/** An image generation; `images` is filled when it completes. */
export interface ImageGenerationRecord extends GenerationRecordBase {
  kind: 'image';
  prompt: string;
  images: GeneratedImage[];
}

/** Any generation. */
export type GenerationRecord = ChatGenerationRecord | ImageGenerationRecord;

/** Whether the status is final (COMPLETED, FAILED or CANCELLED). */
export function isFinalStatus(status: GenerationStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** Copies a terminal event's outcome onto a record followed from elsewhere (another instance, or the shared log). */
export function applyTerminalEvent(record: GenerationRecord, event: GenerationEvent): void {
  record.finishedAt = new Date();
  if (event.type === 'generation-failed') {
    record.status = 'failed';
    record.error = event.error;
  } else if (event.type === 'generation-cancelled') {
    record.status = 'cancelled';
  } else {
    record.status = 'completed';
    if (event.type === 'chat-completion-completed' && record.kind === 'chat') {
      record.text = event.text;
      record.finishReason = event.finishReason;
      if (event.usage) record.usage = event.usage;
      if (event.toolCalls) record.toolCalls = event.toolCalls;
      if (event.reasoning !== undefined) record.reasoning = event.reasoning;
    } else if (event.type === 'image-generation-completed' && record.kind === 'image') {
      record.images = event.images;
    }
  }
}
