/**
 * What one Copilot turn sends (`docs/protocols.md` §5 step 4): in a Copilot conversation that
 * already holds the history, only the newest user message; in a new one, the whole chat as one
 * prompt, written as gpt4free's `format_prompt` writes it.
 */
import type { ChatMessage, ChatRequest } from '../provider.js';
import { digestReply, type CopilotConversations } from './copilot-conversations.js';

/**
 * Longest prompt that starts a conversation with history, characters (gpt4free caps the same
 * prompt at 10 000); the oldest messages that are not system messages are left out beyond it.
 */
export const MAX_PROMPT_CHARACTERS = 10_000;

/** What one turn sends, and where. */
export interface CopilotTurnPlan {
  /** The text of the `send` frame. */
  prompt: string;
  /** Copilot's `conversationId` to continue; absent = start a new conversation first. */
  continues?: string;
}

const ROLE_NAMES: Record<ChatMessage['role'], string> = { system: 'System', user: 'User', assistant: 'Assistant', tool: 'Tool' };

/**
 * The chat as one prompt: a lone message is its text; otherwise one `Role: text` line per message
 * with text (`System`, `User`, `Assistant`, `Tool`), then `Assistant:`. Beyond `maxCharacters`
 * the oldest messages that are neither system messages nor the last message are left out.
 */
export function formatCopilotPrompt(messages: readonly ChatMessage[], maxCharacters = MAX_PROMPT_CHARACTERS): string {
  const withText = messages.filter((message) => message.content !== '');
  if (withText.length === 1) return withText[0]!.content;
  const lines = withText.map((message) => `${ROLE_NAMES[message.role]}: ${message.content}`);
  const kept = lines.map((_, index) => index);
  let length = lines.reduce((sum, line) => sum + line.length + 1, 0) + 'Assistant:'.length;
  for (let position = 0; length > maxCharacters && position < kept.length - 1; ) {
    const index = kept[position]!;
    if (withText[index]!.role === 'system') {
      position++;
      continue;
    }
    length -= lines[index]!.length + 1;
    kept.splice(position, 1);
  }
  return `${kept.map((index) => lines[index]).join('\n')}\nAssistant:`;
}

/**
 * Plans a turn. With a gateway `conversationId` whose Copilot conversation is known and whose last
 * assistant message before the newest user message is the reply Copilot gave last in it (by
 * digest), the turn continues that conversation with the newest user message alone. Otherwise —
 * no conversation, a first turn, a forgotten entry, or a history another provider answered in —
 * it starts a new conversation with {@link formatCopilotPrompt} of all messages.
 */
export function planCopilotTurn(request: ChatRequest, conversations: CopilotConversations): CopilotTurnPlan {
  const { messages, conversationId } = request;
  const newest = messages.findLastIndex((message) => message.role === 'user');
  if (conversationId !== undefined && newest >= 0) {
    const known = conversations.get(conversationId);
    const previousReply = messages.slice(0, newest).findLast((message) => message.role === 'assistant');
    if (known && previousReply && digestReply(previousReply.content) === known.replyDigest) {
      return { prompt: messages[newest]!.content, continues: known.copilotConversationId };
    }
  }
  return { prompt: formatCopilotPrompt(messages) };
}
