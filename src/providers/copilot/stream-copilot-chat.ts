/**
 * One Copilot chat turn (`docs/protocols.md` §5): the session's credentials, a conversation
 * (continued, or started with `POST /c/api/start`), the chat WebSocket with one `send` frame, and
 * the answer's frames read into stream parts until `done` and the frames that follow it.
 */
import { randomUUID } from 'node:crypto';
import { createProviderErrors, type ProviderErrors } from '../http-errors.js';
import type { ChatRequest, ChatStreamPart, StreamOptions } from '../provider.js';
import type { CopilotMode } from './copilot-api.js';
import { openCopilotChatSocket, type CopilotSocketEvent, type CopilotSocketSettings } from './copilot-chat-socket.js';
import { digestReply, type CopilotConversations } from './copilot-conversations.js';
import type { CopilotEndpoints } from './copilot-endpoints.js';
import { planCopilotTurn } from './copilot-prompt.js';
import { CopilotReplyReader } from './copilot-reply-reader.js';
import { ANONYMOUS_SESSION_COOKIE, type CopilotSession } from './copilot-session.js';
import { startCopilotConversation, type CopilotStartSettings } from './start-copilot-conversation.js';

/**
 * How long frames are still read after `done` when neither `suggestedFollowups` nor the close
 * comes, ms (§5: a few frames may follow within about a second).
 */
export const AFTER_DONE_MS = 1_000;

/** What one turn needs of its provider. */
export interface CopilotChatSettings {
  providerId: string;
  session: CopilotSession;
  conversations: CopilotConversations;
  endpoints: CopilotEndpoints;
  start: CopilotStartSettings;
  socket: CopilotSocketSettings;
  /** The mode of each model id. */
  modes: Readonly<Record<string, CopilotMode>>;
  /** Longest wait for the first frame and between two frames, ms. */
  idleTimeoutMs: number;
  /** Most characters of text and reasoning one answer may hand on. */
  maxReplyCharacters: number;
}

/**
 * Streams one turn: `text-delta` and `reasoning-delta` parts as frames arrive (see
 * {@link CopilotReplyReader}), then one `finish` part (`stop`). A gateway `conversationId` is
 * continued in its Copilot conversation when {@link planCopilotTurn} says so (the newest user
 * message alone), else a new conversation is started with the whole chat; a completed turn records
 * the conversation and a digest of its reply, a failed or cancelled one forgets it (the next turn
 * starts afresh from the history the gateway keeps).
 * @throws ProviderError `UNAUTHORIZED` without a session, for a refused one (401, at the start or
 *   the socket) and when the session has no `__Host-copilot-anon` cookie after the start (and no
 *   token), each message naming what to configure; the codes of
 *   {@link startCopilotConversation} and {@link openCopilotChatSocket};
 *   `UPSTREAM_TIMEOUT` when no frame comes for `idleTimeoutMs` ms before `done`;
 *   `UPSTREAM_CONNECTION_LOST` when the socket closes before `done`; `UPSTREAM_BAD_RESPONSE` for a
 *   frame larger than the socket allows, a binary frame, or the reader's reasons; `UPSTREAM_ERROR`
 *   for an `error` frame. Messages never hold the session's cookies or token. When `options.signal`
 *   aborts, the request or socket is closed at once and the iterator throws its reason.
 */
export async function* streamCopilotChat(settings: CopilotChatSettings, request: ChatRequest, options: StreamOptions): AsyncGenerator<ChatStreamPart> {
  const { providerId, session, conversations, endpoints } = settings;
  const signal = options.signal;
  signal.throwIfAborted();
  const mode = settings.modes[request.model];
  if (mode === undefined) {
    throw createProviderErrors(providerId).error('UPSTREAM_NOT_FOUND', `${providerId} has no model "${request.model}" (its models: ${Object.keys(settings.modes).join(', ')})`);
  }
  let credentials = await session.credentials();
  let errors: ProviderErrors = createProviderErrors(providerId, credentials.secrets);
  const plan = planCopilotTurn(request, conversations);
  let completed = false;
  try {
    let copilotConversationId = plan.continues;
    if (copilotConversationId === undefined) {
      const started = await startCopilotConversation(settings.start, credentials, errors, signal);
      session.learn(started.setCookieHeaders);
      credentials = await session.credentials();
      errors = createProviderErrors(providerId, credentials.secrets);
      if (!credentials.accessToken && !credentials.cookies.has(ANONYMOUS_SESSION_COOKIE)) {
        throw errors.error(
          'UNAUTHORIZED',
          `upstream ${providerId} set no ${ANONYMOUS_SESSION_COOKIE} cookie, which anonymous use needs; ${session.missingSessionAdvice()}`,
        );
      }
      copilotConversationId = started.conversationId;
    }

    const socket = await openCopilotChatSocket(
      settings.socket,
      endpoints.chatSocketURL(randomUUID(), credentials),
      endpoints.headersFor(credentials),
      errors,
      signal,
    );
    try {
      await socket.send({ event: 'send', conversationId: copilotConversationId, content: [{ type: 'text', text: plan.prompt }], mode });
      const reader = new CopilotReplyReader(providerId, errors, settings.maxReplyCharacters);
      let readUntil = Number.POSITIVE_INFINITY;
      for (;;) {
        const waitMs = reader.isDone() ? Math.max(0, readUntil - Date.now()) : settings.idleTimeoutMs;
        const event: CopilotSocketEvent = await socket.receive(waitMs);
        if (signal.aborted) throw signal.reason;
        if (event.type === 'timeout') {
          if (reader.isDone()) break;
          throw errors.error('UPSTREAM_TIMEOUT', `upstream ${providerId} sent nothing for ${settings.idleTimeoutMs} ms (idle timeout)`);
        }
        if (event.type === 'closed') {
          if (reader.isDone()) break;
          throw closedEarly(errors, providerId, settings.socket.maxFrameBytes, event);
        }
        if (event.type === 'binary-frame') throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent a binary frame`);
        const wasDone = reader.isDone();
        const { parts, last } = reader.read(event.text);
        for (const part of parts) yield part;
        if (!wasDone && reader.isDone()) readUntil = Date.now() + AFTER_DONE_MS;
        if (last) {
          if (!reader.isDone()) throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} ended the answer without done`);
          break;
        }
      }
      completed = true;
      socket.close(true);
      if (request.conversationId !== undefined) {
        conversations.set(request.conversationId, { copilotConversationId, replyDigest: digestReply(reader.sentText()) });
      }
      yield { type: 'finish', finishReason: 'stop' };
    } finally {
      if (!completed) socket.close(false);
    }
  } finally {
    if (!completed && request.conversationId !== undefined) conversations.delete(request.conversationId);
  }
}

/** The error of a socket that closed before `done`. */
function closedEarly(errors: ProviderErrors, providerId: string, maxFrameBytes: number, event: Extract<CopilotSocketEvent, { type: 'closed' }>) {
  if ((event.error as NodeJS.ErrnoException | undefined)?.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || event.code === 1009) {
    return errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent a frame larger than ${maxFrameBytes} bytes`);
  }
  return errors.error('UPSTREAM_CONNECTION_LOST', `upstream ${providerId} closed the chat socket before the answer was done (close code ${event.code})`, {
    ...(event.error && { cause: event.error }),
  });
}
