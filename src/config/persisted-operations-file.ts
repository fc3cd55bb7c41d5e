/**
 * The list of operations a gateway started with `PERSISTED_OPERATIONS_FILE` runs (persisted
 * operations, also called trusted documents): a JSON object mapping each operation's id to its
 * text, as GraphQL Code Generator's client preset writes it with `persistedDocuments: true`
 * (`persisted-documents.json`): `{ "sha256:<64 hex digits>": "subscription StreamChat(…) { … }" }`.
 * The id format is that of the GraphQL over HTTP draft's persisted documents appendix
 * (https://github.com/graphql/graphql-over-http/blob/main/spec/Appendix%20A%20--%20Persisted%20Documents.md):
 * `sha256:` and the lowercase hex SHA-256 of the text's UTF-8 bytes.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parse } from 'graphql';

/** Largest file accepted, bytes (8 MiB: tens of thousands of operations). */
export const PERSISTED_OPERATIONS_FILE_MAX_BYTES = 8 * 1024 * 1024;

/** What an id other than a SHA-256 may look like (a Relay or custom id): letters, digits, `_`, `.`, `:`, `-`, at most 200. */
const OTHER_ID_PATTERN = /^[\w.:-]{1,200}$/;

/** The operations by id; a SHA-256 id is always `sha256:<64 lowercase hex digits>`. */
export type PersistedOperationList = ReadonlyMap<string, string>;

/**
 * An id as the list keys it: `sha256:<hex>` with the hex digits lowercase; 64 bare hex digits (an
 * Automatic Persisted Queries `sha256Hash`) become `sha256:<hex>`; any other id is kept as it is.
 */
export function normalizePersistedOperationId(id: string): string {
  if (/^[0-9a-f]{64}$/i.test(id)) return `sha256:${id.toLowerCase()}`;
  if (/^sha256:[0-9a-f]{64}$/i.test(id)) return `sha256:${id.slice('sha256:'.length).toLowerCase()}`;
  return id;
}

/**
 * Checks and reads the text of a persisted operations file.
 * @param source the file name, for messages.
 * @throws Error `<source>: …` naming the first problem: not a JSON object, no operation, an id that
 *   is neither a SHA-256 nor of {@link OTHER_ID_PATTERN}'s form, a text that is not a GraphQL
 *   document, or a `sha256:` id that is not the SHA-256 of its text (a hand-edited list).
 */
export function parsePersistedOperations(text: string, source: string): Map<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source}: not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${source}: not a JSON object of operation ids to operation texts (as codegen's persisted-documents.json)`);
  }
  const operations = new Map<string, string>();
  for (const [rawId, document] of Object.entries(parsed)) {
    const id = normalizePersistedOperationId(rawId);
    if (!id.startsWith('sha256:') && !OTHER_ID_PATTERN.test(id)) {
      throw new Error(`${source}: the id ${JSON.stringify(rawId.slice(0, 80))} is neither sha256:<64 hex digits> nor up to 200 letters, digits, _ . : -`);
    }
    if (typeof document !== 'string' || document.trim() === '') throw new Error(`${source}: the operation ${id} is not a GraphQL document text`);
    try {
      parse(document, { noLocation: true });
    } catch (error) {
      throw new Error(`${source}: the operation ${id} is not valid GraphQL: ${(error as Error).message}`);
    }
    if (id.startsWith('sha256:') && id !== `sha256:${createHash('sha256').update(document, 'utf8').digest('hex')}`) {
      throw new Error(`${source}: the id ${id} is not the SHA-256 of its operation's text (generate the list again)`);
    }
    operations.set(id, document);
  }
  if (operations.size === 0) throw new Error(`${source}: lists no operation, so every GraphQL request would be refused`);
  return operations;
}

/**
 * Reads a persisted operations file once (at start), at most {@link PERSISTED_OPERATIONS_FILE_MAX_BYTES}.
 * @throws Error `<path>: …` when it cannot be read, is larger, or does not parse (see {@link parsePersistedOperations}).
 */
export function readPersistedOperationsFile(path: string): Map<string, string> {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > PERSISTED_OPERATIONS_FILE_MAX_BYTES) throw new Error(`${size} bytes, more than the ${PERSISTED_OPERATIONS_FILE_MAX_BYTES} accepted`);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  return parsePersistedOperations(text, path);
}
