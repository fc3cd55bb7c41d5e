/** What the generation service keeps about each generation, as resolvers and routes read it. */
import type { FinishReason, Usage } from '../providers/provider.js';
import type { GeneratedImage, GenerationErrorShape } from './generation-events.js';

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
