/**
 * What the providers' `checkAvailability()` share: one `GET` probe of an upstream URL with a short
 * timeout, and the answer reused for a while with at most one probe in flight.
 */
import { describeError, ERROR_BODY_LIMIT_BYTES, extractErrorMessage, readBoundedText } from './http-errors.js';
import type { Availability } from './provider.js';

/** How long an availability answer is reused, ms. */
export const AVAILABILITY_CACHE_MS = 30_000;
/** Upper bound of an availability probe's (or a discovery request's) time, ms. */
export const PROBE_TIMEOUT_CAP_MS = 5_000;

/**
 * The timeout of a probe for a provider whose requests may wait `connectTimeoutMs` ms for response
 * headers: the smaller of that and {@link PROBE_TIMEOUT_CAP_MS}, ms.
 */
export function probeTimeoutFor(connectTimeoutMs: number): number {
  return Math.min(connectTimeoutMs, PROBE_TIMEOUT_CAP_MS);
}

/** What {@link sendProbe} got: the response (whatever its status), or why there is none. */
export type ProbeResult = { ok: true; response: Response } | { ok: false; reason: string };

/**
 * Sends `GET url` that must answer within `timeoutMs` ms. Never throws.
 * @returns `{ ok: true, response }` for any HTTP answer (the caller reads or cancels the body), or
 *   `{ ok: false, reason }` with `reason` = `GET <url> failed: no response within <timeoutMs> ms` on the
 *   timeout, else `GET <url> failed: <the error, or "network error">`. The reason is not redacted.
 */
export async function sendProbe(
  fetchImplementation: typeof fetch,
  url: string,
  options: { headers: Record<string, string>; timeoutMs: number },
): Promise<ProbeResult> {
  try {
    const response = await fetchImplementation(url, { method: 'GET', headers: options.headers, signal: AbortSignal.timeout(options.timeoutMs) });
    return { ok: true, response };
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    const why = timedOut ? `no response within ${options.timeoutMs} ms` : describeError(error) || 'network error';
    return { ok: false, reason: `GET ${url} failed: ${why}` };
  }
}

/**
 * Probes `GET url` (see {@link sendProbe}) and says why the upstream is unavailable, if it is.
 * @param options.isUnavailable whether an HTTP status means unavailable (e.g. `status >= 500`).
 * @returns undefined when the upstream answered a status that is not `isUnavailable` (the body is
 *   cancelled); else the reason: {@link sendProbe}'s when there was no answer, or
 *   `GET <url> failed: HTTP <status>[: <upstream message>]` (from at most {@link ERROR_BODY_LIMIT_BYTES}
 *   bytes of the body). Not redacted. Never throws.
 */
export async function probeUnavailability(
  fetchImplementation: typeof fetch,
  url: string,
  options: { headers: Record<string, string>; timeoutMs: number; isUnavailable: (status: number) => boolean },
): Promise<string | undefined> {
  const probe = await sendProbe(fetchImplementation, url, options);
  if (!probe.ok) return probe.reason;
  const { response } = probe;
  if (!options.isUnavailable(response.status)) {
    response.body?.cancel().catch(() => {});
    return undefined;
  }
  const message = extractErrorMessage(await readBoundedText(response.body, ERROR_BODY_LIMIT_BYTES));
  return `GET ${url} failed: HTTP ${response.status}${message ? `: ${message}` : ''}`;
}

/**
 * Wraps a load so its result is reused while fresh and concurrent callers share one load.
 * @param load produces the value; when it throws, every caller waiting on it gets the error and nothing is kept.
 * @param lifetimeMs how long a value is reused, ms, counted from when its load settled; it may depend on the value.
 * @returns the cached load: the kept value while fresh, else the load in flight, else a new load.
 */
export function reuseWhileFresh<Value>(load: () => Promise<Value>, lifetimeMs: (value: Value) => number): () => Promise<Value> {
  let cached: { value: Value; expiresAt: number } | undefined;
  let inFlight: Promise<Value> | undefined;
  return async () => {
    if (cached && cached.expiresAt > Date.now()) return cached.value;
    inFlight ??= load()
      .then((value) => {
        cached = { value, expiresAt: Date.now() + lifetimeMs(value) };
        return value;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
}

/**
 * A provider's `checkAvailability()` from its probe: the answer is reused for
 * {@link AVAILABILITY_CACHE_MS} ms, at most one probe runs at a time (concurrent callers share it),
 * and each caller gets its own copy of the answer.
 * @param probe checks the upstream; should not throw.
 * @param reasonForError the `reason` of the `{ available: false }` answered when `probe` throws all
 *   the same (that answer is not reused).
 * @returns `checkAvailability()`, which never throws.
 */
export function cacheAvailability(probe: () => Promise<Availability>, reasonForError: (error: unknown) => string): () => Promise<Availability> {
  const check = reuseWhileFresh(probe, () => AVAILABILITY_CACHE_MS);
  return async () => {
    try {
      return { ...(await check()) };
    } catch (error) {
      return { available: false, reason: reasonForError(error) };
    }
  };
}
