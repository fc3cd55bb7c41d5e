/**
 * The event log in Redis: one Redis Stream per generation, `gateway:events:{generationId}`, whose
 * entry ids are the events' sequences (`{sequence}-0`), so the stream itself refuses an event out
 * of order or twice (`XADD` with an id not above the last fails). Replays read with
 * `XRANGE key ({after}-0 +`. Each append pushes the key's expiry to the retention time. A stream that
 * lost entries (expired, `XTRIM`, `DEL`) reads with a hole at the front, which subscribers report
 * as `EVENTS_EXPIRED`.
 *
 * An append is one Lua script (`EVALSHA`, run atomically by Redis): `XADD`, `PEXPIRE` and, when the
 * log was given a channel for the generation, `PUBLISH` of the same JSON there — the other
 * instances' subscribers hear an event exactly when, and only if, the log took it, and the instance
 * sends one command per event instead of five (`MULTI`, `XADD`, `PEXPIRE`, `EXEC`, `PUBLISH`).
 * Redis commands: https://redis.io/docs/latest/commands/xadd/, /xrange/, /eval/ (scripts are atomic).
 */
import type { Redis } from 'ioredis';
import type { EventLog } from '../generations/event-log.js';
import type { GenerationEvent } from '../generations/generation-events.js';

/** Key prefix of the streams. */
export const EVENT_STREAM_PREFIX = 'gateway:events:';

/**
 * The append script: KEYS[1] the stream; ARGV the entry id, the event's JSON, the expiry (ms) and
 * the channel to publish it on ('' for none). An `XADD` that fails (an id not above the last)
 * raises, so nothing after it runs.
 */
const APPEND_SCRIPT = `
redis.call('XADD', KEYS[1], ARGV[1], 'event', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[2]) end
return 1`;

/** The client with the append script defined (ioredis `defineCommand`: `EVALSHA`, `EVAL` when Redis lacks it). */
type ScriptedRedis = Redis & { gatewayAppendEvent(key: string, id: string, json: string, expiryMs: number, channel: string): Promise<number> };

/** An EventLog kept in Redis Streams, shared by every instance. */
export class RedisEventLog implements EventLog {
  private readonly redis: ScriptedRedis;

  /**
   * @param redis a connected client (commands only; not one in subscriber mode).
   * @param retentionMs how long a stream is kept after its last event, ms.
   * @param channelOf the pub/sub channel each appended event is published on (the shared
   *   pub/sub's, see `createScaledGenerationPubSub`); absent = appends publish nothing.
   */
  constructor(
    redis: Redis,
    private readonly retentionMs: number,
    private readonly channelOf?: (generationId: string) => string,
  ) {
    if (!('gatewayAppendEvent' in redis)) redis.defineCommand('gatewayAppendEvent', { numberOfKeys: 1, lua: APPEND_SCRIPT });
    this.redis = redis as ScriptedRedis;
  }

  /**
   * Appends with `XADD key {sequence}-0 event <json>`, refreshes the expiry and publishes the
   * event's JSON, in one atomic script (see the module comment).
   * @throws when Redis refuses (e.g. the sequence is not above the last one) or is unreachable.
   */
  async append(event: GenerationEvent): Promise<void> {
    const { generationId } = event;
    await this.redis.gatewayAppendEvent(
      EVENT_STREAM_PREFIX + generationId,
      `${event.sequence}-0`,
      JSON.stringify(event),
      this.retentionMs,
      this.channelOf?.(generationId) ?? '',
    );
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
