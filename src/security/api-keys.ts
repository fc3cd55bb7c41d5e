/**
 * API keys of the gateway itself (not the providers' keys): hashing, the keys file, and the
 * constant-time check of a presented key. Keys are only ever kept as sha256 digests.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { API_KEY_DIGEST_PATTERN } from '../config.js';

/** Hashing and the keys file belong to the configuration, which reads them; re-exported for the security layer's callers. */
export { hashApiKey, parseApiKeysFile } from '../config.js';

/** The key in `Authorization: Bearer <key>`; undefined when the header is absent, empty or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ \t]+(\S.*?)[ \t]*$/i.exec(header);
  return match ? match[1] : undefined;
}

/**
 * Checks presented keys against the configured digests. The presented key is hashed and compared
 * with every digest with `timingSafeEqual` (no early exit), so the time taken does not depend on
 * how much of a digest matched or on which one did.
 */
export class ApiKeyVerifier {
  private readonly digests: Buffer[];

  /** @param digests sha256 hex digests (64 hex digits each); an empty list turns authentication off. */
  constructor(digests: readonly string[]) {
    this.digests = digests.map((digest) => {
      const normalized = digest.toLowerCase();
      if (!API_KEY_DIGEST_PATTERN.test(normalized)) throw new Error('an API key digest must be 64 hex digits');
      return Buffer.from(normalized, 'hex');
    });
  }

  /** Whether any key is configured (authentication is on). */
  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /**
   * The digest of `key` when it is one of the configured keys, else undefined. The digest
   * identifies the caller (for limits) without keeping the key.
   */
  verify(key: string): string | undefined {
    const presented = createHash('sha256').update(key, 'utf8').digest();
    let matched: Buffer | undefined;
    for (const digest of this.digests) {
      if (timingSafeEqual(presented, digest)) matched = digest;
    }
    return matched?.toString('hex');
  }
}
