/** The image store on its own: bounded, checked downloads and content-addressed, atomic saves. */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore } from '../../src/images/image-store.js';
import { createPng } from '../helpers/test-images.js';

const png = createPng(40, 24, [200, 30, 30]);
let server: Server;
let baseURL: string;
const openResponses = new Set<import('node:http').ServerResponse>();

beforeAll(async () => {
  server = createServer((request, response) => {
    openResponses.add(response);
    response.on('close', () => openResponses.delete(response));
    if (request.url === '/image.png') response.writeHead(200, { 'content-type': 'image/png' }).end(png);
    else if (request.url === '/big.png') response.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.concat([png, Buffer.alloc(4096)]));
    else if (request.url === '/big-chunked.png') {
      response.writeHead(200, { 'content-type': 'image/png' });
      response.write(png);
      response.end(Buffer.alloc(4096));
    } else if (request.url === '/hang.png') response.writeHead(200, { 'content-type': 'image/png' }).write(png.subarray(0, 10));
    else if (request.url === '/page.png') response.writeHead(200, { 'content-type': 'image/png' }).end('<!doctype html><p>not an image</p>');
    else if (request.url === '/redirect') response.writeHead(302, { location: '/image.png' }).end();
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const response of openResponses) response.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function store(options: Partial<{ maxBytes: number; downloadTimeoutMs: number }> = {}) {
  const directory = mkdtempSync(join(tmpdir(), 'gateway-image-store-'));
  return {
    directory,
    // The fake image server is on 127.0.0.1, which downloads refuse unless allowed (test/security covers the refusal).
    imageStore: new ImageStore({ directory, maxBytes: options.maxBytes ?? 1024, downloadTimeoutMs: options.downloadTimeoutMs ?? 2000, publicBaseUrl: 'https://example.test/', allowPrivateNetwork: true }),
  };
}

const live = () => new AbortController().signal;

describe('ImageStore', () => {
  it('downloads (following redirects), checks by bytes, and saves once under the sha256', async () => {
    const { imageStore, directory } = store();
    const checked = await imageStore.download(`${baseURL}/redirect`, live());
    expect(checked).toMatchObject({ mimeType: 'image/png', extension: 'png' });
    expect(Buffer.from(checked.bytes).equals(png)).toBe(true);
    const file = await imageStore.save(checked);
    expect(file).toBe(`${createHash('sha256').update(png).digest('hex')}.png`);
    expect(await imageStore.save(checked)).toBe(file);
    expect(readdirSync(directory)).toEqual([file]);
    expect(readFileSync(join(directory, file)).equals(png)).toBe(true);
    expect(imageStore.publicUrl(file)).toBe(`https://example.test/images/${file}`);
  });

  it.each([
    ['a declared size over the limit', '/big.png', /larger than 1024 bytes/],
    ['a streamed size over the limit', '/big-chunked.png', /larger than 1024 bytes/],
    ['an HTTP error', '/missing.png', /HTTP 404/],
  ])('refuses %s with IMAGE_DOWNLOAD_FAILED', async (_name, path, message) => {
    const { imageStore } = store();
    const error = await imageStore.download(`${baseURL}${path}`, live()).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'IMAGE_DOWNLOAD_FAILED' });
    expect((error as Error).message).toMatch(message);
  });

  it('gives up on a download slower than the timeout', async () => {
    const { imageStore } = store({ downloadTimeoutMs: 200 });
    await expect(imageStore.download(`${baseURL}/hang.png`, live())).rejects.toMatchObject({
      code: 'IMAGE_DOWNLOAD_FAILED',
      message: expect.stringMatching(/no complete answer within 200 ms/),
    });
  });

  it('refuses bytes that are not an image, whatever the header says', async () => {
    const { imageStore } = store();
    await expect(imageStore.download(`${baseURL}/page.png`, live())).rejects.toMatchObject({ code: 'INVALID_IMAGE' });
  });

  it.each(['file:///etc/passwd', 'ftp://example.test/a.png', 'data:image/png;base64,AAAA', 'not a url'])(
    'only downloads http(s): %s is refused',
    async (url) => {
      const { imageStore } = store();
      await expect(imageStore.download(url, live())).rejects.toMatchObject({ code: 'IMAGE_DOWNLOAD_FAILED' });
    },
  );

  it('throws the abort reason when the signal aborts', async () => {
    const { imageStore } = store();
    const controller = new AbortController();
    const reason = new Error('cancelled');
    const pending = imageStore.download(`${baseURL}/hang.png`, controller.signal);
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });
});
