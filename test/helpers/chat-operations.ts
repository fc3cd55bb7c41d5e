/** The GraphQL operations the chat tests send, and checks every chat event stream must pass. */
import { expect } from 'vitest';

/** Selection of every chat event field. */
export const CHAT_EVENT_SELECTION = `
  __typename
  ... on GenerationEvent { generationId sequence }
  ... on ChatCompletionStarted { provider model }
  ... on ChatTokenDelta { text }
  ... on ChatCompletionCompleted { finishReason text usage { promptTokens completionTokens totalTokens } }
  ... on GenerationFailed { error { code message provider } }
  ... on GenerationCancelled { reason }
`;

export const CHAT_COMPLETION_SUBSCRIPTION = `subscription Chat($input: ChatCompletionInput!) {
  chatCompletion(input: $input) { ${CHAT_EVENT_SELECTION} }
}`;

export const CHAT_COMPLETION_EVENTS_SUBSCRIPTION = `subscription Events($generationId: ID!, $after: Int) {
  chatCompletionEvents(generationId: $generationId, after: $after) { ${CHAT_EVENT_SELECTION} }
}`;

export const START_CHAT_COMPLETION = `mutation Start($input: ChatCompletionInput!) {
  startChatCompletion(input: $input) { id status model provider createdAt text }
}`;

export const CANCEL_GENERATION = `mutation Cancel($id: ID!) {
  cancelGeneration(id: $id) { id status finishedAt }
}`;

export const GENERATION_QUERY = `query Generation($id: ID!) {
  generation(id: $id) {
    __typename id status model provider createdAt finishedAt
    ... on ChatGeneration { text finishReason usage { promptTokens completionTokens totalTokens } error { code message provider } }
  }
}`;

/** One chat event as selected by `CHAT_EVENT_SELECTION`. */
export interface ChatEvent {
  __typename: string;
  generationId: string;
  sequence: number;
  provider?: string;
  model?: string;
  text?: string;
  finishReason?: string;
  usage?: { promptTokens: number | null; completionTokens: number | null; totalTokens: number | null } | null;
  error?: { code: string; message: string; provider: string | null };
  reason?: string | null;
}

/**
 * Asserts the invariants of a whole event stream: sequences contiguous from `firstSequence`, one
 * ChatCompletionStarted first (when starting from 1), exactly one terminal event, last; completed
 * text equal to the concatenated deltas. Returns the concatenated delta text.
 */
export function expectWellFormedChatEvents(events: ChatEvent[], firstSequence = 1): string {
  expect(events.length).toBeGreaterThan(0);
  expect(events.map((event) => event.sequence)).toEqual(events.map((_, index) => firstSequence + index));
  const generationIds = new Set(events.map((event) => event.generationId));
  expect(generationIds.size).toBe(1);
  if (firstSequence === 1) expect(events[0]!.__typename).toBe('ChatCompletionStarted');
  const terminal = ['ChatCompletionCompleted', 'GenerationFailed', 'GenerationCancelled'];
  const terminalIndexes = events.flatMap((event, index) => (terminal.includes(event.__typename) ? [index] : []));
  expect(terminalIndexes).toEqual([events.length - 1]);
  const text = events
    .filter((event) => event.__typename === 'ChatTokenDelta')
    .map((event) => event.text)
    .join('');
  const last = events[events.length - 1]!;
  if (last.__typename === 'ChatCompletionCompleted' && firstSequence === 1) expect(last.text).toBe(text);
  return text;
}
