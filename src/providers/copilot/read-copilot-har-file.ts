/**
 * A browser's session on Copilot, taken from a HAR export of its network log (HAR 1.2,
 * http://www.softwareishard.com/blog/har-12-spec/), as gpt4free's `readHAR` does for its Copilot
 * provider (`docs/protocols.md` §5): the cookies its requests to the site sent, and — for a
 * signed-in session — the access token and identity type of its `/c/api/…` requests.
 */
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { parseCookieHeader, mergeCookies, type CookieMap } from './copilot-cookies.js';

/** A name/value pair of a HAR request (headers, cookies, query parameters). */
const harPairSchema = z.looseObject({ name: z.string(), value: z.string() });

/** The fields of a HAR file this reads: each entry's request URL, headers, cookies and query. */
const harFileSchema = z.looseObject({
  log: z.looseObject({
    entries: z.array(
      z.looseObject({
        request: z.looseObject({
          url: z.string(),
          headers: z.array(harPairSchema).nullish(),
          cookies: z.array(harPairSchema).nullish(),
          queryString: z.array(harPairSchema).nullish(),
        }),
      }),
    ),
  }),
});

/** What a HAR file holds of a Copilot session; every part may be missing. */
export interface CopilotHarSession {
  /** The cookies of the site's last request that sent any. */
  cookies: CookieMap;
  /** A signed-in session's token: `Authorization: Bearer …` or the `accessToken` query parameter of a `/c/api/…` request. */
  accessToken?: string;
  /** `x-useridentitytype` (header) or `X-UserIdentityType` (query parameter) of a `/c/api/…` request. */
  userIdentityType?: string;
  /** The browser's `User-Agent`. */
  userAgent?: string;
}

/** A HAR file that cannot be used; the message names the file and why, never its content. */
export class HarFileError extends Error {
  override readonly name = 'HarFileError';
}

/** The value of the pair named `name` (any case) in `pairs`, if there is one. */
function valueOf(pairs: readonly { name: string; value: string }[] | null | undefined, name: string): string | undefined {
  const lower = name.toLowerCase();
  return pairs?.find((pair) => pair.name.toLowerCase() === lower)?.value;
}

/** Whether `url` is a request to the site `siteHost` (http(s) or its WebSocket, ws(s)). */
function isSiteRequest(url: URL, siteHost: string): boolean {
  return url.host === siteHost && ['https:', 'http:', 'wss:', 'ws:'].includes(url.protocol);
}

/**
 * Reads the Copilot session of a HAR file: the entries whose request went to `siteURL`'s host
 * (`https://…` and the chat socket's `wss://…`); later entries win.
 * @param path the HAR file.
 * @param siteURL the site, e.g. `https://copilot.microsoft.com`.
 * @param maxBytes the largest file read, bytes.
 * @throws HarFileError when the file cannot be read, is larger than `maxBytes`, is not JSON, or has
 *   no `log.entries` (the message never quotes the file's content).
 */
export async function readCopilotHarFile(path: string, siteURL: string, maxBytes: number): Promise<CopilotHarSession> {
  let text: string;
  try {
    const { size } = await stat(path);
    if (size > maxBytes) {
      throw new HarFileError(`COPILOT_HAR_FILE ${path} is larger than ${maxBytes} bytes: export only the requests to ${siteURL}`);
    }
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof HarFileError) throw error;
    throw new HarFileError(`COPILOT_HAR_FILE ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text, which holds the session: never repeated.
    throw new HarFileError(`COPILOT_HAR_FILE ${path} is not JSON (a HAR export is)`);
  }
  const parsed = harFileSchema.safeParse(json);
  if (!parsed.success) throw new HarFileError(`COPILOT_HAR_FILE ${path} is not a HAR file (it has no log.entries list of requests)`);

  const siteHost = new URL(siteURL).host;
  const session: CopilotHarSession = { cookies: new Map() };
  for (const { request } of parsed.data.log.entries) {
    if (!URL.canParse(request.url)) continue;
    const url = new URL(request.url);
    if (!isSiteRequest(url, siteHost)) continue;
    const cookies = request.cookies?.length
      ? mergeCookies(new Map(), new Map(request.cookies.map((cookie) => [cookie.name, cookie.value])))
      : parseCookieHeader(valueOf(request.headers, 'cookie') ?? '');
    if (cookies.size > 0) session.cookies = cookies;
    const userAgent = valueOf(request.headers, 'user-agent');
    if (userAgent) session.userAgent = userAgent;
    if (!url.pathname.startsWith('/c/api/')) continue;
    const authorization = valueOf(request.headers, 'authorization')?.match(/^Bearer\s+(\S+)$/i)?.[1];
    const accessToken = authorization ?? url.searchParams.get('accessToken') ?? valueOf(request.queryString, 'accessToken');
    if (accessToken) session.accessToken = accessToken;
    const userIdentityType = valueOf(request.headers, 'x-useridentitytype') ?? url.searchParams.get('X-UserIdentityType') ?? undefined;
    if (userIdentityType) session.userIdentityType = userIdentityType;
  }
  return session;
}
