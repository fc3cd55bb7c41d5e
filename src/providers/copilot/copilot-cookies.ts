/**
 * Cookies of a Copilot browser session (`docs/protocols.md` §5): read from a `Cookie` header as a
 * browser sends it, written back as one, and updated from the `Set-Cookie` headers of
 * `POST /c/api/start`. Bounded as browsers bound them: at most {@link MAX_COOKIES} cookies, names
 * and values of at most {@link MAX_COOKIE_CHARACTERS} characters (larger ones are ignored).
 */

/** Most cookies kept for one session. */
export const MAX_COOKIES = 100;
/** Longest cookie name plus value kept, characters (browsers allow 4096 bytes). */
export const MAX_COOKIE_CHARACTERS = 4096;

/** Cookies by name, in the order first seen. */
export type CookieMap = Map<string, string>;

/** A name a `Cookie` header can carry: no separators, controls or spaces (RFC 6265 `token`). */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Sets `name` to `value` in `cookies` unless the pair is too large or the map is full. */
function put(cookies: CookieMap, name: string, value: string): void {
  if (!COOKIE_NAME.test(name) || name.length + value.length > MAX_COOKIE_CHARACTERS) return;
  if (!cookies.has(name) && cookies.size >= MAX_COOKIES) return;
  cookies.set(name, value);
}

/**
 * The cookies of a `Cookie` header, `a=1; b=2` → `{a: '1', b: '2'}` (spaces around pairs ignored;
 * a pair without `=` or with an invalid name is skipped; a later pair of the same name wins).
 */
export function parseCookieHeader(header: string): CookieMap {
  const cookies: CookieMap = new Map();
  for (const pair of header.split(';')) {
    const separator = pair.indexOf('=');
    if (separator <= 0) continue;
    put(cookies, pair.slice(0, separator).trim(), pair.slice(separator + 1).trim());
  }
  return cookies;
}

/** `{a: '1', b: '2'}` → `a=1; b=2`; `''` when there are none. */
export function formatCookieHeader(cookies: ReadonlyMap<string, string>): string {
  return [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
}

/** A copy of `base` with each of `overrides` set over it (within the bounds). */
export function mergeCookies(base: ReadonlyMap<string, string>, ...overrides: ReadonlyMap<string, string>[]): CookieMap {
  const merged: CookieMap = new Map(base);
  for (const cookies of overrides) for (const [name, value] of cookies) put(merged, name, value);
  return merged;
}

/**
 * Applies `Set-Cookie` headers (one cookie each: `name=value; Path=/; Max-Age=…; …`) to `cookies`:
 * a cookie is set, or removed when its `Max-Age` is 0 or less or its `Expires` date has passed.
 * Attributes other than those two are not kept (every cookie is sent back to the one site).
 * @param now the current time, ms since the epoch.
 */
export function applySetCookieHeaders(cookies: CookieMap, setCookieHeaders: readonly string[], now = Date.now()): void {
  for (const header of setCookieHeaders) {
    const [pair = '', ...attributes] = header.split(';');
    const separator = pair.indexOf('=');
    if (separator <= 0) continue;
    const name = pair.slice(0, separator).trim();
    const value = pair.slice(separator + 1).trim();
    let expired = false;
    for (const attribute of attributes) {
      const [key = '', ...rest] = attribute.split('=');
      const attributeValue = rest.join('=').trim();
      const lowerKey = key.trim().toLowerCase();
      if (lowerKey === 'max-age' && /^-?\d+$/.test(attributeValue)) expired = Number(attributeValue) <= 0;
      else if (lowerKey === 'expires' && !attributes.some((other) => other.trim().toLowerCase().startsWith('max-age='))) {
        const expires = Date.parse(attributeValue);
        expired = Number.isFinite(expires) && expires <= now;
      }
    }
    if (expired) cookies.delete(name);
    else put(cookies, name, value);
  }
}
