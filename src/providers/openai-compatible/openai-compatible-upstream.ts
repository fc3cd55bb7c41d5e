/**
 * The settings of one OpenAI-compatible upstream (`docs/protocols.md` §2), as the provider takes
 * them. The gateway's configuration holds a list of these; any object of this shape will do.
 */

/** One OpenAI-compatible upstream: where it is, how to authenticate, what it serves, and its timeouts. */
export interface OpenAICompatibleUpstream {
  /** Provider id used in requests, e.g. `groq`. Lowercase letters, digits, `-` and `_`. */
  id: string;
  /** Human-readable name; defaults to `id`. */
  label?: string;
  /** Base URL that `/chat/completions` and `/models` are appended to, e.g. `https://api.groq.com/openai/v1`. */
  baseURL: string;
  /** Sent as `Authorization: Bearer …`; never logged or returned in errors. */
  apiKey?: string;
  /** Model ids served; absent = discovered with `GET {baseURL}/models`. */
  models?: string[];
  /** Image model ids served through `POST {baseURL}/images/generations` (never discovered). */
  imageModels?: string[];
  /** Headers added to every upstream request. */
  headers?: Record<string, string>;
  /** Time allowed for the upstream's response headers, ms. */
  connectTimeoutMs: number;
  /** Longest silence allowed between two stream chunks, ms. */
  idleTimeoutMs: number;
  /** Time an image request may take until the upstream answers (it answers once the image exists), ms. */
  imageTimeoutMs?: number;
}
