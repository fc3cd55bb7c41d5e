/**
 * A new Copilot conversation (`docs/protocols.md` §5 step 1): `POST {site}/c/api/start` with the
 * web client's settings answers `{"currentConversationId": …}` and sets cookies that the session
 * sends from then on; a 401 means the browser session is not (any longer) valid.
 */
import { TimeoutAbort, describeError, readBoundedText, readHttpFailure, type ProviderErrors } from '../http-errors.js';
import { copilotStartReplySchema, type CopilotStartBody } from './copilot-api.js';
import type { CopilotEndpoints } from './copilot-endpoints.js';
import type { CopilotCredentials } from './copilot-session.js';

/** Largest reply of `POST /c/api/start` read, bytes. */
export const START_REPLY_LIMIT_BYTES = 256 * 1024;

/** What every start of one provider shares. */
export interface CopilotStartSettings {
  fetch: typeof fetch;
  /** The provider id, as messages name the upstream. */
  providerId: string;
  endpoints: CopilotEndpoints;
  /** Time the whole request may take, reply read included, ms. */
  timeoutMs: number;
  /** The time zone sent (an IANA name, e.g. `Europe/Berlin`). */
  timeZone: string;
  /** What to configure when the session is refused, for messages (see `CopilotSession.missingSessionAdvice`). */
  sessionAdvice: string;
}

/** A started conversation, and the cookies the reply set. */
export interface StartedCopilotConversation {
  /** Copilot's `conversationId`. */
  conversationId: string;
  /** The reply's `Set-Cookie` headers, one cookie each. */
  setCookieHeaders: string[];
}

/**
 * Starts a conversation with the session's headers ({@link CopilotEndpoints.headersFor}) and the
 * JSON body {@link CopilotStartBody}.
 * @param errors the provider's errors for this turn (the session's secrets redacted).
 * @param signal the caller's abort; the request is aborted with it and its reason is thrown.
 * @throws ProviderError `UNAUTHORIZED` (401) / `FORBIDDEN` (403), each with `statusCode` and a
 *   message naming what to configure; the code of any other non-2xx status (`readHttpFailure`);
 *   `UPSTREAM_TIMEOUT` after `timeoutMs` ms; `UPSTREAM_ERROR` when the site cannot be reached;
 *   `UPSTREAM_BAD_RESPONSE` for a reply without `currentConversationId` or larger than
 *   {@link START_REPLY_LIMIT_BYTES}; `UPSTREAM_CONNECTION_LOST` when the reply breaks.
 */
export async function startCopilotConversation(
  settings: CopilotStartSettings,
  credentials: CopilotCredentials,
  errors: ProviderErrors,
  signal: AbortSignal,
): Promise<StartedCopilotConversation> {
  const { providerId, endpoints, timeoutMs } = settings;
  signal.throwIfAborted();
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new TimeoutAbort(`no reply within ${timeoutMs} ms`)), timeoutMs);
  const where = 'POST /c/api/start';
  const fail = (error: unknown, lost: boolean) => {
    if (signal.aborted) return signal.reason;
    if (timeout.signal.aborted) return errors.error('UPSTREAM_TIMEOUT', `upstream ${providerId} did not answer ${where} within ${timeoutMs} ms`, { cause: error });
    const why = describeError(error) || 'network error';
    return lost
      ? errors.error('UPSTREAM_CONNECTION_LOST', `connection to upstream ${providerId} lost while reading ${where}: ${why}`, { cause: error })
      : errors.error('UPSTREAM_ERROR', `cannot reach upstream ${providerId}: ${why}`, { cause: error });
  };
  try {
    const body: CopilotStartBody = {
      timeZone: settings.timeZone,
      startNewConversation: true,
      teenSupportEnabled: true,
      correctPersonalizationSetting: true,
      performUserMerge: true,
      deferredDataUseCapable: true,
    };
    let response: Response;
    try {
      response = await settings.fetch(endpoints.startURL, {
        method: 'POST',
        headers: { ...endpoints.headersFor(credentials), Accept: 'application/json', 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        redirect: 'manual',
        signal: AbortSignal.any([signal, timeout.signal]),
      });
    } catch (error) {
      throw fail(error, false);
    }

    if (!response.ok) {
      const failure = await readHttpFailure(response);
      if (signal.aborted) throw signal.reason;
      if (failure.statusCode === 401 || failure.statusCode === 403) {
        const said = failure.upstreamMessage ? ` (${failure.upstreamMessage})` : '';
        const refusal =
          failure.statusCode === 401 ? 'the browser session is not valid' : 'the site refused the browser session (it may want a browser check first)';
        throw errors.error(failure.code, `upstream ${providerId} answered ${failure.statusCode}${said}: ${refusal}; ${settings.sessionAdvice}`, {
          statusCode: failure.statusCode,
        });
      }
      throw errors.httpFailure(failure);
    }

    let text: string;
    try {
      text = await readBoundedText(response.body, START_REPLY_LIMIT_BYTES + 1, { rethrow: true });
    } catch (error) {
      throw fail(error, true);
    }
    let conversationId: string | undefined;
    if (text.length <= START_REPLY_LIMIT_BYTES) {
      try {
        conversationId = copilotStartReplySchema.safeParse(JSON.parse(text)).data?.currentConversationId;
      } catch {
        // not JSON: reported below
      }
    }
    if (conversationId === undefined) {
      throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} answered ${where} without a currentConversationId`, { statusCode: response.status });
    }
    return { conversationId, setCookieHeaders: response.headers.getSetCookie() };
  } finally {
    clearTimeout(timer);
  }
}
