/**
 * The work of a chat generation: its candidates tried in order (see provider-fallback.ts), the
 * provider's text and reasoning streamed as coalesced `chat-token-delta` and `chat-reasoning-delta`
 * events, its tool calls as `chat-tool-call-delta` events, and the completed turn (tool calls
 * included) added to its conversation.
 */
import type { ConversationStore } from '../conversations/conversation-store.js';
import type { ResolvedModel } from '../providers/provider-registry.js';
import type { ChatMessage, ChatProvider, ChatRequest, ChatToolCall, FinishReason, Usage } from '../providers/provider.js';
import { DeltaCoalescer } from './delta-coalescer.js';
import type { UnnumberedGenerationEvent } from './generation-events.js';
import type { ChatGenerationRecord } from './generation-records.js';
import { racedParts, type AbortRace, type GenerationRun, type GenerationWork } from './generation-run.js';
import { nextEventLoopIteration } from './next-event-loop-iteration.js';
import { runWithFallback, type AttemptDetails, type FallbackOptions } from './provider-fallback.js';

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
    runWithFallback(run, candidates, options, (candidate, attemptNumber, markContent, traceHeaders) =>
      runChat(
        run as GenerationRun & { record: ChatGenerationRecord },
        candidate,
        { ...request, model: candidate.model },
        { attemptNumber, markContent, ...(traceHeaders && { traceHeaders }) },
        race,
        newMessages,
        options,
      ),
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
  { attemptNumber, markContent, traceHeaders }: AttemptDetails,
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
  // Text and reasoning are each coalesced (see DeltaCoalescer); switching from one kind to the other,
  // or to a tool call, sends what the other holds first, so events keep the order the model wrote.
  const deltas = new DeltaCoalescer(options.deltaCoalesceMs, (text) => run.emit({ type: 'chat-token-delta', text }));
  const reasoning = new DeltaCoalescer(options.deltaCoalesceMs, (text) => run.emit({ type: 'chat-reasoning-delta', text }));
  const toolCalls: ChatToolCall[] = [];
  try {
    const streamOptions = run.abort.streamOptions(options.deltaCoalesceMs, traceHeaders);
    for await (const part of racedParts(provider.streamChat(request, streamOptions), race)) {
      if (part.type === 'text-delta') {
        if (part.text.length === 0) continue;
        markContent();
        const first = record.text.length === 0;
        record.text += part.text;
        await reasoning.flush();
        await deltas.add(part.text);
        // The first token reaches the subscribers' sockets before the provider is pulled again.
        if (first) await nextEventLoopIteration();
      } else if (part.type === 'reasoning-delta') {
        if (part.text.length === 0) continue;
        markContent();
        record.reasoning = (record.reasoning ?? '') + part.text;
        await deltas.flush();
        await reasoning.add(part.text);
      } else if (part.type === 'tool-call-delta') {
        markContent();
        const call = (toolCalls[part.index] ??= { id: '', name: '', arguments: '' });
        if (part.id !== undefined) call.id = part.id;
        if (part.name !== undefined) call.name = part.name;
        call.arguments += part.argumentsDelta;
        record.toolCalls = toolCalls.filter(Boolean);
        await deltas.flush();
        await reasoning.flush();
        await run.emit({
          type: 'chat-tool-call-delta',
          index: part.index,
          ...(part.id !== undefined && { id: part.id }),
          ...(part.name !== undefined && { name: part.name }),
          argumentsDelta: part.argumentsDelta,
        });
      } else {
        finishReason = part.finishReason;
        usage = part.usage;
      }
    }
  } finally {
    // What arrived is delivered before whatever ends the generation (completion, failure, cancellation).
    await Promise.all([deltas.flush(), reasoning.flush()]);
  }
  const calls = toolCalls.filter(Boolean);
  record.finishReason = finishReason;
  if (usage) record.usage = usage;
  if (record.conversationId !== undefined) {
    const now = new Date();
    await options.conversations.append(record.conversationId, [
      ...newMessages.map(({ role, content, toolCalls: called, toolCallId }) => ({
        role,
        content,
        ...(called && { toolCalls: called }),
        ...(toolCallId !== undefined && { toolCallId }),
        createdAt: now,
      })),
      { role: 'assistant', content: record.text, ...(calls.length > 0 && { toolCalls: calls }), provider: provider.id, model, createdAt: now },
    ]);
  }
  return {
    type: 'chat-completion-completed',
    finishReason,
    ...(usage && { usage }),
    text: record.text,
    ...(calls.length > 0 && { toolCalls: calls }),
    ...(record.reasoning !== undefined && { reasoning: record.reasoning }),
    ...(record.conversationId !== undefined && { conversationId: record.conversationId }),
  };
}
