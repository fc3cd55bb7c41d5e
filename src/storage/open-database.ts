/**
 * Opens the database the configuration names and brings its schema up to date: PGlite
 * (`@electric-sql/pglite`, PostgreSQL compiled to WebAssembly, in process; https://pglite.dev) or
 * PostgreSQL through `pg`'s pool, both behind Drizzle (https://orm.drizzle.team), which runs the
 * same SQL on either and applies the migrations of `src/storage/migrations/` (drizzle-kit's
 * output, see `database-schema.ts`). On PostgreSQL the migrations run under an advisory lock, so
 * instances that start together apply them once.
 */
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { databaseSchema } from './database-schema.js';

/**
 * The migrations folder beside this module: `src/storage/migrations` when run from the sources,
 * `dist/storage/migrations` (copied there by `npm run build`) in the built and the installed package.
 */
const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

/** Bound of connecting to PostgreSQL, ms. */
const CONNECT_TIMEOUT_MS = 5_000;

/** Connections of one instance's PostgreSQL pool. */
const POOL_SIZE = 10;

/** A key of the advisory lock that serialises migrations across instances (any fixed 64-bit number). */
const MIGRATION_LOCK_KEY = 7_265_061_903;

/** Which database to open; the shape of the configuration's `database` (`config/storage-settings.ts`), `none` aside. */
export type DatabaseTarget = { driver: 'pglite'; dataDir?: string } | { driver: 'postgres'; url: string };

/** Drizzle over either driver, typed with the schema. */
export type DrizzleDatabase = PgDatabase<PgQueryResultHKT, typeof databaseSchema>;

/** An open database. */
export interface Database {
  readonly driver: DatabaseTarget['driver'];
  readonly db: DrizzleDatabase;
  /** Where it is, for messages: the PGlite folder (or `memory`) or the PostgreSQL URL without its password. */
  readonly location: string;
  /**
   * Checks that it answers.
   * @throws Error when it does not (PostgreSQL unreachable).
   */
  ping(): Promise<void>;
  /** Closes the connections (PostgreSQL) or the embedded database (PGlite: its files are flushed). */
  close(): Promise<void>;
}

/** The database could not be opened: the message is one line naming where and why. */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
}

/** `url` with its password replaced by `***`. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.href;
  } catch {
    return 'the configured PostgreSQL URL';
  }
}

/**
 * Opens `target` and applies the migrations it lacks.
 * @throws DatabaseUnavailableError when PostgreSQL cannot be reached, PGlite cannot open its
 *   folder, or a migration fails.
 */
export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  return target.driver === 'pglite' ? openPglite(target.dataDir) : openPostgres(target.url);
}

async function openPglite(dataDir: string | undefined): Promise<Database> {
  const location = dataDir ?? 'memory';
  try {
    if (dataDir !== undefined) await mkdir(dataDir, { recursive: true });
    const [{ PGlite }, { drizzle }, { migrate }] = await Promise.all([
      import('@electric-sql/pglite'),
      import('drizzle-orm/pglite'),
      import('drizzle-orm/pglite/migrator'),
    ]);
    const client = new PGlite(dataDir);
    await client.waitReady;
    const db = drizzle({ client, schema: databaseSchema });
    await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
    return {
      driver: 'pglite',
      db: db as unknown as DrizzleDatabase,
      location,
      ping: async () => void (await client.query('select 1')),
      close: () => client.close(),
    };
  } catch (error) {
    throw new DatabaseUnavailableError(`Cannot open the embedded database (PGlite) in ${location}: ${oneLine(error)}`);
  }
}

async function openPostgres(url: string): Promise<Database> {
  const location = redactDatabaseUrl(url);
  const [{ default: pg }, { drizzle }, { migrate }] = await Promise.all([
    import('pg'),
    import('drizzle-orm/node-postgres'),
    import('drizzle-orm/node-postgres/migrator'),
  ]);
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // An idle connection that breaks (the server restarted) is replaced on the next query; without a
  // listener its error would end the process.
  pool.on('error', () => {});
  const db = drizzle({ client: pool, schema: databaseSchema });
  try {
    const lock = await pool.connect();
    try {
      await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
    } finally {
      await lock.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
      lock.release();
    }
  } catch (error) {
    await pool.end().catch(() => {});
    throw new DatabaseUnavailableError(`Cannot reach PostgreSQL at ${location}: ${oneLine(error)}`);
  }
  return {
    driver: 'postgres',
    db: db as unknown as DrizzleDatabase,
    location,
    ping: async () => void (await db.execute(sql`select 1`)),
    close: () => pool.end(),
  };
}

function oneLine(error: unknown): string {
  const { message, code } = error as { message?: string; code?: string };
  const text = (message || code || String(error)).split('\n')[0]!.trim();
  return text || String(code ?? error);
}
