/**
 * What a server says about a file before it is downloaded: its size and, from the Hugging Face
 * Hub, its SHA-256 (`docs/protocols.md` §7). The Hub answers `HEAD …/resolve/<revision>/<file>` for
 * a file kept in Git LFS with a redirect to its storage that carries `X-Linked-Size` and
 * `X-Linked-Etag` (the SHA-256 of the content, quoted), as huggingface_hub's
 * `get_hf_file_metadata` reads them
 * (https://github.com/huggingface/huggingface_hub/blob/main/src/huggingface_hub/file_download.py).
 */

/** A file's size and checksum, as far as the server gave them. */
export interface RemoteFileMetadata {
  /** Bytes, when the server said. */
  size?: number;
  /** Lower-case hex SHA-256, when the server gave one (only Hub files in LFS do). */
  sha256?: string;
}

/** The file cannot be reached or described: the message is one line naming the URL and why. */
export class RemoteFileError extends Error {
  override readonly name = 'RemoteFileError';
}

/** Redirects followed within the server (relative `Location`s, as the Hub uses for renamed repositories). */
const MAX_RELATIVE_REDIRECTS = 5;

/**
 * Sends `HEAD url` (and follows relative redirects) and reads the file's size and SHA-256.
 * @param options.timeoutMs bound of the whole exchange, ms.
 * @param options.token sent as `Authorization: Bearer …` (gated or private Hub repositories).
 * @param options.signal aborts the exchange.
 * @throws RemoteFileError when nothing answers in time, or the answer is an error status (401, 403, 404, 5xx).
 */
export async function fetchRemoteFileMetadata(
  url: string,
  options: { timeoutMs: number; token?: string; signal?: AbortSignal },
): Promise<RemoteFileMetadata> {
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])]);
  const headers: Record<string, string> = { 'accept-encoding': 'identity', ...(options.token && { authorization: `Bearer ${options.token}` }) };
  let current = url;
  for (let redirects = 0; ; redirects++) {
    let response: Response;
    try {
      response = await fetch(current, { method: 'HEAD', headers, redirect: 'manual', signal });
    } catch (error) {
      const timedOut = signal.aborted && (signal.reason as Error | undefined)?.name === 'TimeoutError';
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = timedOut ? `no answer within ${options.timeoutMs} ms` : cause?.code ?? cause?.message ?? (error as Error).message;
      throw new RemoteFileError(`HEAD ${current} failed: ${why}`);
    }
    const linkedSize = Number(response.headers.get('x-linked-size') ?? NaN);
    const linkedEtag = response.headers.get('x-linked-etag')?.replace(/^W\//, '').replaceAll('"', '').toLowerCase();
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      // The Hub's answer for an LFS file: a redirect to its storage, describing the file.
      if (linkedEtag !== undefined || Number.isFinite(linkedSize)) return metadataOf(linkedSize, linkedEtag);
      const next = new URL(location, current);
      if (next.origin !== new URL(current).origin || redirects >= MAX_RELATIVE_REDIRECTS) {
        // Storage elsewhere: ask it for the size (the checksum, if any, was the Hub's to give).
        // The token stays with the Hub: storage on another origin gets none.
        const { token: _token, ...withoutToken } = options;
        return fetchRemoteFileMetadata(next.href, withoutToken).then(({ size }) => metadataOf(size ?? NaN, undefined));
      }
      current = next.href;
      continue;
    }
    if (!response.ok) {
      const hint = response.status === 401 || response.status === 403 ? ' (a gated or private repository needs HF_TOKEN)' : '';
      throw new RemoteFileError(`HEAD ${current} failed: HTTP ${response.status}${hint}`);
    }
    const size = Number.isFinite(linkedSize) ? linkedSize : Number(response.headers.get('content-length') ?? NaN);
    return metadataOf(size, linkedEtag);
  }
}

function metadataOf(size: number, etag: string | undefined): RemoteFileMetadata {
  return {
    ...(Number.isInteger(size) && size >= 0 && { size }),
    // Only a 64-digit hex etag is a SHA-256 (a file outside LFS has its Git blob's SHA-1 instead).
    ...(etag !== undefined && /^[0-9a-f]{64}$/.test(etag) && { sha256: etag }),
  };
}
