/** The Redis event log against the real Redis on 127.0.0.1:6379 (started by .ci/run when missing). */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationEvent } from '../../src/generations/generation-events.js';
import { EVENT_STREAM_PREFIX, RedisEventLog } from '../../src/scale-out/redis-event-log.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});

afterAll(async () => {
  await redis?.quit();
});

function delta(generationId: string, sequence: number, text: string): GenerationEvent {
  return { type: 'chat-token-delta', generationId, sequence, text };
}

describe('RedisEventLog', () => {
  it('appends events as a stream keyed by sequence and replays those after a sequence', async () => {
    const log = new RedisEventLog(redis, 60_000);
    const id = randomUUID();
    for (let sequence = 1; sequence <= 5; sequence += 1) await log.append(delta(id, sequence, `t${sequence}`));
    expect((await log.read(id, 0)).map((event) => event.sequence)).toEqual([1, 2, 3, 4, 5]);
    expect(await log.read(id, 3)).toEqual([delta(id, 4, 't4'), delta(id, 5, 't5')]);
    expect(await log.read(id, 5)).toEqual([]);
    expect(await log.read(randomUUID(), 0)).toEqual([]);
    const ttl = await redis.pttl(EVENT_STREAM_PREFIX + id);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('refuses an event out of order or twice', async () => {
    const log = new RedisEventLog(redis, 60_000);
    const id = randomUUID();
    await log.append(delta(id, 1, 'a'));
    await log.append(delta(id, 2, 'b'));
    await expect(log.append(delta(id, 2, 'again'))).rejects.toThrow(/equal or smaller/);
    await expect(log.append(delta(id, 1, 'older'))).rejects.toThrow(/equal or smaller/);
    expect((await log.read(id, 0)).map((event) => (event as { text: string }).text)).toEqual(['a', 'b']);
  });

  it('deletes a generation', async () => {
    const log = new RedisEventLog(redis, 60_000);
    const id = randomUUID();
    await log.append(delta(id, 1, 'a'));
    await log.delete(id);
    expect(await log.read(id, 0)).toEqual([]);
  });
});
