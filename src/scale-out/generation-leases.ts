/**
 * Owner leases of the generations an instance runs itself (scaled out over Redis; role `all`, and
 * role `api` for a request with its own provider key): one key per running generation,
 * `gateway:generation-owner:{generationId}` = the instance id, with a time to live (`SET … PX`).
 * While the instance lives, ONE timer refreshes the leases of all its running generations every
 * `leaseMs / 3`, in one pipelined round trip; a generation's lease is set when it starts (by the save
 * of its shared record, sent before its first event on the same connection; see
 * redis-generation-records.ts) and deleted once its terminal event is stored (by the save of its
 * final record). An
 * instance that dies (SIGKILL, power loss) stops refreshing, so its leases expire after at most
 * `leaseMs`; a subscriber or lookup on another instance that finds a running generation without a
 * lease ends it with `INSTANCE_LOST` (see `GenerationService`). Queued generations (roles `api` and
 * `worker`) take no lease: BullMQ's job lock covers them (`WORKER_LOST`).
 *
 * A lease that lapsed while its owner still lives (its event loop or Redis stalled longer than
 * `leaseMs`) is set again by the next refresh; if another instance ended the generation meanwhile,
 * the owner's next append is refused by the stream (entry ids must increase), so the stream still
 * holds one terminal event.
 * Redis: https://redis.io/docs/latest/commands/set/ (PX), https://redis.io/docs/latest/develop/use/pipelining/.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { defaultLogger, type Logger } from '../operations/logger.js';

/** Key prefix of the leases. */
export const GENERATION_OWNER_PREFIX = 'gateway:generation-owner:';

/** Settings of the leases. */
export interface GenerationLeasesOptions {
  /** Time to live of a lease, ms: an instance silent this long has lost its generations. Refreshed every `leaseMs / 3`. */
  leaseMs: number;
  /** The value of this instance's leases; default `{hostname}-{pid}-{random}`. */
  instanceId?: string;
  /** Where failed refreshes are logged (once per outage); default: a JSON logger on standard output. */
  logger?: Logger;
}

/** The leases one instance holds on the generations it runs. */
export class GenerationLeases {
  /** The value of this instance's leases. */
  readonly instanceId: string;
  /** Time to live of a lease, ms. */
  readonly leaseMs: number;
  private readonly held = new Set<string>();
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;
  /** Whether the last refresh failed (so an outage is logged once, and its end once). */
  private failing = false;
  private closed = false;

  /**
   * @param redis the commands client shared with the event log (so a lease set before an event is
   *   sent before it on the same connection).
   */
  constructor(
    private readonly redis: Redis,
    options: GenerationLeasesOptions,
  ) {
    this.leaseMs = options.leaseMs;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.logger = options.logger ?? defaultLogger();
    // Back from a lost connection: renew at once rather than up to a third of a lease later.
    redis.on('ready', () => void this.refresh());
  }

  /**
   * Takes the lease of a generation this instance starts running and keeps it refreshed until
   * `release`. Its key is first written by the save of the generation's shared record (given the
   * lease, see redis-generation-records.ts), then by every refresh.
   */
  hold(generationId: string): void {
    this.held.add(generationId);
    if (!this.timer && !this.closed) {
      this.timer = setInterval(() => void this.refresh(), Math.max(1, Math.floor(this.leaseMs / 3)));
      this.timer.unref();
    }
  }

  /**
   * Gives the lease up once the generation's terminal event is stored: stops refreshing it and, with
   * `write` (default), deletes it (`DEL key`); `write: false` when the save of the final record
   * already did. Never rejects: a lease that cannot be deleted expires after `leaseMs` (harmless:
   * the generation has ended).
   */
  release(generationId: string, { write = true }: { write?: boolean } = {}): Promise<void> {
    if (!this.held.delete(generationId)) return Promise.resolve();
    if (this.held.size === 0) this.stopTimer();
    if (!write) return Promise.resolve();
    return this.redis.del(GENERATION_OWNER_PREFIX + generationId).then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * Whether some instance holds the lease of the generation (`EXISTS key`).
   * @throws when Redis is unreachable.
   */
  async isHeld(generationId: string): Promise<boolean> {
    return (await this.redis.exists(GENERATION_OWNER_PREFIX + generationId)) === 1;
  }

  /** Number of leases this instance holds. */
  get size(): number {
    return this.held.size;
  }

  /** Stops refreshing (the instance stops); leases still held expire after `leaseMs`. */
  close(): void {
    this.closed = true;
    this.stopTimer();
  }

  /** Renews every lease held, in one pipeline; skipped while the previous renewal is in flight. */
  private async refresh(): Promise<void> {
    if (this.refreshing || this.closed || this.held.size === 0) return;
    this.refreshing = true;
    try {
      const pipeline = this.redis.pipeline();
      for (const generationId of this.held) pipeline.set(GENERATION_OWNER_PREFIX + generationId, this.instanceId, 'PX', this.leaseMs);
      const results = await pipeline.exec();
      const failure = results?.find(([error]) => error)?.[0];
      if (failure) throw failure;
      if (this.failing) this.logger.info({ leases: this.held.size }, 'generation leases renewed again');
      this.failing = false;
    } catch (error) {
      if (!this.failing) {
        this.logger.warn(
          { err: error, leases: this.held.size },
          `cannot renew the generation leases; other instances end these generations (INSTANCE_LOST) if this lasts ${this.leaseMs} ms`,
        );
      }
      this.failing = true;
    } finally {
      this.refreshing = false;
    }
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
