/** Ids of generations. */
import { randomUUID } from 'node:crypto';

/**
 * A new generation id: a random (version 4) UUID, e.g. `0b6e4f0c-2f1e-4c55-9a57-3f9c1d1a8e21`.
 *
 * Node 20's `randomUUID` assembles its text by `+` of hex pairs, and V8 keeps such a result as a tree
 * of string nodes instead of one flat 36-character string, several times its size. The id lives as
 * long as the generation is kept (`GENERATION_RETENTION_MS`, up to `GENERATION_RETENTION_MAX` of
 * them) and is a key of several maps, so it is copied once through a Buffer into a flat string:
 * less heap per kept generation, and less for young-generation collections to copy per request
 * (`docs/performance.md`).
 */
export function newGenerationId(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1');
}
