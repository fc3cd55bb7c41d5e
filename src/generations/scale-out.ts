/**
 * The seam of scale-out: what the generation service does differently when several instances share
 * one Redis (shared records, owner leases, lost-instance recovery, cancellation across instances,
 * queue roles). A single instance installs none of it, and then never runs any of it: a lookup,
 * a cancel or a follower on one instance touches only this instance's own state. The Redis
 * implementation lives in `src/scale-out/`.
 */
import type { FollowSource } from './event-follower.js';
import type { UnnumberedGenerationEvent } from './generation-events.js';
import type { GenerationFilter, GenerationPage } from './generation-listing.js';
import type { GenerationJobData } from './generation-job.js';
import type { GenerationRecord } from './generation-records.js';
import type { GenerationRun } from './generation-run.js';

/** An owner lease as shared with a record: the instance running it and the lease's time to live, ms. */
export interface SharedLease {
  owner: string;
  durationMs: number;
}

/** A queued generation a worker is to run: its record as shared (status RUNNING, `lastSequence` and a chat's `text` from the shared log). */
export interface LoadedJob {
  record: GenerationRecord;
}

/**
 * What the generation service asks of the instances it shares state with. None of these is called
 * for a generation this instance keeps itself (running or retained); the service answers those alone.
 */
export interface ScaleOut {
  /** While a subscriber waits for live events, re-read the shared log this often, ms (a publish can be lost). */
  readonly recheckIntervalMs?: number;
  /**
   * Role `api`: queues a generation for a worker instead of running it here (absent: generations run
   * here). Appends event 1 through `run` (never started here), shares the record and queues the job;
   * the record then follows the shared stream through `source`, so its status changes when the
   * terminal event arrives. A queue that refuses the job ends the generation with `SERVICE_UNAVAILABLE`.
   */
  enqueue?(run: GenerationRun, started: UnnumberedGenerationEvent, data: GenerationJobData, source: FollowSource): Promise<void>;
  /**
   * Saves the record where other instances see it, with `lease` when it runs under one. Never
   * rejects: a failure is logged.
   */
  share(record: GenerationRecord, lease?: SharedLease): Promise<void>;
  /**
   * A generation starts running here: with `lease`, its owner lease is taken and kept (its key is
   * written by the next {@link share} given the returned lease, which the caller sends before the
   * first event's append); in any case this instance listens for cancellations of it from other
   * instances until {@link disown}.
   * @returns the lease to share with the record, when it runs under one.
   */
  adopt(run: GenerationRun, options: { lease: boolean }): { lease?: SharedLease };
  /**
   * The run ended (its final record was shared, which deletes the lease's key): stop listening for
   * cancellations, and stop renewing its lease unless `keepLease` (its end is not stored yet).
   */
  disown(generationId: string, options: { keepLease: boolean }): void;
  /** Gives up a generation's owner lease (its end, kept for later, was written or given up). */
  releaseLease(generationId: string): void;
  /**
   * Another instance's generation: its shared record (a running chat's `text` and `lastSequence`
   * rebuilt from the shared log, unless `options.text` is false: a subscriber reads the log itself),
   * ended first with `INSTANCE_LOST` when its owner lease is gone; undefined when unknown or expired.
   * @throws GatewayError `EVENT_LOG_UNAVAILABLE` when the shared state cannot be reached.
   */
  find(generationId: string, options?: { text?: boolean }): Promise<GenerationRecord | undefined>;
  /**
   * One page of every instance's generations (see generation-listing.ts).
   * @throws GatewayError `BAD_USER_INPUT` for a bad page size or cursor, `EVENT_LOG_UNAVAILABLE` when Redis cannot be reached.
   */
  list(filter: GenerationFilter): Promise<GenerationPage>;
  /**
   * For a follower of another instance's generation: the last sequence of its shared record once
   * that record is final, else undefined (a record whose owner is gone is ended first).
   * @throws GatewayError `EVENT_LOG_UNAVAILABLE` when the shared records cannot be read.
   */
  sharedEnd(record: GenerationRecord): Promise<number | undefined>;
  /** Asks whichever instance runs the generation to cancel it with `reason`. */
  requestCancel(generationId: string, reason: string): void;
  /**
   * Role `worker`: the generation of a queued job, rebuilt from the shared record and log; undefined
   * when it already ended or is unknown.
   */
  loadJob(data: GenerationJobData): Promise<LoadedJob | undefined>;
  /**
   * Ends a queued generation whose job failed (its worker died or refused it) with `WORKER_LOST`,
   * unless it already ended.
   */
  markLost(generationId: string, reason: string): Promise<void>;
  /** Stops renewing leases (the instance stops; leases still held expire) and following queued generations. */
  close(): void;
}
