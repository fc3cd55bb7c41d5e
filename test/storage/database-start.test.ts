/**
 * The server and its database at start: an unreachable PostgreSQL stops the start with one line on
 * standard error and status 1 (the password never shown); the embedded database opens in
 * `DATA_DIR/db` by default and is there again after a restart.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnGateway } from '../helpers/app-process.js';
import { startApp } from '../helpers/start-app.js';

describe('the database at start', () => {
  it('an unreachable PostgreSQL is one line and status 1', async () => {
    const { exited, stderr } = spawnGateway({ DATABASE_URL: 'postgres://gateway:s3cret@127.0.0.1:1/gateway' });
    expect(await exited).toEqual({ code: 1, signal: null });
    expect(stderr()).toMatch(/^Cannot reach PostgreSQL at postgres:\/\/gateway:\*\*\*@127\.0\.0\.1:1\/gateway: .*ECONNREFUSED.*\n$/);
  });

  it('opens the embedded database in DATA_DIR/db by default, and again after a restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gateway-data-'));
    for (const run of [1, 2]) {
      // An empty setting is an unset one: the default, PGlite in DATA_DIR/db.
      const started = await startApp({ DATA_DIR: dataDir, DATABASE_URL: '' });
      expect(started.app.database).toMatchObject({ driver: 'pglite', location: join(dataDir, 'db') });
      await started.app.database!.ping();
      await started.stop();
      expect(await readdir(join(dataDir, 'db')), `run ${run}`).toContain('PG_VERSION');
    }
  });
});
