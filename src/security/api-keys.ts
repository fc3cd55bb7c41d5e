/**
 * API keys of the gateway itself (not the providers' keys): hashing, the keys file, and the
 * constant-time check of a presented key. Keys are only ever kept as sha256 digests.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** A sha256 digest as 64 lowercase hex digits. */
const DIGEST_PATTERN = /^[0-9a-f]{64}$/;

/** The sha256 digest of a key as 64 lowercase hex digits (what `printf %s KEY | sha256sum` prints). */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Reads the text of an API keys file: one sha256 hex digest per line (case-insensitive). `#`
 * starts a comment that runs to the end of the line; blank lines are skipped; anything after the
 * first whitespace-separated field is ignored, so `sha256sum` output (`<digest>  -`) works as it is.
 * @param source the file name, for messages.
 * @returns the digests, lowercase, without duplicates, in file order.
 * @throws Error `<source> line <n>: …` for a line whose first field is not 64 hex digits (the line's text is not repeated: it may be a plain key).
 */
export function parseApiKeysFile(text: string, source: string): string[] {
  const digests: string[] = [];
  for (const [index, rawLine] of text.split(/\r?\n/).entries()) {
    const line = rawLine.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const field = line.split(/\s+/)[0]!.toLowerCase();
    if (!DIGEST_PATTERN.test(field)) {
      throw new Error(`${source} line ${index + 1}: not a sha256 hex digest (64 hex digits); store hashed keys, e.g. printf %s "$KEY" | sha256sum`);
    }
    if (!digests.includes(field)) digests.push(field);
  }
  return digests;
}

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
      if (!DIGEST_PATTERN.test(normalized)) throw new Error('an API key digest must be 64 hex digits');
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
