/**
 * The admin operations on virtual keys as one caller may use them: only with the master key
 * (`MASTER_KEY`), and only with a database. The GraphQL resolvers call these and nothing else.
 */
import type { ApiKeyPage, ApiKeyRecord } from '../storage/api-key-store.js';
import { GatewayError } from '../generations/gateway-error.js';
import type { Caller } from './authentication.js';
import { SecurityError } from './security-error.js';
import type { CreatedApiKey, VirtualKeys } from './virtual-keys.js';

/** Keys per page of `apiKeys` unless `first` says otherwise, and at most. */
export const DEFAULT_API_KEY_PAGE_SIZE = 20;
export const MAX_API_KEY_PAGE_SIZE = 100;

/** Admin operations; each checks the caller first (see {@link apiKeyAdministration}). */
export interface ApiKeyAdministration {
  /** Makes a key; the answer holds the key itself, shown this once. */
  create(input: unknown): Promise<CreatedApiKey>;
  /** Changes a key's name, expiry or limits (absent fields stay, `null` clears). */
  update(id: string, input: unknown): Promise<ApiKeyRecord>;
  /** Revokes a key: refused at once here (within `API_KEY_CACHE_TTL_MS` on other instances), its open sockets closed with 4403. */
  revoke(id: string): Promise<ApiKeyRecord>;
  /** A page of keys, newest first; `after` is the cursor of the last key of the previous page. */
  list(page: { first?: number | null; after?: string | null }): Promise<ApiKeyPage>;
}

/** The cursor of a key in the list: its creation time and id, base64url. */
export function apiKeyCursor(record: ApiKeyRecord): string {
  return Buffer.from(`${record.createdAt.getTime()}:${record.id}`, 'utf8').toString('base64url');
}

/** @throws GatewayError `BAD_USER_INPUT` for a cursor that is not one of {@link apiKeyCursor}'s. */
function parseCursor(cursor: string): { createdAt: Date; id: string } {
  const match = /^(\d{1,15}):(key_[A-Za-z0-9_-]{1,64})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new GatewayError('BAD_USER_INPUT', 'after: not a cursor of apiKeys');
  return { createdAt: new Date(Number(match[1])), id: match[2]! };
}

/** The driver's error of a database that does not answer, as a refusal the caller can read. */
async function databaseCall<Result>(call: () => Promise<Result>): Promise<Result> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof GatewayError || error instanceof SecurityError) throw error;
    throw new SecurityError('DATABASE_UNAVAILABLE', 'The database does not answer; try again shortly.');
  }
}

/**
 * The admin operations as `caller` may use them. Each call is refused, in this order, with
 * SecurityError `FORBIDDEN` when no master key is configured, `UNAUTHORIZED` without a caller,
 * `FORBIDDEN` when the caller did not present the master key, `DATABASE_NOT_CONFIGURED` without a
 * database (`DATABASE_URL=none`); then `API_KEY_NOT_FOUND` for an unknown id,
 * GatewayError `BAD_USER_INPUT` for bad input, `DATABASE_UNAVAILABLE` when the database does not answer.
 * @param virtualKeys undefined without a database.
 */
export function apiKeyAdministration(caller: Caller | undefined, virtualKeys: VirtualKeys | undefined, masterKeyConfigured: boolean): ApiKeyAdministration {
  const authorised = (): VirtualKeys => {
    if (!masterKeyConfigured) throw new SecurityError('FORBIDDEN', 'Admin operations need the master key, and this server has none: set MASTER_KEY.');
    if (!caller) throw new SecurityError('UNAUTHORIZED', 'Authentication required: send the master key.');
    if (!caller.admin) throw new SecurityError('FORBIDDEN', 'Admin operations need the master key (MASTER_KEY); this API key may not manage keys.');
    if (!virtualKeys) {
      throw new SecurityError(
        'DATABASE_NOT_CONFIGURED',
        'Virtual keys need a database, and this server runs with DATABASE_URL=none: unset it (the embedded database in DATA_DIR/db) or set a postgres:// URL.',
      );
    }
    return virtualKeys;
  };
  const found = (id: string, record: ApiKeyRecord | undefined): ApiKeyRecord => {
    if (!record) throw new SecurityError('API_KEY_NOT_FOUND', `Unknown API key "${id}".`);
    return record;
  };
  return {
    async create(input) {
      const keys = authorised();
      return databaseCall(() => keys.create(input));
    },
    async update(id, input) {
      const keys = authorised();
      return found(id, await databaseCall(() => keys.update(id, input)));
    },
    async revoke(id) {
      const keys = authorised();
      return found(id, await databaseCall(() => keys.revoke(id)));
    },
    async list({ first, after }) {
      const keys = authorised();
      const size = first ?? DEFAULT_API_KEY_PAGE_SIZE;
      if (!Number.isInteger(size) || size < 1 || size > MAX_API_KEY_PAGE_SIZE) {
        throw new GatewayError('BAD_USER_INPUT', `first: must be between 1 and ${MAX_API_KEY_PAGE_SIZE}`);
      }
      const position = after == null ? undefined : parseCursor(after);
      return databaseCall(() => keys.list(size, position));
    },
  };
}
