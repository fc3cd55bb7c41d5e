/**
 * The form in which the gateway's own API keys are configured and kept: sha256 digests. `API_KEYS`
 * are hashed when the configuration is loaded; `API_KEYS_FILE` holds digests only. The security
 * layer (`security/api-keys.ts`) imports these helpers to check presented keys.
 */
import { createHash } from 'node:crypto';

/** A sha256 digest as 64 lowercase hex digits. */
export const API_KEY_DIGEST_PATTERN = /^[0-9a-f]{64}$/;

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
    if (!API_KEY_DIGEST_PATTERN.test(field)) {
      throw new Error(`${source} line ${index + 1}: not a sha256 hex digest (64 hex digits); store hashed keys, e.g. printf %s "$KEY" | sha256sum`);
    }
    if (!digests.includes(field)) digests.push(field);
  }
  return digests;
}
