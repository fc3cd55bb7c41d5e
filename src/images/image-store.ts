/**
 * The image store: downloads images from providers (bounded in size and time, checked to be
 * images by their bytes), keeps them content-addressed under `{DATA_DIR}/images` as
 * `{sha256}.{extension}`, and serves them at `GET /images/{file}` with immutable caching.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { BodyTooLargeError, describeError, readBoundedBytes } from '../providers/http-errors.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { assertPublicHost, PrivateAddressError, publicOnlyLookup, type HostLookup } from './network-address.js';

/** Image types the store accepts, by the MIME type `file-type` reads from the bytes. */
const IMAGE_EXTENSIONS: Readonly<Record<string, string>> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/avif': 'avif',
};

const MIME_TYPES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(IMAGE_EXTENSIONS).map(([mimeType, extension]) => [extension, mimeType]),
);

/** A stored file name: 64 hex digits of sha256, a dot, a known extension. Nothing else is served. */
const FILE_NAME = /^([a-f0-9]{64})\.(png|jpg|webp|gif|avif)$/;

/** Paths the files are served under: `/images/` (ours) and `/media/` (gpt4free's, `docs/protocols.md` §1). */
const ROUTE_PREFIXES = ['/images/', '/media/'];

/** Redirects one download follows at most. */
const MAX_REDIRECTS = 5;

/** Codes of image failures, as they appear in `GenerationError.code`. */
export type ImageErrorCode = 'IMAGE_DOWNLOAD_FAILED' | 'INVALID_IMAGE';

/** A download or validation failure; `message` is safe to show to clients. */
export class ImageStoreError extends Error {
  override readonly name = 'ImageStoreError';
  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Bytes known to be an image. */
export interface CheckedImage {
  bytes: Uint8Array;
  /** From the bytes, e.g. `image/png`. */
  mimeType: string;
  /** File extension without a dot, e.g. `png`. */
  extension: string;
}

/** Settings of the store. */
export interface ImageStoreOptions {
  /** Folder of the stored files (created when needed). */
  directory: string;
  /** Largest download accepted, bytes. */
  maxBytes: number;
  /** Time one download may take, ms. */
  downloadTimeoutMs: number;
  /** Base of public URLs; may be set later with `setPublicBaseUrl` (e.g. once the port is known). */
  publicBaseUrl?: string;
  /**
   * The fetch for downloads; default undici's, connecting only to public addresses (see
   * `publicOnlyFetch`) unless `allowPrivateNetwork`, then the global one.
   */
  fetch?: typeof fetch;
  /**
   * Whether downloads may reach private, loopback, link-local and unique-local addresses
   * (`ALLOW_PRIVATE_NETWORK_DOWNLOADS`). Default false: every request of a download (each redirect
   * too) goes only to a host whose every address is public (see `assertPublicHost`).
   */
  allowPrivateNetwork?: boolean;
  /** Resolves host names for that check; default `dns.lookup(…, { all: true })`. */
  lookup?: HostLookup;
}

/** Downloads, checks, stores and serves images. */
export class ImageStore {
  private readonly directory: string;
  private publicBaseUrl: string | undefined;
  private readonly fetchImplementation: typeof fetch;

  constructor(private readonly options: ImageStoreOptions) {
    this.directory = resolve(options.directory);
    this.publicBaseUrl = options.publicBaseUrl?.replace(/\/+$/, '');
    this.fetchImplementation = options.fetch ?? (options.allowPrivateNetwork ? globalThis.fetch : publicOnlyFetch());
  }

  /** Sets the base of public URLs (e.g. `http://localhost:1337`) when configuration left it open. */
  setPublicBaseUrl(url: string): void {
    this.publicBaseUrl = url.replace(/\/+$/, '');
  }

  /** The public URL of a stored file: `{publicBaseUrl}/images/{file}`. */
  publicUrl(file: string): string {
    if (!this.publicBaseUrl) throw new Error('the image store has no public base URL yet');
    return `${this.publicBaseUrl}/images/${file}`;
  }

  /**
   * Checks that the bytes are an image (by their content, not by any header).
   * @throws ImageStoreError `INVALID_IMAGE` when they are not a PNG, JPEG, WebP, GIF or AVIF image.
   */
  async check(bytes: Uint8Array, origin: string): Promise<CheckedImage> {
    // file-type and its readers load with the first image: a gateway that never stores one starts without them.
    const { fileTypeFromBuffer } = await import('file-type');
    const type = await fileTypeFromBuffer(bytes);
    const extension = type ? IMAGE_EXTENSIONS[type.mime] : undefined;
    if (!type || !extension) {
      throw new ImageStoreError('INVALID_IMAGE', `${origin} is not an image (${type ? type.mime : 'unknown content'})`);
    }
    return { bytes, mimeType: type.mime, extension };
  }

  /**
   * Downloads an image: `http(s)` only, up to 5 redirects followed, at most `maxBytes`, within `downloadTimeoutMs`,
   * and checked by its bytes. Unless `allowPrivateNetwork`, the host of the URL and of every redirect
   * must resolve only to public addresses, checked before each request and again by the connection
   * itself (so DNS rebinding cannot slip in between). The signal aborts the download.
   * @throws ImageStoreError `IMAGE_DOWNLOAD_FAILED` (bad URL, private address, HTTP error, too many
   *   redirects, too large, too slow, broken connection) or `INVALID_IMAGE`; the signal's reason when it aborts.
   */
  async download(url: string, signal: AbortSignal): Promise<CheckedImage> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ImageStoreError('IMAGE_DOWNLOAD_FAILED', `cannot download ${JSON.stringify(url)}: not a URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ImageStoreError('IMAGE_DOWNLOAD_FAILED', `cannot download ${parsed.protocol} URLs, only http(s)`);
    }
    const timeout = AbortSignal.timeout(this.options.downloadTimeoutMs);
    const combined = AbortSignal.any([signal, timeout]);
    const where = `${parsed.origin}${parsed.pathname}`;
    try {
      const response = await this.fetchFollowingRedirects(parsed, combined);
      if (!response.ok || !response.body) {
        await response.body?.cancel().catch(() => {});
        throw new ImageStoreError('IMAGE_DOWNLOAD_FAILED', `downloading ${where} failed: HTTP ${response.status}`);
      }
      const declared = Number(response.headers.get('content-length'));
      if (Number.isFinite(declared) && declared > this.options.maxBytes) {
        await response.body.cancel().catch(() => {});
        throw this.tooLarge(where);
      }
      const bytes = await readBoundedBytes(response.body, this.options.maxBytes);
      return await this.check(bytes, `the download from ${where}`);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof ImageStoreError) throw error;
      if (error instanceof BodyTooLargeError) throw this.tooLarge(where);
      const reason = timeout.aborted
        ? `no complete answer within ${this.options.downloadTimeoutMs} ms`
        : describeError(error) || 'network error';
      throw new ImageStoreError('IMAGE_DOWNLOAD_FAILED', `downloading ${where} failed: ${reason}`);
    }
  }

  /**
   * Stores checked image bytes as `{sha256}.{extension}` (once: identical bytes share one file) and
   * returns the file name. Written to a temporary name and renamed, so no partial file is ever visible.
   */
  async save(image: CheckedImage): Promise<string> {
    const digest = createHash('sha256').update(image.bytes).digest('hex');
    const file = `${digest}.${image.extension}`;
    const path = join(this.directory, file);
    if (await exists(path)) return file;
    await mkdir(this.directory, { recursive: true });
    const temporary = join(this.directory, `.${file}.${randomUUID()}.partial`);
    try {
      await writeFile(temporary, image.bytes);
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    return file;
  }

  /**
   * Serves `GET`/`HEAD /images/{file}` (and `/media/{file}`): the bytes with their `Content-Type`, a strong `ETag` (the
   * sha256), `Cache-Control: public, max-age=31536000, immutable`, and 304 for a matching
   * `If-None-Match`. Anything that is not a stored file name (path traversal included) is a 404.
   * @returns false when the request is not for `/images/` or `/media/`, so other routes can take it.
   */
  async handle(request: IncomingMessage, response: ServerResponse): Promise<boolean> {
    const path = (request.url ?? '').split('?')[0]!;
    const prefix = ROUTE_PREFIXES.find((candidate) => path.startsWith(candidate));
    if (!prefix) return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' }).end('{"error":{"message":"method not allowed"}}');
      return true;
    }
    let name: string;
    try {
      name = decodeURIComponent(path.slice(prefix.length));
    } catch {
      name = '';
    }
    const match = FILE_NAME.exec(name);
    const size = match ? await fileSize(join(this.directory, name)) : undefined;
    if (!match || size === undefined) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"image not found"}}');
      return true;
    }
    const etag = `"${match[1]}"`;
    const headers = {
      'content-type': MIME_TYPES[match[2]!]!,
      etag,
      'cache-control': 'public, max-age=31536000, immutable',
      'x-content-type-options': 'nosniff',
    };
    const ifNoneMatch = request.headers['if-none-match'];
    if (ifNoneMatch && ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag || tag.trim() === '*')) {
      response.writeHead(304, headers).end();
      return true;
    }
    response.writeHead(200, { ...headers, 'content-length': String(size) });
    if (request.method === 'HEAD') {
      response.end();
      return true;
    }
    createReadStream(join(this.directory, name))
      .on('error', () => response.destroy())
      .pipe(response);
    return true;
  }

  /**
   * Fetches `url`, following redirects one by one (so each hop's host is checked before it is
   * reached), and returns the first response that is not a redirect.
   * @throws ImageStoreError `IMAGE_DOWNLOAD_FAILED` for a private host, a redirect without `Location`
   *   or to another scheme, or more than {@link MAX_REDIRECTS} redirects.
   */
  private async fetchFollowingRedirects(url: URL, signal: AbortSignal): Promise<Response> {
    let current = url;
    for (let redirects = 0; ; redirects += 1) {
      const where = `${current.origin}${current.pathname}`;
      if (!this.options.allowPrivateNetwork) {
        try {
          await abortable(assertPublicHost(current, this.options.lookup), signal);
        } catch (error) {
          if (!(error instanceof PrivateAddressError)) throw error;
          throw new ImageStoreError(
            'IMAGE_DOWNLOAD_FAILED',
            `downloading ${where} refused: ${error.message} (downloads reach public addresses only; ALLOW_PRIVATE_NETWORK_DOWNLOADS=true allows others)`,
          );
        }
      }
      let response: Response;
      try {
        response = await this.fetchImplementation(current, { signal, redirect: 'manual' });
      } catch (error) {
        // Refused when connecting: the name now resolved to a private address (DNS rebinding).
        const refusal = error instanceof Error && error.cause instanceof PrivateAddressError ? error.cause : undefined;
        if (!refusal) throw error;
        throw new ImageStoreError(
          'IMAGE_DOWNLOAD_FAILED',
          `downloading ${where} refused: ${refusal.message} when connecting (downloads reach public addresses only; ALLOW_PRIVATE_NETWORK_DOWNLOADS=true allows others)`,
        );
      }
      if (![301, 302, 303, 307, 308].includes(response.status)) return response;
      await response.body?.cancel().catch(() => {});
      const location = response.headers.get('location');
      if (!location) throw new ImageStoreError('IMAGE_DOWNLOAD_FAILED', `downloading ${where} failed: HTTP ${response.status} without a Location`);
      if (redirects >= MAX_REDIRECTS) throw new ImageStoreError('IMAGE_DOWNLOAD_FAILED', `downloading ${url.origin}${url.pathname} failed: more than ${MAX_REDIRECTS} redirects`);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new ImageStoreError('IMAGE_DOWNLOAD_FAILED', `downloading ${where} failed: the redirect's Location is not a URL`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new ImageStoreError('IMAGE_DOWNLOAD_FAILED', `downloading ${where} failed: redirected to a ${next.protocol} URL, only http(s) is followed`);
      }
      current = next;
    }
  }

  private tooLarge(where: string): ImageStoreError {
    return new ImageStoreError('IMAGE_DOWNLOAD_FAILED', `downloading ${where} failed: larger than ${this.options.maxBytes} bytes`);
  }
}

/** The promise, or the signal's reason as soon as it aborts (a DNS lookup cannot be aborted itself). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function exists(path: string): Promise<boolean> {
  return (await fileSize(path)) !== undefined;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * undici's fetch over an agent whose connections resolve host names with `publicOnlyLookup`: the
 * address a download connects to is checked when it connects, not only before (`assertPublicHost`),
 * so a name that answers a public address to the check and a private one to the connection (DNS
 * rebinding) is refused. https://undici.nodejs.org/#/docs/api/Client?id=parameter-connectoptions
 */
function publicOnlyFetch(): typeof fetch {
  const dispatcher = new Agent({ connect: { lookup: publicOnlyLookup } });
  return ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}
