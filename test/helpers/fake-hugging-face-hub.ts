/**
 * A local HTTP server laid out like the Hugging Face Hub's file downloads (`docs/protocols.md` §7):
 * `GET`/`HEAD /{owner}/{repository}/resolve/{revision}/{file}` answers a file kept in Git LFS with a
 * 302 to its storage (here `/storage/{sha256}` on the same server) carrying `X-Linked-Size`,
 * `X-Linked-Etag` (the SHA-256, quoted) and `X-Repo-Commit`; the storage answers `GET`/`HEAD` with
 * `Accept-Ranges: bytes`, `Content-Length` and ranged requests (206 with `Content-Range`), as the
 * Hub's CDN does. Unknown paths are 404, a file marked `private` is 401 without the right token.
 *
 * Test controls: a file may advertise a SHA-256 other than its content's (a corrupt download), and
 * `stall` makes the next ranged request that starts at a given byte send some bytes and then hold
 * the response (a download cut half-way): `stalled` resolves once it holds one.
 */
import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A file the fake Hub serves. */
export interface HubFile {
  /** `owner/repository/path/to/file.gguf`. */
  path: string;
  content: Buffer;
  /** The SHA-256 announced in `X-Linked-Etag` (default: the content's). */
  advertisedSha256?: string;
  /** Only `Authorization: Bearer <token>` may fetch it. */
  token?: string;
}

/** One request the fake Hub received. */
export interface HubRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

/** A running fake Hub. */
export interface FakeHuggingFaceHub {
  /** `http://127.0.0.1:PORT` (what `HF_ENDPOINT` is set to). */
  endpoint: string;
  requests: HubRequest[];
  /** The byte ranges asked of the storage (`bytes=a-b`), in order. */
  storageRanges(): string[];
  /** Makes the next ranged request from byte `rangeStart` send `bytes` bytes and hold (undefined: serve whole). */
  stall: { rangeStart: number; bytes: number } | undefined;
  /** Resolves once a response has been held after {@link stall}. */
  stalled(): Promise<void>;
  /** Cuts the held responses (the client sees its connection reset mid-body); `stalled` waits for the next stall. */
  release(): void;
  close(): Promise<void>;
}

/** SHA-256 of `content`, lower-case hex. */
export function sha256Of(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Starts a fake Hub serving `files` on 127.0.0.1 with a free port. */
export async function startFakeHuggingFaceHub(files: HubFile[]): Promise<FakeHuggingFaceHub> {
  const bySha = new Map(files.map((file) => [sha256Of(file.content), file]));
  const requests: HubRequest[] = [];
  const held = new Set<ServerResponse>();
  let onStall: (() => void) | undefined;
  let stallPromise = new Promise<void>((resolve) => (onStall = resolve));

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://hub').pathname;
    requests.push({
      method: request.method ?? 'GET',
      path,
      ...(request.headers.range !== undefined && { range: request.headers.range }),
      ...(request.headers.authorization !== undefined && { authorization: request.headers.authorization }),
    });
    const resolved = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (resolved) {
      const [, owner, repository, , filePath] = resolved as unknown as [string, string, string, string, string];
      const file = files.find((candidate) => candidate.path === `${owner}/${repository}/${decodeURIComponent(filePath)}`);
      if (!file) return void response.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
      if (file.token !== undefined && request.headers.authorization !== `Bearer ${file.token}`) {
        return void response.writeHead(401, { 'x-error-code': 'GatedRepo' }).end('Access to this model is restricted');
      }
      const sha256 = sha256Of(file.content);
      response
        .writeHead(302, {
          location: `http://${request.headers.host}/storage/${sha256}`,
          'x-linked-size': String(file.content.length),
          'x-linked-etag': `"${file.advertisedSha256 ?? sha256}"`,
          'x-repo-commit': '0123456789abcdef0123456789abcdef01234567',
        })
        .end();
      return;
    }
    const stored = /^\/storage\/([0-9a-f]{64})$/.exec(path);
    const file = stored ? bySha.get(stored[1]!) : undefined;
    if (!file) return void response.writeHead(404).end('Not found');
    const size = file.content.length;
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start > end) return void response.writeHead(416, { 'content-range': `bytes */${size}` }).end();
    response.writeHead(range ? 206 : 200, {
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
      'content-length': String(end - start + 1),
      ...(range && { 'content-range': `bytes ${start}-${end}/${size}` }),
    });
    if (request.method === 'HEAD') return void response.end();
    const body = file.content.subarray(start, end + 1);
    if (hub.stall !== undefined && range && start === hub.stall.rangeStart) {
      response.write(body.subarray(0, hub.stall.bytes));
      hub.stall = undefined;
      held.add(response);
      onStall?.();
      return;
    }
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const hub: FakeHuggingFaceHub = {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    storageRanges: () => requests.filter((request) => request.path.startsWith('/storage/') && request.range).map((request) => request.range!),
    stall: undefined,
    stalled: () => stallPromise,
    release: () => {
      for (const response of held) response.destroy();
      held.clear();
      stallPromise = new Promise<void>((resolve) => (onStall = resolve));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of held) response.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
        stallPromise = new Promise<void>((resolve) => (onStall = resolve));
      }),
  };
  return hub;
}
