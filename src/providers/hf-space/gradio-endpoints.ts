/**
 * Where and how to call a Gradio Space (`docs/protocols.md` §3): the URLs of its config, its call
 * API and its files under the space's base URL, and the headers every request carries.
 */

/** The endpoints of one space. */
export interface GradioEndpoints {
  /** The space's base URL without a trailing `/`. */
  baseURL: string;
  /** `GET {baseURL}/config`: Gradio's config, the availability probe. */
  configURL: string;
  /** `POST {baseURL}/call/{endpoint}`: step 1, answers the event id. */
  callURL: string;
  /** `GET {baseURL}/call/{endpoint}/{event_id}`: step 2, the result as server-sent events. */
  resultURL(eventId: string): string;
  /** Where the space serves a file of its output: a URL resolved against the base URL. */
  fileURLFromURL(url: string): string;
  /** Where the space serves a file of its output: a path, under `{baseURL}/gradio_api/file=`. */
  fileURLFromPath(path: string): string;
}

/** The endpoints of the space at `baseURL` (a trailing `/` is ignored) serving Gradio endpoint `endpoint`. */
export function resolveGradioEndpoints(space: { baseURL: string; endpoint: string }): GradioEndpoints {
  const baseURL = space.baseURL.replace(/\/+$/, '');
  const callURL = `${baseURL}/call/${space.endpoint}`;
  return {
    baseURL,
    configURL: `${baseURL}/config`,
    callURL,
    resultURL: (eventId) => `${callURL}/${encodeURIComponent(eventId)}`,
    fileURLFromURL: (url) => new URL(url, `${baseURL}/`).href,
    fileURLFromPath: (path) => `${baseURL}/gradio_api/file=${path}`,
  };
}

/** The headers of a request that accepts `accept`, with `Authorization: Bearer <token>` when there is a token. */
export function gradioHeadersFor(accept: string, token: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { Accept: accept };
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}
