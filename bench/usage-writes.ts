/**
 * What a usage row costs: one row per ended generation (`src/operations/usage-recorder.ts`),
 * written to the embedded PGlite database and to PostgreSQL, each in a writer process of its own
 * (`bench/usage-writes-process.ts`): rows written one at a time (a generation ending alone waits
 * for nothing, but its row is one insert) and in a burst (many ending together: batches).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPostgresDatabase } from '../test/helpers/test-databases.js';
import { startTypeScriptProcess } from './child-processes.js';

/** Figures of one phase of one database. Times in ms. */
export interface UsageWritePhase {
  rows: number;
  wallMs: number;
  /** CPU time of the writer process (PGlite's included: it runs there). */
  cpuMs: number;
  /** CPU time of the PostgreSQL server processes meanwhile (0 for PGlite). */
  databaseServerCpuMs: number;
}

/** One database's figures. */
export interface UsageWritesResult {
  driver: 'pglite' | 'postgres';
  /** Opening and migrating the database, ms. */
  openMs: number;
  /** Resident memory of the writer process at the end, MiB. */
  residentMiB: number;
  sequential: UsageWritePhase;
  burst: UsageWritePhase;
}

/**
 * Measures the databases in turn (`drivers`, default both).
 * @param options.sequential rows written one at a time; `options.burst` rows queued at once.
 * @throws Error when a writer process fails or does not answer within `timeoutMs`.
 */
export async function measureUsageWrites(options: {
  sequential: number;
  burst: number;
  timeoutMs: number;
  drivers?: ReadonlyArray<'pglite' | 'postgres'>;
}): Promise<UsageWritesResult[]> {
  const results: UsageWritesResult[] = [];
  for (const driver of options.drivers ?? (['pglite', 'postgres'] as const)) {
    const dataDir = mkdtempSync(join(tmpdir(), 'bench-pglite-'));
    const postgres = driver === 'postgres' ? await createPostgresDatabase() : undefined;
    try {
      const { handle } = await startTypeScriptProcess(`usage writes (${driver})`, 'bench/usage-writes-process.ts', {
        environment: {
          BENCH_USAGE_DRIVER: driver,
          BENCH_USAGE_SEQUENTIAL: String(options.sequential),
          BENCH_USAGE_BURST: String(options.burst),
          ...(postgres ? { BENCH_USAGE_URL: postgres.url } : { BENCH_USAGE_DATA_DIR: join(dataDir, 'db') }),
        },
        readyTimeoutMs: 10_000,
      });
      results.push(await handle.nextMessage<UsageWritesResult>(options.timeoutMs));
      await handle.stop(2_000);
    } finally {
      await postgres?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return results;
}

const perRow = (ms: number, rows: number) => (rows > 0 ? `${((ms / rows) * 1000).toFixed(0)} µs` : '—');

/** The report's section on usage rows (Markdown). */
export function formatUsageWrites(results: UsageWritesResult[]): string {
  const lines = [
    '## Usage records (one row per ended generation)',
    '',
    "The gateway's own usage writer and table, fed synthetic ended chats (300 characters of text, token counts, an owner), in a process of its own: first rows written one at a time, each waited for (a generation ending alone), then a burst queued at once (many ending together; batches of up to 200). CPU per row: the writer process (with PGlite, the database runs there too) and, for PostgreSQL, its server processes meanwhile (from /proc, 10 ms resolution).",
    '',
    '| database | open and migrate | one at a time: rows | wall per row | CPU per row: writer + server | burst: rows | rows/s | CPU per row: writer + server | writer resident memory |',
    '|---|---:|---:|---:|---|---:|---:|---|---:|',
  ];
  for (const result of results) {
    const { sequential: one, burst } = result;
    lines.push(
      `| ${result.driver === 'pglite' ? 'PGlite (embedded)' : 'PostgreSQL 127.0.0.1'} | ${result.openMs.toFixed(0)} ms | ${one.rows} | ${perRow(one.wallMs, one.rows)} | ${perRow(one.cpuMs, one.rows)} + ${perRow(one.databaseServerCpuMs, one.rows)} | ${burst.rows} | ${Math.round(burst.rows / (burst.wallMs / 1000)).toLocaleString('en-US')} | ${perRow(burst.cpuMs, burst.rows)} + ${perRow(burst.databaseServerCpuMs, burst.rows)} | ${result.residentMiB.toFixed(0)} MiB |`,
    );
  }
  return lines.join('\n');
}
