/**
 * The benchmark's usage-row writer: the gateway's own `UsageRecorder` and `GenerationStore` (the
 * JavaScript of dist/, as `npm start` runs it) over one database, fed synthetic ended chat
 * generations, in a process of its own so that its CPU time is the writer's (and, for PGlite, the
 * database's, which runs in this process).
 *
 * Settings (environment): `BENCH_USAGE_DRIVER` (`pglite` | `postgres`), `BENCH_USAGE_URL` (the
 * PostgreSQL database), `BENCH_USAGE_DATA_DIR` (PGlite's folder), `BENCH_USAGE_SEQUENTIAL` (rows
 * written one at a time, each waited for: a generation ending alone), `BENCH_USAGE_BURST` (rows
 * queued at once: many generations ending together, written in batches).
 *
 * Prints `{"ready":true}`, then one JSON line with the figures (for PostgreSQL also the CPU time
 * its server processes used meanwhile, read from `/proc`), then exits.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { GenerationRecord } from '../src/generations/generation-records.js';
import type * as StoreModule from '../src/storage/generation-store.js';
import type * as DatabaseModule from '../src/storage/open-database.js';
import type * as RecorderModule from '../src/operations/usage-recorder.js';

const dist = (path: string) => new URL(`../dist/${path}`, import.meta.url).href;
const { openDatabase } = (await import(dist('storage/open-database.js'))) as typeof DatabaseModule;
const { GenerationStore } = (await import(dist('storage/generation-store.js'))) as typeof StoreModule;
const { UsageRecorder } = (await import(dist('operations/usage-recorder.js'))) as typeof RecorderModule;

const driver = process.env.BENCH_USAGE_DRIVER === 'postgres' ? 'postgres' : 'pglite';
const sequential = Number(process.env.BENCH_USAGE_SEQUENTIAL ?? 500);
const burst = Number(process.env.BENCH_USAGE_BURST ?? 5_000);
const warmUp = Math.min(200, sequential);

const cpuMs = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

/** CPU time of the machine's PostgreSQL server processes (Linux `/proc`, 10 ms resolution), ms; 0 for PGlite. */
function databaseServerCpuMs(): number {
  if (driver !== 'postgres') return 0;
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (!stat.includes('(postgres)')) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks * 10;
}

process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

const openedAt = performance.now();
const database = await openDatabase(
  driver === 'postgres' ? { driver, url: process.env.BENCH_USAGE_URL! } : { driver, ...(process.env.BENCH_USAGE_DATA_DIR && { dataDir: process.env.BENCH_USAGE_DATA_DIR }) },
);
const openMs = performance.now() - openedAt;
const recorder = new UsageRecorder({ store: new GenerationStore(database.db), maxWaiting: burst + sequential + warmUp });

/** An ended chat generation like a local model's: 300 characters of text, token counts, an owner. */
let serial = 0;
function endedChat(): GenerationRecord {
  serial += 1;
  const createdAt = new Date(Date.now() - 120);
  return {
    kind: 'chat',
    id: `bench-${process.pid}-${serial}`,
    status: 'completed',
    provider: 'llama-cpp',
    model: 'stories260K',
    owner: `key:key_bench${serial % 10}`,
    createdAt,
    finishedAt: new Date(),
    lastSequence: 40,
    text: 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. '.repeat(3).slice(0, 300),
    finishReason: 'stop',
    usage: { promptTokens: 12, completionTokens: 64, totalTokens: 76 },
  } as GenerationRecord;
}

function write(count: number, waitEach: boolean): Promise<{ wallMs: number; cpuMs: number; databaseServerCpuMs: number }> {
  return (async () => {
    const startWall = performance.now();
    const startCpu = cpuMs();
    const startServer = databaseServerCpuMs();
    for (let index = 0; index < count; index += 1) {
      const record = endedChat();
      recorder.contentReceived(record);
      recorder.generationFinished(record);
      if (waitEach) await recorder.flush();
    }
    await recorder.flush();
    return { wallMs: performance.now() - startWall, cpuMs: cpuMs() - startCpu, databaseServerCpuMs: databaseServerCpuMs() - startServer };
  })();
}

await write(warmUp, true);
const one = await write(sequential, true);
const many = await write(burst, false);
await recorder.close();
await database.close();
process.stdout.write(
  `${JSON.stringify({
    driver,
    openMs,
    residentMiB: process.memoryUsage().rss / 2 ** 20,
    sequential: { rows: sequential, ...one },
    burst: { rows: burst, ...many },
    stats: recorder.stats,
  })}\n`,
);
process.exit(0);
