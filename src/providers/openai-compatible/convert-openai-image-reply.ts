/**
 * The reply of `POST {baseURL}/images/generations` (`docs/protocols.md` §2),
 * `{"data":[{"url"}|{"b64_json"}, "revised_prompt"?]}` (both shapes may mix in one reply), as the
 * gateway's {@link ProviderImage}s.
 */
import { extractErrorMessage, type ProviderErrors } from '../http-errors.js';
import type { ProviderImage } from '../provider.js';
import { openAIImageReplySchema, type OpenAIImageReply } from './openai-compatible-api.js';

/** `data:image/png;base64,` at the start of a base64 string (some servers send data URLs). */
const DATA_URL_PREFIX = /^data:([^;,]*)((?:;[^;,]*)*);base64,/i;

/**
 * Decodes base64 (standard or URL-safe alphabet, whitespace ignored, optionally a `data:` URL);
 * the MIME type when a data URL named one. Undefined when the text is not base64 or decodes to nothing.
 */
function decodeBase64Image(text: string): { data: Uint8Array; mimeType?: string } | undefined {
  let payload = text.trim();
  let mimeType: string | undefined;
  const prefix = DATA_URL_PREFIX.exec(payload);
  if (prefix) {
    mimeType = prefix[1]?.toLowerCase() || undefined;
    payload = payload.slice(prefix[0].length);
  }
  payload = payload.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) return undefined;
  const bytes = Buffer.from(payload, 'base64');
  if (bytes.byteLength === 0) return undefined;
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return mimeType ? { data, mimeType } : { data };
}

/** An http(s) URL (a relative one resolved against `baseURL`), or undefined. */
function resolveImageURL(text: string, baseURL: string): string | undefined {
  try {
    const url = new URL(text, `${baseURL}/`);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** What {@link convertOpenAIImageReply} needs of its upstream. */
export interface OpenAIImageReplyContext {
  /** The provider id, as messages name the upstream. */
  providerId: string;
  /** The base URL without a trailing `/`, which relative image URLs are resolved against. */
  baseURL: string;
  /** The provider's errors (messages redacted). */
  errors: ProviderErrors;
}

/** The images of a parsed reply, in order; throws UPSTREAM_BAD_RESPONSE for an unusable entry. */
function imagesOfReply(reply: OpenAIImageReply, context: OpenAIImageReplyContext): ProviderImage[] {
  const { providerId, errors } = context;
  return reply.data.map((entry, index) => {
    const image: ProviderImage = {};
    const base64 = entry.b64_json ?? (entry.url?.startsWith('data:') ? entry.url : undefined);
    if (base64) {
      const decoded = decodeBase64Image(base64);
      if (!decoded) {
        const field = entry.b64_json ? 'b64_json' : 'url';
        throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent invalid base64 in data.${index}.${field}`);
      }
      image.data = decoded.data;
      if (decoded.mimeType) image.mimeType = decoded.mimeType;
    }
    if (entry.url && !entry.url.startsWith('data:')) {
      const url = resolveImageURL(entry.url, context.baseURL);
      if (!url) throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an image URL that is not http(s) in data.${index}.url`);
      image.url = url;
    }
    if (entry.revised_prompt) image.revisedPrompt = entry.revised_prompt;
    return image;
  });
}

/**
 * The images of a 2xx reply's text, one per entry in reply order: `{ url, revisedPrompt }` for a
 * `url` (a relative URL is resolved against `baseURL`, a `data:` URL is decoded), or
 * `{ data, revisedPrompt }` with the decoded bytes for a `b64_json` (no `mimeType`: the bytes decide).
 * @param statusCode the reply's HTTP status, carried by the errors.
 * @throws ProviderError `UPSTREAM_ERROR` for a reply holding only `{"error":…}`, `UPSTREAM_BAD_RESPONSE`
 *   for a reply that is not JSON, has no images, an image with neither field, invalid base64 or a URL
 *   that is not http(s).
 */
export function convertOpenAIImageReply(text: string, statusCode: number, context: OpenAIImageReplyContext): ProviderImage[] {
  const { providerId, errors } = context;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    const trimmed = text.trim();
    const excerpt = trimmed.length > 200 ? `${trimmed.slice(0, 200)}…` : trimmed;
    throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an image reply that is not JSON: ${excerpt}`, { statusCode });
  }
  const parsed = openAIImageReplySchema.safeParse(json);
  if (!parsed.success) {
    const inBandError = typeof json === 'object' && json !== null && (json as { error?: unknown }).error;
    if (inBandError) {
      throw errors.error('UPSTREAM_ERROR', `upstream ${providerId} reported an error: ${extractErrorMessage(text) || 'unknown error'}`, { statusCode });
    }
    const issue = parsed.error.issues[0];
    const where = issue ? `${issue.path.join('.') || 'reply'}: ${issue.message}` : 'unexpected shape';
    throw errors.error('UPSTREAM_BAD_RESPONSE', `upstream ${providerId} sent an image reply of the wrong shape (${where})`, { statusCode });
  }
  return imagesOfReply(parsed.data, context);
}
