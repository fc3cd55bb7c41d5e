/**
 * Where and how to call an OpenAI-compatible upstream (`docs/protocols.md` §2): the URLs of its
 * endpoints under the base URL, and the headers every request carries (the upstream's own headers
 * and the bearer key). What is sent and how replies read is elsewhere.
 */
import type { OpenAICompatibleUpstream } from './openai-compatible-upstream.js';

/** The endpoints of one upstream and the headers for them. */
export interface OpenAICompatibleEndpoints {
  /** The base URL without a trailing `/`. */
  baseURL: string;
  /** `POST {baseURL}/chat/completions`: a chat completion, streamed as server-sent events. */
  chatURL: string;
  /** `GET {baseURL}/models`: the model list (discovery and the availability probe). */
  modelsURL: string;
  /** `POST {baseURL}/images/generations`: images, answered once they exist. */
  imagesURL: string;
  /**
   * The headers of a request that accepts `accept`: the upstream's configured `headers`, then
   * `Authorization: Bearer <apiKey>` when there is a key.
   * @param apiKey a request's own key; defaults to the upstream's.
   */
  headersFor(accept: string, apiKey?: string): Record<string, string>;
  /** {@link headersFor} plus `Content-Type: application/json`, for a `POST` with a JSON body. */
  jsonPostHeadersFor(accept: string, apiKey?: string): Record<string, string>;
}

/** The endpoints of `upstream` (a trailing `/` of its `baseURL` is ignored). */
export function resolveOpenAICompatibleEndpoints(
  upstream: Pick<OpenAICompatibleUpstream, 'baseURL' | 'apiKey' | 'headers'>,
): OpenAICompatibleEndpoints {
  const baseURL = upstream.baseURL.replace(/\/+$/, '');
  const headersFor = (accept: string, apiKey = upstream.apiKey): Record<string, string> => {
    const headers: Record<string, string> = { Accept: accept, ...upstream.headers };
    if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
    return headers;
  };
  return {
    baseURL,
    chatURL: `${baseURL}/chat/completions`,
    modelsURL: `${baseURL}/models`,
    imagesURL: `${baseURL}/images/generations`,
    headersFor,
    jsonPostHeadersFor: (accept, apiKey) => ({ ...headersFor(accept, apiKey), 'Content-Type': 'application/json' }),
  };
}
