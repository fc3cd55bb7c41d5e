/** API keys on their own: hashing, the keys file, the constant-time check, and how the configuration loads them. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { ApiKeyVerifier, bearerToken, hashApiKey, parseApiKeysFile } from '../../src/security/api-keys.js';

/** A file in a fresh temporary folder. */
function writeTemporary(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'gateway-keys-')), name);
  writeFileSync(path, text);
  return path;
}

describe('hashApiKey', () => {
  it('is the sha256 hex digest the README command prints', () => {
    const printed = execFileSync('sh', ['-c', `printf '%s' 'my secret key' | sha256sum | cut -d' ' -f1`], { encoding: 'utf8' }).trim();
    expect(hashApiKey('my secret key')).toBe(printed);
    expect(hashApiKey('my secret key')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('parseApiKeysFile', () => {
  it('reads one digest per line, skipping comments and blank lines, accepting sha256sum output and upper case', () => {
    const one = hashApiKey('one');
    const two = hashApiKey('two');
    const text = `# keys of the gateway\n\n${one}  # alice\n${two.toUpperCase()}  -\n   \n${one}\n`;
    expect(parseApiKeysFile(text, 'keys.txt')).toEqual([one, two]);
  });

  it('names the line of something that is not a digest, without repeating it (it may be a plain key)', () => {
    expect(() => parseApiKeysFile(`${hashApiKey('ok')}\nsk-plain-secret\n`, 'keys.txt')).toThrow(/^keys\.txt line 2: not a sha256 hex digest/);
    try {
      parseApiKeysFile('sk-plain-secret', 'keys.txt');
    } catch (error) {
      expect((error as Error).message).not.toContain('sk-plain-secret');
    }
  });
});

describe('bearerToken', () => {
  it.each([
    ['Bearer abc', 'abc'],
    ['bearer  abc ', 'abc'],
    ['Basic abc', undefined],
    ['Bearer', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j → %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
});

describe('ApiKeyVerifier', () => {
  it('accepts the configured keys by digest and nothing else; no digests = off', () => {
    const verifier = new ApiKeyVerifier([hashApiKey('alpha'), hashApiKey('beta').toUpperCase()]);
    expect(verifier.enabled).toBe(true);
    expect(verifier.verify('alpha')).toBe(hashApiKey('alpha'));
    expect(verifier.verify('beta')).toBe(hashApiKey('beta'));
    expect(verifier.verify('gamma')).toBeUndefined();
    expect(verifier.verify('')).toBeUndefined();
    expect(new ApiKeyVerifier([]).enabled).toBe(false);
    expect(() => new ApiKeyVerifier(['not-a-digest'])).toThrow(/64 hex digits/);
  });
});

describe('configuration', () => {
  it('turns authentication off by default and loads the security defaults', () => {
    const { security } = loadConfig({});
    expect(security).toEqual({
      apiKeyDigests: [],
      apiKeyCacheTtlMs: 5000,
      apiKeyCacheMax: 10_000,
      estimatedCompletionTokens: 512,
      rateLimitPerMinute: 60,
      maxConcurrentGenerationsPerKey: 8,
      graphqlMaxDepth: 10,
      graphqlMaxCost: 5000,
      graphqlMaxAliases: 15,
      graphqlMaxTokens: 1000,
      graphqlMaxDirectives: 50,
      csrfPrevention: true,
      introspection: true,
      maxRequestBodyBytes: 1024 * 1024,
      maxPromptCharacters: 8000,
      maxMessages: 200,
      maxMessageCharacters: 100_000,
      allowPrivateNetworkDownloads: false,
      trustedProxyHops: 0,
    });
  });

  it('keeps API_KEYS only as digests, merged with API_KEYS_FILE without duplicates', () => {
    const file = writeTemporary('keys.sha256', `${hashApiKey('from-file')}\n${hashApiKey('both')}\n`);
    const { security } = loadConfig({ API_KEYS: 'plain-one, both', API_KEYS_FILE: file });
    expect(security.apiKeyDigests).toEqual([hashApiKey('plain-one'), hashApiKey('both'), hashApiKey('from-file')]);
    expect(JSON.stringify(security)).not.toContain('plain-one');
  });

  it('keeps MASTER_KEY only as its digest, and refuses one shorter than 16 characters without repeating it', () => {
    const { security } = loadConfig({ MASTER_KEY: 'master-key-0123456789' });
    expect(security.masterKeyDigest).toBe(hashApiKey('master-key-0123456789'));
    expect(JSON.stringify(security)).not.toContain('master-key-0123456789');
    expect(() => loadConfig({ MASTER_KEY: 'short-secret' })).toThrow(/MASTER_KEY: MASTER_KEY must be at least 16 characters/);
    expect(() => loadConfig({ MASTER_KEY: 'short-secret' })).not.toThrow(/short-secret/);
  });

  it('refuses an unreadable or malformed keys file with one line', () => {
    expect(() => loadConfig({ API_KEYS_FILE: '/no/such/keys.txt' })).toThrow(ConfigError);
    expect(() => loadConfig({ API_KEYS_FILE: '/no/such/keys.txt' })).toThrow(/^Invalid configuration: API_KEYS_FILE: cannot read \/no\/such\/keys\.txt/);
    const bad = writeTemporary('keys.txt', 'sk-not-hashed\n');
    expect(() => loadConfig({ API_KEYS_FILE: bad })).toThrow(/^Invalid configuration: API_KEYS_FILE: .*line 1: not a sha256 hex digest/);
  });

  it('never echoes a secret setting in a configuration error', () => {
    const file = writeTemporary('config.json', JSON.stringify({ API_KEYS: ['', 'sk-very-secret'] }));
    let message = '';
    try {
      loadConfig({ CONFIG_FILE: file });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^Invalid configuration: API_KEYS/);
    expect(message).not.toContain('sk-very-secret');
  });

  it('validates the limits', () => {
    expect(() => loadConfig({ RATE_LIMIT_PER_MINUTE: '-1' })).toThrow(/RATE_LIMIT_PER_MINUTE must be 0 or more/);
    expect(() => loadConfig({ MAX_PROMPT_CHARACTERS: '9000' })).toThrow(/MAX_PROMPT_CHARACTERS must be at most 8000/);
    expect(() => loadConfig({ MAX_REQUEST_BODY_BYTES: '0' })).toThrow(/MAX_REQUEST_BODY_BYTES must be greater than 0/);
    expect(loadConfig({ RATE_LIMIT_PER_MINUTE: '0', INTROSPECTION: 'false', ALLOW_PRIVATE_NETWORK_DOWNLOADS: 'true' }).security).toMatchObject({
      rateLimitPerMinute: 0,
      introspection: false,
      allowPrivateNetworkDownloads: true,
    });
  });
});
