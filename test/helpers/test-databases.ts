/**
 * The databases every storage test runs on: PGlite in memory, and PostgreSQL — a fresh database
 * created for the test on the server `TEST_POSTGRES_URL` names (default
 * `postgres://postgres@127.0.0.1:5432/test`: the local server, trust authentication; docs/development.md)
 * and dropped afterwards.
 */
import pg from 'pg';
import { openDatabase, type Database } from '../../src/storage/open-database.js';

/** The PostgreSQL server the tests use (any database on it; the tests create their own). */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** A database made for one test: opened and migrated; `drop` closes it and removes what it made. */
export interface TestDatabase {
  database: Database;
  /** `DATABASE_URL` that reaches it (`memory://` cannot be shared: each open is a new, empty one). */
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty PostgreSQL database on the test server; returns its URL and how to drop it. */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `gateway_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      const dropper = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await dropper.connect();
      await dropper.query(`drop database if exists ${name} with (force)`);
      await dropper.end();
    },
  };
}

/** The two drivers, by name, each making a fresh database. */
export const TEST_DATABASES: ReadonlyArray<{ driver: 'pglite' | 'postgres'; create(): Promise<TestDatabase> }> = [
  {
    driver: 'pglite',
    async create() {
      const database = await openDatabase({ driver: 'pglite' });
      return { database, url: 'memory://', drop: () => database.close() };
    },
  },
  {
    driver: 'postgres',
    async create() {
      const { url, drop } = await createPostgresDatabase();
      const database = await openDatabase({ driver: 'postgres', url });
      return {
        database,
        url,
        async drop() {
          await database.close();
          await drop();
        },
      };
    },
  },
];
