/**
 * Downloads never reach private networks: the address rules on their own, the image store's
 * check of every request of a download (redirects included), and an image generation through the
 * app whose provider hands over a loopback URL.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ImageStore } from '../../src/images/image-store.js';
import { assertPublicHost, PrivateAddressError, privateAddressReason, type HostLookup } from '../../src/images/network-address.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { collectWebSocket, createWebSocketClient } from '../helpers/graphql-clients.js';
import { IMAGE_GENERATION_SUBSCRIPTION } from '../helpers/image-operations.js';
import { startApp, type StartedApp } from '../helpers/start-app.js';
import { createPng } from '../helpers/test-images.js';

describe('privateAddressReason', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'shared (carrier-grade NAT)'],
    ['0.0.0.0', 'this network'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456:789a::1', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback (IPv4 inside IPv6)'],
    ['::ffff:7f00:1', 'loopback (IPv4 inside IPv6)'],
    ['::ffff:169.254.169.254', 'link-local (IPv4 inside IPv6)'],
    ['::10.0.0.1', 'private (IPv4 inside IPv6)'],
    ['64:ff9b::10.0.0.1', 'private (IPv4 inside IPv6)'],
    ['2002:c0a8:101::1', 'private (IPv4 inside IPv6)'],
    ['example.com', 'not an IP address'],
  ])('refuses %s (%s)', (address, reason) => {
    expect(privateAddressReason(address)).toBe(reason);
  });

  it.each(['8.8.8.8', '93.184.216.34', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8', '2002:808:808::1'])(
    'lets the public address %s through',
    (address) => {
      expect(privateAddressReason(address)).toBeUndefined();
    },
  );
});

describe('assertPublicHost', () => {
  const lookup: HostLookup = async (hostname) =>
    ({
      'public.test': [{ address: '93.184.216.34', family: 4 }, { address: '2606:2800:220:1::1', family: 6 }],
      'mixed.test': [{ address: '93.184.216.34', family: 4 }, { address: '::1', family: 6 }],
      'internal.test': [{ address: '10.0.0.7', family: 4 }],
    })[hostname] ?? [];

  it('checks every address a name resolves to, and IP literals as they are', async () => {
    await expect(assertPublicHost(new URL('https://public.test/a.png'), lookup)).resolves.toBeUndefined();
    await expect(assertPublicHost(new URL('https://mixed.test/a.png'), lookup)).rejects.toThrow('mixed.test resolves to a loopback address');
    await expect(assertPublicHost(new URL('https://internal.test/a.png'), lookup)).rejects.toThrow(PrivateAddressError);
    await expect(assertPublicHost(new URL('http://[::1]:8080/a.png'), lookup)).rejects.toThrow('::1 is a loopback address');
    await expect(assertPublicHost(new URL('http://2130706433/a.png'), lookup)).rejects.toThrow('127.0.0.1 is a loopback address'); // the URL parser normalises it
    await expect(assertPublicHost(new URL('https://nowhere.test/a.png'), lookup)).rejects.toThrow('nowhere.test resolves to no address');
  });
});

describe('ImageStore downloads', () => {
  const png = createPng(8, 8, [10, 200, 30]);
  let server: Server;
  let port: number;
  let requestsServed = 0;

  beforeAll(async () => {
    server = createServer((request, response) => {
      requestsServed += 1;
      if (request.url === '/image.png') response.writeHead(200, { 'content-type': 'image/png' }).end(png);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** A store with an injected lookup (`*.public.test` is public, `*.internal.test` private) and optionally an injected fetch. */
  function store(options: { allowPrivateNetwork?: boolean; fetch?: typeof fetch } = {}) {
    const lookup: HostLookup = async (hostname) => [{ address: hostname.endsWith('.internal.test') ? '10.20.30.40' : '93.184.216.34', family: 4 }];
    return new ImageStore({
      directory: mkdtempSync(join(tmpdir(), 'gateway-ssrf-')),
      maxBytes: 4096,
      downloadTimeoutMs: 2000,
      lookup,
      ...(options.allowPrivateNetwork !== undefined && { allowPrivateNetwork: options.allowPrivateNetwork }),
      ...(options.fetch && { fetch: options.fetch }),
    });
  }
  const live = () => new AbortController().signal;

  it.each([
    ['loopback IPv4', () => `http://127.0.0.1:${port}/image.png`, /127\.0\.0\.1 is a loopback address/],
    ['loopback IPv6', () => `http://[::1]:${port}/image.png`, /::1 is a loopback address/],
    ['a private network', () => 'http://10.0.0.5/image.png', /10\.0\.0\.5 is a private address/],
    ['the cloud metadata address', () => 'http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local address/],
    ['a name that resolves privately', () => 'https://cdn.internal.test/image.png', /cdn\.internal\.test resolves to a private address/],
  ])('refuses %s by default, before sending anything', async (_name, url, message) => {
    const fetchSpy = vi.fn(globalThis.fetch);
    const error = await store({ fetch: fetchSpy }).download(url(), live()).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'IMAGE_DOWNLOAD_FAILED', message: expect.stringMatching(message) });
    expect((error as Error).message).toMatch(/ALLOW_PRIVATE_NETWORK_DOWNLOADS=true/);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('checks every redirect: a public host redirecting to loopback is refused at the second hop', async () => {
    const requested: string[] = [];
    const fakeFetch = (async (input: URL | RequestInfo) => {
      const url = String(input);
      requested.push(url);
      if (url.startsWith('https://images.public.test/')) return new Response(null, { status: 302, headers: { location: `http://127.0.0.1:${port}/image.png` } });
      return globalThis.fetch(input);
    }) as typeof fetch;
    const error = await store({ fetch: fakeFetch }).download('https://images.public.test/cat.png', live()).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'IMAGE_DOWNLOAD_FAILED', message: expect.stringMatching(/127\.0\.0\.1 is a loopback address/) });
    expect(requested).toEqual(['https://images.public.test/cat.png']);
  });

  it('follows public redirects one by one (relative ones too), at most 5, http(s) only', async () => {
    const hops = (async (input: URL | RequestInfo) => {
      const url = new URL(String(input));
      const step = Number(url.searchParams.get('step') ?? '0');
      if (url.pathname === '/loop') return new Response(null, { status: 307, headers: { location: `/loop?step=${step + 1}` } });
      if (url.pathname === '/to-file') return new Response(null, { status: 301, headers: { location: 'file:///etc/passwd' } });
      if (step < 2) return new Response(null, { status: 302, headers: { location: `?step=${step + 1}` } });
      return new Response(new Uint8Array(png), { status: 200, headers: { 'content-type': 'image/png' } });
    }) as typeof fetch;
    const checked = await store({ fetch: hops }).download('https://a.public.test/image.png', live());
    expect(checked.mimeType).toBe('image/png');
    await expect(store({ fetch: hops }).download('https://a.public.test/loop', live())).rejects.toMatchObject({ message: expect.stringMatching(/more than 5 redirects/) });
    await expect(store({ fetch: hops }).download('https://a.public.test/to-file', live())).rejects.toMatchObject({
      message: expect.stringMatching(/redirected to a file: URL/),
    });
  });

  it('refuses when connecting a name that passed the check and then resolves to loopback (DNS rebinding)', async () => {
    // The check's lookup answers a public address for every name; the connection resolves `localhost` itself, to 127.0.0.1.
    const rebinding = new ImageStore({
      directory: mkdtempSync(join(tmpdir(), 'gateway-ssrf-')),
      maxBytes: 4096,
      downloadTimeoutMs: 2000,
      lookup: async () => [{ address: '93.184.216.34', family: 4 }],
    });
    const before = requestsServed;
    await expect(rebinding.download(`http://localhost:${port}/image.png`, live())).rejects.toMatchObject({
      code: 'IMAGE_DOWNLOAD_FAILED',
      message: expect.stringMatching(/^downloading http:\/\/localhost:\d+\/image\.png refused: localhost resolves to a loopback address when connecting/),
    });
    expect(requestsServed).toBe(before);
  });

  it('reaches private addresses when allowed (ALLOW_PRIVATE_NETWORK_DOWNLOADS=true)', async () => {
    const checked = await store({ allowPrivateNetwork: true }).download(`http://127.0.0.1:${port}/image.png`, live());
    expect(Buffer.from(checked.bytes).equals(png)).toBe(true);
  });
});

describe('an image generation whose provider hands over a loopback URL', () => {
  let upstream: FakeOpenAIUpstream;
  let started: StartedApp;

  beforeAll(async () => {
    upstream = await startFakeOpenAIUpstream();
    started = await startApp({
      ALLOW_PRIVATE_NETWORK_DOWNLOADS: 'false', // the default; the test helper allows them for the other tests
      OPENAI_COMPATIBLE_UPSTREAMS: JSON.stringify([{ id: 'fake', baseURL: upstream.baseURL, models: ['fake-model'], imageModels: ['fake-image'] }]),
    });
  });

  afterAll(async () => {
    await started?.stop();
    await upstream?.close();
  });

  it('fails with IMAGE_DOWNLOAD_FAILED and stores nothing', async () => {
    const client = createWebSocketClient(started.webSocketUrl);
    const results = await collectWebSocket(client, IMAGE_GENERATION_SUBSCRIPTION, { input: { model: 'fake-image', prompt: 'a fox' } });
    await client.dispose();
    const last = results.at(-1)?.data?.imageGeneration;
    expect(last).toMatchObject({
      __typename: 'GenerationFailed',
      error: { code: 'IMAGE_DOWNLOAD_FAILED', message: expect.stringMatching(/refused: 127\.0\.0\.1 is a loopback address/), provider: 'fake' },
    });
    expect(upstream.imageRequests()).toHaveLength(1);
    let stored: string[] = [];
    try {
      stored = readdirSync(join(started.dataDir, 'images'));
    } catch {
      stored = [];
    }
    expect(stored).toEqual([]);
  });
});
