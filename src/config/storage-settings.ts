/**
 * Where the durable records live (`DATABASE_URL`): the embedded PGlite database under
 * `DATA_DIR/db` by default, PostgreSQL for several instances, PGlite in memory, or none. Part of
 * the settings tree of `settings.ts`; see `setting.ts` for how a setting is defined.
 */
import { z } from 'zod';
import { setting } from './setting.js';
import { positiveInteger } from './value-schemas.js';

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
