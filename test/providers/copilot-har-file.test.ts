/**
 * The Copilot session taken from a browser's HAR export (`COPILOT_HAR_FILE`, as gpt4free's
 * `readHAR` does, `docs/protocols.md` §5): parsed on its own, and used by the provider against the
 * local Copilot fake.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCopilotProvider } from '../../src/providers/copilot/copilot-provider.js';
import { readCopilotHarFile } from '../../src/providers/copilot/read-copilot-har-file.js';
import { ProviderError, type ChatStreamPart } from '../../src/providers/provider.js';
import { FAKE_ANONYMOUS_COOKIE, startFakeCopilot, type FakeCopilot } from '../helpers/fake-copilot.js';

const SITE = 'https://copilot.microsoft.com';
const TOKEN = 'har-access-token-secret-0123456789';
const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0';

type Pair = { name: string; value: string };

/** One HAR 1.2 entry as browsers export it (the fields this reads, plus the usual others). */
function entry(url: string, options: { headers?: Pair[]; cookies?: Pair[] } = {}) {
  const parsed = new URL(url);
  return {
    startedDateTime: '2025-05-01T10:00:00.000Z',
    time: 42,
    request: {
      method: 'GET',
      url,
      httpVersion: 'HTTP/2',
      headers: [{ name: 'user-agent', value: BROWSER }, ...(options.headers ?? [])],
      queryString: [...parsed.searchParams].map(([name, value]) => ({ name, value })),
      cookies: options.cookies ?? [],
      headersSize: -1,
      bodySize: 0,
    },
    response: { status: 200, statusText: 'OK', httpVersion: 'HTTP/2', headers: [], cookies: [], content: { size: 0, mimeType: 'text/html' }, redirectURL: '', headersSize: -1, bodySize: 0 },
    cache: {},
    timings: { send: 0, wait: 40, receive: 2 },
  };
}

function har(entries: unknown[]): string {
  return JSON.stringify({ log: { version: '1.2', creator: { name: 'Firefox', version: '140.0' }, pages: [], entries } });
}

let directory: string;
let fake: FakeCopilot;

beforeEach(async () => {
  directory = mkdtempSync(join(tmpdir(), 'copilot-har-'));
  fake = await startFakeCopilot({ accessToken: TOKEN });
});

afterEach(async () => {
  await fake.close();
});

function writeHar(name: string, text: string): string {
  const path = join(directory, name);
  writeFileSync(path, text);
  return path;
}

describe('readCopilotHarFile', () => {
  it("takes the cookies of the site's last request that sent any, the token and identity type of /c/api/ requests, the User-Agent", async () => {
    const path = writeHar(
      'copilot.har',
      har([
        entry(`${SITE}/`, { cookies: [{ name: 'MUID', value: 'old' }] }),
        entry('https://www.bing.com/c/api/other', { headers: [{ name: 'authorization', value: 'Bearer not-this-one' }], cookies: [{ name: 'other', value: 'site' }] }),
        entry(`${SITE}/c/api/user`, {
          headers: [
            { name: 'Authorization', value: `Bearer ${TOKEN}` },
            { name: 'X-UserIdentityType', value: 'google' },
          ],
          cookies: [
            { name: '__Host-copilot-anon', value: FAKE_ANONYMOUS_COOKIE },
            { name: 'MUID', value: 'new' },
          ],
        }),
        entry(`${SITE}/static/app.js`),
      ]),
    );
    expect(await readCopilotHarFile(path, SITE, 1_000_000)).toEqual({
      cookies: new Map([
        ['__Host-copilot-anon', FAKE_ANONYMOUS_COOKIE],
        ['MUID', 'new'],
      ]),
      accessToken: TOKEN,
      userIdentityType: 'google',
      userAgent: BROWSER,
    });
  });

  it("reads the token from the chat socket's accessToken parameter, and cookies from a Cookie header", async () => {
    const path = writeHar(
      'socket.har',
      har([
        entry(`wss://copilot.microsoft.com/c/api/chat?api-version=2&clientSessionId=x&accessToken=${TOKEN}&X-UserIdentityType=MSA`, {
          headers: [{ name: 'Cookie', value: `__Host-copilot-anon=${FAKE_ANONYMOUS_COOKIE}; _C_ETH=1` }],
        }),
      ]),
    );
    const session = await readCopilotHarFile(path, SITE, 1_000_000);
    expect(session).toMatchObject({ accessToken: TOKEN, userIdentityType: 'MSA' });
    expect([...session.cookies]).toEqual([
      ['__Host-copilot-anon', FAKE_ANONYMOUS_COOKIE],
      ['_C_ETH', '1'],
    ]);
  });

  it('refuses a file that is too large, not JSON or not a HAR, never quoting its content', async () => {
    const large = writeHar('large.har', har([entry(`${SITE}/`)]));
    await expect(readCopilotHarFile(large, SITE, 100)).rejects.toThrow(/is larger than 100 bytes/);
    const broken = writeHar('broken.har', `{"log": {"entries": [${TOKEN}`);
    const notJson = await readCopilotHarFile(broken, SITE, 1_000_000).then(
      () => new Error('read'),
      (error: unknown) => error as Error,
    );
    expect(notJson.message).toBe(`COPILOT_HAR_FILE ${broken} is not JSON (a HAR export is)`);
    await expect(readCopilotHarFile(writeHar('other.json', '{"cookies": []}'), SITE, 1_000_000)).rejects.toThrow(/is not a HAR file/);
    await expect(readCopilotHarFile(join(directory, 'missing.har'), SITE, 1_000_000)).rejects.toThrow(/cannot be read \(ENOENT\)/);
  });
});

describe('the provider with COPILOT_HAR_FILE', () => {
  const provider = (harFile: string, options: { cookies?: string; maxHarFileBytes?: number } = {}) =>
    createCopilotProvider({ baseURL: fake.baseURL, harFile, connectTimeoutMs: 5_000, idleTimeoutMs: 5_000, maxConversations: 10, conversationIdleMs: 60_000, ...options });
  const turn = async (chat: ReturnType<typeof provider>) => {
    const parts: ChatStreamPart[] = [];
    for await (const part of chat.streamChat({ model: 'Copilot', messages: [{ role: 'user', content: 'Hi' }] }, { signal: new AbortController().signal })) parts.push(part);
    return parts;
  };
  const failure = (chat: ReturnType<typeof provider>) => turn(chat).then(() => undefined, (error: unknown) => error as ProviderError);

  it("chats with the session of the fake's host, sending its cookies and the browser's User-Agent; re-reads the file when it changes", async () => {
    const path = writeHar('session.har', har([entry(`${fake.baseURL}/`, { cookies: [{ name: '__Host-copilot-anon', value: FAKE_ANONYMOUS_COOKIE }] })]));
    const chat = provider(path);
    expect(await chat.checkAvailability()).toEqual({ available: true });
    expect((await turn(chat)).at(-1)).toEqual({ type: 'finish', finishReason: 'stop' });
    expect(fake.starts[0]!.headers).toMatchObject({ cookie: `__Host-copilot-anon=${FAKE_ANONYMOUS_COOKIE}`, 'user-agent': BROWSER });

    writeHar('session.har', har([entry(`${fake.baseURL}/c/api/user`, { headers: [{ name: 'authorization', value: `Bearer ${TOKEN}` }], cookies: [{ name: 'fresh', value: 'yes' }] })]));
    await turn(chat);
    expect(fake.starts[1]!.headers).toMatchObject({ cookie: 'fresh=yes', authorization: `Bearer ${TOKEN}` });
  });

  it('lets COPILOT_COOKIES win over the file', async () => {
    const path = writeHar('session.har', har([entry(`${fake.baseURL}/`, { cookies: [{ name: '__Host-copilot-anon', value: 'stale-cookie-from-the-har' }] })]));
    await turn(provider(path, { cookies: `__Host-copilot-anon=${FAKE_ANONYMOUS_COOKIE}` }));
    expect(fake.starts[0]!.headers.cookie).toBe(`__Host-copilot-anon=${FAKE_ANONYMOUS_COOKIE}`);
  });

  it('a file it cannot use, or one without a session: UNAUTHORIZED naming COPILOT_HAR_FILE, and unavailable with the reason', async () => {
    const empty = writeHar('empty.har', har([entry('https://example.com/', { cookies: [{ name: 'a', value: 'b' }] })]));
    const noSession = await failure(provider(empty));
    expect(noSession).toMatchObject({ code: 'UNAUTHORIZED', provider: 'copilot' });
    expect(noSession?.message).toContain(`COPILOT_HAR_FILE ${empty} holds no request to ${fake.baseURL}`);

    const large = writeHar('large.har', har([entry(`${fake.baseURL}/`, { cookies: [{ name: '__Host-copilot-anon', value: FAKE_ANONYMOUS_COOKIE }] })]));
    const tooLarge = await failure(provider(large, { maxHarFileBytes: 100 }));
    expect(tooLarge).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(tooLarge?.message).toContain('is larger than 100 bytes');
    expect(await provider(large, { maxHarFileBytes: 100 }).checkAvailability()).toEqual({ available: false, reason: tooLarge?.message });
    expect(fake.starts).toHaveLength(0);
  });
});
