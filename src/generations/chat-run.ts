/**
 * The work of a chat generation: its candidates tried in order (see provider-fallback.ts), the
 * provider's text streamed as coalesced `chat-token-delta` events, and the completed turn added to
 * its conversation.
 */
import type { ConversationStore } from '../conversations/conversation-store.js';
import type { ResolvedModel } from '../providers/provider-registry.js';
import type { ChatMessage, ChatProvider, ChatRequest, FinishReason, Usage } from '../providers/provider.js';
import { DeltaCoalescer } from './delta-coalescer.js';
import type { UnnumberedGenerationEvent } from './generation-events.js';
import type { ChatGenerationRecord } from './generation-records.js';
import { racedParts, type AbortRace, type GenerationRun, type GenerationWork } from './generation-run.js';
import { nextEventLoopIteration } from './next-event-loop-iteration.js';
import { runWithFallback, type FallbackOptions } from './provider-fallback.js';

/** What a chat run needs beside its request. */
export interface ChatRunOptions extends FallbackOptions {
  /** Shortest time between two `chat-token-delta` events, ms (see `DeltaCoalescer`); 0 = every delta at once. */
  deltaCoalesceMs: number;
  /** Where a completed turn of a conversation is added. */
  conversations: ConversationStore;
}

/**
 * The work of a chat generation.
 * @param request the request for the first candidate (each attempt asks its candidate's own model).
 * @param newMessages the messages this request adds to its conversation (stored with the reply once completed).
 */
export function chatWork(
  candidates: Array<ResolvedModel<ChatProvider>>,
  request: ChatRequest,
  newMessages: ChatMessage[],
  options: ChatRunOptions,
): GenerationWork {
  return (run, race) =>
    runWithFallback(run, candidates, options, (candidate, attemptNumber, markContent) =>
      runChat(run as GenerationRun & { record: ChatGenerationRecord }, candidate, { ...request, model: candidate.model }, attemptNumber, markContent, race, newMessages, options),
    );
}

/**
 * One attempt: a `chat-completion-started` event when it is not the first, then the provider's text
 * (the first delta reaches the subscribers before the provider is pulled again); text that arrived
 * is delivered before whatever ends the generation. Returns `chat-completion-completed`.
 */
async function runChat(
  run: GenerationRun & { record: ChatGenerationRecord },
  candidate: ResolvedModel<ChatProvider>,
  request: ChatRequest,
  attemptNumber: number,
  markContent: () => void,
  race: AbortRace,
  newMessages: ChatMessage[],
  options: ChatRunOptions,
): Promise<UnnumberedGenerationEvent> {
  const { record } = run;
  const { provider, model } = candidate;
  if (attemptNumber > 1) {
    record.provider = provider.id;
    record.model = model;
    await run.emit({ type: 'chat-completion-started', provider: provider.id, model });
  }
  let finishReason: FinishReason = 'stop';
  let usage: Usage | undefined;
  const deltas = new DeltaCoalescer(options.deltaCoalesceMs, (text) => run.emit({ type: 'chat-token-delta', text }));
  try {
    const streamOptions = run.abort.streamOptions(options.deltaCoalesceMs);
    for await (const part of racedParts(provider.streamChat(request, streamOptions), race)) {
      if (part.type === 'text-delta') {
        if (part.text.length === 0) continue;
        markContent();
        const first = record.text.length === 0;
        record.text += part.text;
        await deltas.add(part.text);
        // The first token reaches the subscribers' sockets before the provider is pulled again.
        if (first) await nextEventLoopIteration();
      } else {
        finishReason = part.finishReason;
        usage = part.usage;
      }
    }
  } finally {
    // Text that arrived is delivered before whatever ends the generation (completion, failure, cancellation).
    await deltas.flush();
  }
  record.finishReason = finishReason;
  if (usage) record.usage = usage;
  if (record.conversationId !== undefined) {
    const now = new Date();
    await options.conversations.append(record.conversationId, [
      ...newMessages.map((message) => ({ ...message, createdAt: now })),
      { role: 'assistant', content: record.text, provider: provider.id, model, createdAt: now },
    ]);
  }
  return {
    type: 'chat-completion-completed',
    finishReason,
    ...(usage && { usage }),
    text: record.text,
    ...(record.conversationId !== undefined && { conversationId: record.conversationId }),
  };
}
