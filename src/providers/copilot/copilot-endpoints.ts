/**
 * Where and how to call Copilot (`docs/protocols.md` §5): `POST {site}/c/api/start`, the chat
 * WebSocket `{site as ws(s)}/c/api/chat?api-version=2&clientSessionId=…`, and the headers a browser
 * on the site sends (origin, referer, its cookies, a signed-in session's token).
 */
import { formatCookieHeader } from './copilot-cookies.js';
import type { CopilotCredentials } from './copilot-session.js';

/**
 * The `User-Agent` sent when the HAR file gives none: a current desktop browser's, since the site
 * serves browsers (gpt4free sends Chrome's).
 */
export const DEFAULT_USER_AGENT =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36';

/** The endpoints of one Copilot site and the headers for them. */
export interface CopilotEndpoints {
  /** The site without a trailing `/`, e.g. `https://copilot.microsoft.com`; also the `Origin` sent. */
  siteURL: string;
  /** `POST {siteURL}/c/api/start`: a new conversation. */
  startURL: string;
  /**
   * The chat WebSocket: `wss://{host}/c/api/chat?api-version=2&clientSessionId={clientSessionId}`
   * (`ws://` for an `http://` site), plus `&accessToken={token}` and `&X-UserIdentityType={type}`
   * for a signed-in session. It holds the token: never put it in a message or a log.
   */
  chatSocketURL(clientSessionId: string, credentials: CopilotCredentials): string;
  /**
   * The headers of every request: `Origin`, `Referer` (`{siteURL}/`), `User-Agent`, `Cookie` (when
   * there are cookies) and, with a token, `Authorization: Bearer …` and `x-useridentitytype` (when known).
   */
  headersFor(credentials: CopilotCredentials): Record<string, string>;
}

/** The endpoints of the site `siteURL` (a trailing `/` is ignored). */
export function resolveCopilotEndpoints(siteURL: string): CopilotEndpoints {
  const site = siteURL.replace(/\/+$/, '');
  const socketBase = site.replace(/^http/, 'ws');
  return {
    siteURL: site,
    startURL: `${site}/c/api/start`,
    chatSocketURL(clientSessionId, credentials) {
      const query = new URLSearchParams({ 'api-version': '2', clientSessionId });
      if (credentials.accessToken) {
        query.set('accessToken', credentials.accessToken);
        if (credentials.userIdentityType) query.set('X-UserIdentityType', credentials.userIdentityType);
      }
      return `${socketBase}/c/api/chat?${query.toString()}`;
    },
    headersFor(credentials) {
      const headers: Record<string, string> = {
        Origin: site,
        Referer: `${site}/`,
        'User-Agent': credentials.userAgent ?? DEFAULT_USER_AGENT,
      };
      if (credentials.cookies.size > 0) headers.Cookie = formatCookieHeader(credentials.cookies);
      if (credentials.accessToken) {
        headers.Authorization = `Bearer ${credentials.accessToken}`;
        if (credentials.userIdentityType) headers['x-useridentitytype'] = credentials.userIdentityType;
      }
      return headers;
    },
  };
}
