/**
 * The event log in Redis: one Redis Stream per generation, `gateway:events:{generationId}`, whose
 * entry ids are the events' sequences (`{sequence}-0`), so the stream itself refuses an event out
 * of order or twice (`XADD` with an id not above the last fails). Replays read with
 * `XRANGE key ({after}-0 +`. Each append pushes the key's expiry to the retention time. A stream that
 * lost entries (expired, `XTRIM`, `DEL`) reads with a hole at the front, which subscribers report
 * as `EVENTS_EXPIRED`.
 * Redis commands: https://redis.io/docs/latest/commands/xadd/, /xrange/.
 */
import type { Redis } from 'ioredis';
import type { EventLog } from '../generations/event-log.js';
import type { GenerationEvent } from '../generations/generation-events.js';

/** Key prefix of the streams. */
export const EVENT_STREAM_PREFIX = 'gateway:events:';

/** An EventLog kept in Redis Streams, shared by every instance. */
export class RedisEventLog implements EventLog {
  /**
   * @param redis a connected client (commands only; not one in subscriber mode).
   * @param retentionMs how long a stream is kept after its last event, ms.
   */
  constructor(
    private readonly redis: Redis,
    private readonly retentionMs: number,
  ) {}

  /**
   * Appends with `XADD key {sequence}-0 event <json>` and refreshes the expiry, in one round trip.
   * @throws when Redis refuses (e.g. the sequence is not above the last one) or is unreachable.
   */
  async append(event: GenerationEvent): Promise<void> {
    const key = EVENT_STREAM_PREFIX + event.generationId;
    const results = await this.redis
      .multi()
      .xadd(key, `${event.sequence}-0`, 'event', JSON.stringify(event))
      .pexpire(key, this.retentionMs)
      .exec();
    const failure = results?.find(([error]) => error)?.[0];
    if (failure) throw failure;
    if (!results) throw new Error(`appending event ${event.sequence} of ${event.generationId} was aborted`);
  }

  /** Events with `sequence > after`, in order (`XRANGE key ({after}-0 +`); `[]` for an unknown or expired generation. */
  async read(generationId: string, after: number): Promise<GenerationEvent[]> {
    const start = after > 0 ? `(${after}-0` : '-';
    const entries = await this.redis.xrange(EVENT_STREAM_PREFIX + generationId, start, '+');
    return entries.map(([, fields]) => JSON.parse(fields[1]!) as GenerationEvent);
  }

  async delete(generationId: string): Promise<void> {
    await this.redis.del(EVENT_STREAM_PREFIX + generationId);
  }

  /**
   * Resolves at once while the client is connected and its socket writable, else on its next `ready`
   * (ioredis reconnects by itself). Right after a connection drops, the status may still say `ready`
   * while the socket is closed: that counts as not connected.
   */
  whenAvailable(): Promise<void> {
    if (this.redis.status === 'ready' && this.redis.stream?.writable) return Promise.resolve();
    return new Promise((resolve) => this.redis.once('ready', () => resolve()));
  }
}
