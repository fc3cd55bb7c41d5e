/**
 * The browser session the `copilot` provider speaks for (`docs/protocols.md` §5): cookies and, when
 * signed in, an access token, from configuration (`COPILOT_COOKIES`, `COPILOT_ACCESS_TOKEN`) and
 * from a HAR export (`COPILOT_HAR_FILE`, re-read when the file changes), plus the cookies
 * `POST /c/api/start` sets, which later requests send back.
 */
import { stat } from 'node:fs/promises';
import { createProviderErrors, type ProviderErrors } from '../http-errors.js';
import type { Availability } from '../provider.js';
import { applySetCookieHeaders, mergeCookies, parseCookieHeader, type CookieMap } from './copilot-cookies.js';
import { HarFileError, readCopilotHarFile, type CopilotHarSession } from './read-copilot-har-file.js';

/** The cookie of an anonymous Copilot session; without it (and without a token) the site refuses to chat (§5). */
export const ANONYMOUS_SESSION_COOKIE = '__Host-copilot-anon';

/** Shortest cookie value treated as a secret to redact from messages, characters (shorter ones are flags like `1`). */
const MIN_SECRET_CHARACTERS = 8;

/** Settings of a {@link CopilotSession}. */
export interface CopilotSessionOptions {
  /** The provider id, as errors name it. */
  providerId: string;
  /** The site, e.g. `https://copilot.microsoft.com`. */
  siteURL: string;
  /** A signed-in session's access token; wins over the HAR file's. */
  accessToken?: string;
  /** A `Cookie` header of the site (`name=value; …`); its cookies win over the HAR file's. */
  cookies?: string;
  /** A HAR export of the site's requests. */
  harFile?: string;
  /** `x-useridentitytype` of a signed-in session (e.g. `google`); wins over the HAR file's. */
  userIdentityType?: string;
  /** Largest HAR file read, bytes. */
  maxHarFileBytes: number;
}

/** What one turn sends: the session's cookies and token, and every value that must never appear in a message. */
export interface CopilotCredentials {
  cookies: CookieMap;
  accessToken?: string;
  userIdentityType?: string;
  /** The browser's `User-Agent` from the HAR file, when it has one. */
  userAgent?: string;
  /** The token and the cookie values (of at least 8 characters), for redaction. */
  secrets: string[];
}

/** The HAR file as last read, and the file's size and time of change then. */
interface ReadHarFile {
  session: CopilotHarSession;
  size: number;
  mtimeMs: number;
}

/** The session of one provider; see the module comment. */
export class CopilotSession {
  private readonly configuredCookies: CookieMap;
  /**
   * The session's cookies once a `POST /c/api/start` reply set or removed some (the HAR file's and
   * the configured ones they started from included), until the HAR file changes.
   */
  private jar: CookieMap | undefined;
  /** The cookies {@link credentials} gave last, which {@link learn} starts from when there is no jar yet. */
  private lastCookies: CookieMap | undefined;
  private harFile: ReadHarFile | undefined;
  private readonly errors: ProviderErrors;

  constructor(private readonly options: CopilotSessionOptions) {
    this.configuredCookies = parseCookieHeader(options.cookies ?? '');
    this.errors = createProviderErrors(options.providerId);
  }

  /** What to configure when there is no session, for messages. */
  missingSessionAdvice(): string {
    return (
      `set COPILOT_COOKIES (the Cookie header your browser sends to ${this.options.siteURL}, with ${ANONYMOUS_SESSION_COOKIE}), ` +
      "COPILOT_ACCESS_TOKEN (a signed-in session's token) or COPILOT_HAR_FILE (a HAR export of the site from the browser's network tab)"
    );
  }

  /**
   * The credentials of the next turn: the HAR file's session (re-read when its size or time of
   * change differs) with the configured cookies and token over it — or, once a start reply changed
   * the cookies, the cookies as it left them.
   * @throws ProviderError `UNAUTHORIZED` when the HAR file cannot be used, or when there are neither
   *   cookies nor a token; the message names what to configure.
   */
  async credentials(): Promise<CopilotCredentials> {
    const har = await this.readHarFile();
    const cookies = new Map(this.jar ?? mergeCookies(har?.cookies ?? new Map(), this.configuredCookies));
    this.lastCookies = cookies;
    const accessToken = this.options.accessToken ?? har?.accessToken;
    if (cookies.size === 0 && !accessToken) {
      const harFile = this.options.harFile === undefined ? '' : ` (COPILOT_HAR_FILE ${this.options.harFile} holds no request to ${this.options.siteURL} with cookies or a token)`;
      throw this.errors.error('UNAUTHORIZED', `${this.options.providerId} has no browser session${harFile}: ${this.missingSessionAdvice()}`);
    }
    const userIdentityType = this.options.userIdentityType ?? har?.userIdentityType;
    const secrets = [...cookies.values()].filter((value) => value.length >= MIN_SECRET_CHARACTERS);
    if (accessToken) secrets.push(accessToken);
    return {
      cookies,
      ...(accessToken && { accessToken }),
      ...(userIdentityType && { userIdentityType }),
      ...(har?.userAgent && { userAgent: har.userAgent }),
      secrets,
    };
  }

  /**
   * Applies `Set-Cookie` headers (of `POST /c/api/start`) to the session's cookies, for the
   * following requests: new cookies are added, expired ones removed (configured ones too).
   */
  learn(setCookieHeaders: readonly string[]): void {
    if (setCookieHeaders.length === 0) return;
    const jar = new Map(this.jar ?? this.lastCookies ?? this.configuredCookies);
    applySetCookieHeaders(jar, setCookieHeaders);
    this.jar = jar;
  }

  /**
   * Available when {@link credentials} would succeed; otherwise its message is the reason. The site
   * itself is not asked (a probe would cost a conversation). Never throws.
   */
  async availability(): Promise<Availability> {
    try {
      await this.credentials();
      return { available: true };
    } catch (error) {
      return { available: false, reason: (error as Error).message };
    }
  }

  /** The HAR file's session (none without `harFile`), read again when the file changed. */
  private async readHarFile(): Promise<CopilotHarSession | undefined> {
    const path = this.options.harFile;
    if (path === undefined) return undefined;
    try {
      const { size, mtimeMs } = await stat(path);
      if (this.harFile && this.harFile.size === size && this.harFile.mtimeMs === mtimeMs) return this.harFile.session;
      const session = await readCopilotHarFile(path, this.options.siteURL, this.options.maxHarFileBytes);
      // A new export is a new session: cookies learned for the old one go.
      this.jar = undefined;
      this.harFile = { session, size, mtimeMs };
      return session;
    } catch (error) {
      this.harFile = undefined;
      const why = error instanceof HarFileError ? error.message : `COPILOT_HAR_FILE ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
      throw this.errors.error('UNAUTHORIZED', `${this.options.providerId} has no usable browser session: ${why}`);
    }
  }
}
