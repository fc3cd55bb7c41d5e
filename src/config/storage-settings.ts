/**
 * Where the durable records live (`DATABASE_URL`): the embedded PGlite database under
 * `DATA_DIR/db` by default, PostgreSQL for several instances, PGlite in memory, or none; and where
 * conversations live (`CONVERSATION_STORE`). Part of the settings tree of `settings.ts`; see
 * `setting.ts` for how a setting is defined.
 */
import { z } from 'zod';
import { ConfigError, setting } from './setting.js';
import { oneOf, positiveInteger } from './value-schemas.js';

/** The database the configuration names. */
export type DatabaseSettings =
  /** PGlite in process: its files in `dataDir`, or in memory (lost at exit) when `dataDir` is absent. */
  | { driver: 'pglite'; dataDir?: string }
  /** PostgreSQL at `url` (`postgres://user:password@host:port/database`). */
  | { driver: 'postgres'; url: string }
  /** No database: static API keys only, usage and history not kept past the in-memory retention. */
  | { driver: 'none' };

export const databaseUrl = setting({
  name: 'DATABASE_URL',
  schema: (name) =>
    z
      .string()
      .trim()
      .refine((value) => value === 'none' || value === 'memory://' || /^postgres(ql)?:\/\/\S+$/i.test(value), {
        error: `${name} must be a postgres:// or postgresql:// URL, memory:// or none`,
      }),
  documentedDefault: '— (PGlite in `DATA_DIR/db`)',
  description:
    'durable records (virtual keys, usage, generation history, conversations): unset = the embedded PGlite database in `DATA_DIR/db` ' +
    '(one instance), `postgres://user:password@host:5432/database` = PostgreSQL (several instances), `memory://` = PGlite in memory (lost at exit), ' +
    '`none` = no database (static API keys only, nothing kept past `GENERATION_RETENTION_MS`); never logged',
});

/** The database of `url` (the `DATABASE_URL` setting, if set) with the data folder `dataDir`. */
export function resolveDatabase({ url, dataDir }: { url: string | undefined; dataDir: string }): DatabaseSettings {
  if (url === undefined) return { driver: 'pglite', dataDir: `${dataDir.replace(/\/+$/, '')}/db` };
  if (url === 'none') return { driver: 'none' };
  if (url === 'memory://') return { driver: 'pglite' };
  return { driver: 'postgres', url };
}

export const usageQueueMax = setting({
  name: 'USAGE_QUEUE_MAX',
  schema: positiveInteger,
  default: 10_000,
  description:
    'usage rows (one per ended generation) kept in memory while the database cannot be written; more are dropped and counted (`gateway_usage_rows_dropped_total`)',
});

/** Where conversations are kept. */
export const CONVERSATION_STORES = ['database', 'memory', 'redis'] as const;

/** One of {@link CONVERSATION_STORES}. */
export type ConversationStoreKind = (typeof CONVERSATION_STORES)[number];

export const conversationStore = setting({
  name: 'CONVERSATION_STORE',
  schema: oneOf(CONVERSATION_STORES),
  documentedDefault: '`database` with PostgreSQL, else `redis` with `REDIS_URL`, else `database` with the embedded one, else `memory`',
  description:
    'where conversations are kept: `database` (kept across restarts; shared by instances on one PostgreSQL), `redis` (shared by instances on one Redis, ' +
    'lost when Redis is), `memory` (this process only); `database` needs a database, `redis` needs `REDIS_URL`',
});

/**
 * `CONVERSATION_STORE`, or its default: `database` when `DATABASE_URL` is PostgreSQL (every instance
 * reaches it), else `redis` when `REDIS_URL` is set (instances share it; an embedded database is
 * each instance's own), else `database` when the embedded database is there, else `memory`.
 * @throws ConfigError when `database` is asked for with `DATABASE_URL=none`, or `redis` without `REDIS_URL`.
 */
export function resolveConversationStore({
  requested,
  databaseUrl: url,
  redisUrl,
}: {
  requested: ConversationStoreKind | undefined;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
}): ConversationStoreKind {
  const database = resolveDatabase({ url, dataDir: '.' }).driver;
  if (requested === 'database' && database === 'none') {
    throw new ConfigError(`Invalid configuration: ${conversationStore.name}: database needs a database, and ${databaseUrl.name} is none`);
  }
  if (requested === 'redis' && redisUrl === undefined) {
    throw new ConfigError(`Invalid configuration: ${conversationStore.name}: redis needs REDIS_URL`);
  }
  if (requested !== undefined) return requested;
  if (database === 'postgres') return 'database';
  if (redisUrl !== undefined) return 'redis';
  return database === 'none' ? 'memory' : 'database';
}
