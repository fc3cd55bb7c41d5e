/**
 * The `copilot` provider: Microsoft Copilot's web chat, spoken as gpt4free's `Copilot` provider
 * speaks it (`docs/protocols.md` §5) — `POST /c/api/start` for a conversation, then one WebSocket
 * per turn (`copilot-chat-socket.ts`, `copilot-reply-reader.ts`, `stream-copilot-chat.ts`). It
 * needs a browser session (`copilot-session.ts`) and breaks whenever the site changes, so it is
 * off unless `COPILOT_ENABLED` is set.
 */
import type { ChatProvider, ModelDescriptor } from '../provider.js';
import type { CopilotMode } from './copilot-api.js';
import { CopilotConversations } from './copilot-conversations.js';
import { resolveCopilotEndpoints } from './copilot-endpoints.js';
import { CopilotSession } from './copilot-session.js';
import { streamCopilotChat, type CopilotChatSettings } from './stream-copilot-chat.js';

/** The provider id. */
export const COPILOT_PROVIDER_ID = 'copilot';

/**
 * The models, as gpt4free names them, each with the `mode` its turns send: `Copilot` (the default,
 * `chat`), `Think Deeper` (`reasoning`: its `chainOfThought` frames are streamed as reasoning) and
 * `Smart (GPT-5)` (`smart`).
 */
export const COPILOT_MODELS: ReadonlyArray<ModelDescriptor & { mode: CopilotMode }> = [
  { id: 'Copilot', capabilities: ['chat'], mode: 'chat' },
  { id: 'Think Deeper', capabilities: ['chat', 'reasoning'], mode: 'reasoning' },
  { id: 'Smart (GPT-5)', capabilities: ['chat'], mode: 'smart' },
];

/** Default largest HAR file read, bytes (64 MiB). */
export const DEFAULT_MAX_HAR_FILE_BYTES = 64 * 1024 * 1024;
/** Default largest frame accepted on the chat socket, bytes (8 MiB: image previews arrive as base64 frames). */
export const DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** Default most characters of text and reasoning one answer may hand on. */
export const DEFAULT_MAX_REPLY_CHARACTERS = 1_000_000;

/** Settings of {@link createCopilotProvider}. Durations in ms. */
export interface CopilotProviderOptions {
  /** The site, e.g. `https://copilot.microsoft.com` (a trailing `/` is ignored); its WebSocket is the same host with `ws(s)`. */
  baseURL: string;
  /** A signed-in session's access token. Never logged or put in a message. */
  accessToken?: string;
  /** A `Cookie` header of the site, at least `__Host-copilot-anon` for anonymous use. Never logged or put in a message. */
  cookies?: string;
  /** A HAR export of the site's requests from a browser, read on first use and again when it changes. */
  harFile?: string;
  /** `x-useridentitytype` of a signed-in session (e.g. `google`), when the HAR file does not give it. */
  userIdentityType?: string;
  /** Time `POST /c/api/start` and the socket's opening handshake may each take, ms. */
  connectTimeoutMs: number;
  /** Longest wait for the answer's first frame and between two frames, ms. */
  idleTimeoutMs: number;
  /** Most gateway conversations whose Copilot conversation is remembered. */
  maxConversations: number;
  /** A remembered conversation unused for this long is forgotten, ms. */
  conversationIdleMs: number;
  /** Largest HAR file read, bytes. Default {@link DEFAULT_MAX_HAR_FILE_BYTES}. */
  maxHarFileBytes?: number;
  /** Largest frame accepted, bytes. Default {@link DEFAULT_MAX_FRAME_BYTES}. */
  maxFrameBytes?: number;
  /** Most characters of text and reasoning one answer may hand on. Default {@link DEFAULT_MAX_REPLY_CHARACTERS}. */
  maxReplyCharacters?: number;
}

/** Injectable dependencies of {@link createCopilotProvider}. */
export interface CopilotProviderDependencies {
  /** The fetch implementation of `POST /c/api/start`; defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** The clock of the conversation map, ms since the epoch; defaults to `Date.now`. */
  now?: () => number;
  /** The time zone sent with `POST /c/api/start`; defaults to this machine's. */
  timeZone?: string;
}

/**
 * Creates the `copilot` provider (`docs/protocols.md` §5): id `copilot`, label `Microsoft Copilot`,
 * capability `chat`.
 *
 * - `listModels()` returns {@link COPILOT_MODELS} (`Copilot` first, the default), never asking the
 *   network. Tools, images and JSON replies are not among their capabilities, so requests needing
 *   them are refused by routing (`UNSUPPORTED_INPUT`); `reasoningEffort` routes to `Think Deeper`,
 *   whose effort Copilot does not take.
 * - `checkAvailability()` is available when the session has cookies or a token (the HAR file is
 *   read for that), else unavailable with what to configure as the reason. The site is not asked.
 * - `streamChat(request, { signal })` runs one turn ({@link streamCopilotChat}): `text-delta` and
 *   `reasoning-delta` parts, then `finish` (`stop`). A request's `conversationId` continues its
 *   Copilot conversation with the newest user message alone; without one, each turn starts a new
 *   conversation with the whole chat as its prompt. It throws `ProviderError`: `UNAUTHORIZED` with
 *   no session, a refused one (401) or a missing `__Host-copilot-anon` cookie, `FORBIDDEN` (403),
 *   `UPSTREAM_CONNECTION_LOST` when the socket closes before `done`, `UPSTREAM_ERROR` for an
 *   `error` frame or an unreachable site, `UPSTREAM_TIMEOUT` past `connectTimeoutMs` or
 *   `idleTimeoutMs`, `UPSTREAM_BAD_RESPONSE` for frames it cannot read or that are too large.
 *   Messages never hold cookies or tokens. Aborting `signal` closes the request or socket at once
 *   and the iterator throws its reason.
 *
 * The conversation map lives in this process (at most `maxConversations` entries, each forgotten
 * after `conversationIdleMs` ms unused).
 */
export function createCopilotProvider(options: CopilotProviderOptions, dependencies: CopilotProviderDependencies = {}): ChatProvider {
  const endpoints = resolveCopilotEndpoints(options.baseURL);
  const session = new CopilotSession({
    providerId: COPILOT_PROVIDER_ID,
    siteURL: endpoints.siteURL,
    ...(options.accessToken !== undefined && { accessToken: options.accessToken }),
    ...(options.cookies !== undefined && { cookies: options.cookies }),
    ...(options.harFile !== undefined && { harFile: options.harFile }),
    ...(options.userIdentityType !== undefined && { userIdentityType: options.userIdentityType }),
    maxHarFileBytes: options.maxHarFileBytes ?? DEFAULT_MAX_HAR_FILE_BYTES,
  });
  const sessionAdvice = session.missingSessionAdvice();
  const settings: CopilotChatSettings = {
    providerId: COPILOT_PROVIDER_ID,
    session,
    conversations: new CopilotConversations({
      maxEntries: options.maxConversations,
      idleMs: options.conversationIdleMs,
      ...(dependencies.now && { now: dependencies.now }),
    }),
    endpoints,
    start: {
      fetch: dependencies.fetch ?? globalThis.fetch,
      providerId: COPILOT_PROVIDER_ID,
      endpoints,
      timeoutMs: options.connectTimeoutMs,
      timeZone: dependencies.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
      sessionAdvice,
    },
    socket: {
      providerId: COPILOT_PROVIDER_ID,
      connectTimeoutMs: options.connectTimeoutMs,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      sessionAdvice,
    },
    modes: Object.fromEntries(COPILOT_MODELS.map((model) => [model.id, model.mode])),
    idleTimeoutMs: options.idleTimeoutMs,
    maxReplyCharacters: options.maxReplyCharacters ?? DEFAULT_MAX_REPLY_CHARACTERS,
  };

  return {
    id: COPILOT_PROVIDER_ID,
    label: 'Microsoft Copilot',
    capabilities: ['chat'],
    listModels: async () => COPILOT_MODELS.map(({ id, capabilities }) => ({ id, capabilities: [...capabilities] })),
    checkAvailability: () => session.availability(),
    streamChat: (request, streamOptions) => streamCopilotChat(settings, request, streamOptions),
  };
}
