/**
 * The generation queue (BullMQ, https://docs.bullmq.io) between instances in role `api` and role
 * `worker`. One queue per provider, `gateway-generations-{providerId}` (the generation's first
 * candidate), so each worker limits its concurrency per provider. A job carries what a worker needs
 * to run the generation — never a per-request API key — and the worker writes the events to the
 * shared Redis stream.
 *
 * A job is never run twice concurrently (BullMQ's lock) and never restarted: workers run with
 * `maxStalledCount: 0`, so when a job's worker stops renewing its lock (the worker died) the next
 * stalled check emits `stalled` and marks the job to fail ("job stalled more than allowable limit",
 * BullMQ 5 fails it when a worker next takes it, without running it). Every api and worker instance
 * runs that check and listens for `stalled` and `failed` (`QueueEvents`); the generation service then
 * ends the generation with `WORKER_LOST` (an append that only one instance can win).
 */
import type { Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { GenerationJobData } from '../generations/generation-job.js';

export type { GenerationJobData } from '../generations/generation-job.js';

/** The queue name of a provider's generations. */
export function generationQueueName(providerId: string): string {
  return `gateway-generations-${providerId}`;
}

/** Settings of the queue. */
export interface GenerationQueueOptions {
  redisUrl: string;
  /** Prefix of the BullMQ keys. */
  prefix: string;
  /** Every provider id (one queue each). */
  providerIds: string[];
  /** Lock time of a running job and interval of the stalled check, ms. */
  lockMs: number;
  /** Generations run at once per provider queue, by a worker. */
  concurrency: (providerId: string) => number;
  /** Told about errors of the BullMQ clients (they reconnect by themselves). */
  onError?: (error: Error) => void;
}

/** BullMQ, imported on first use: only roles `api` and `worker` load it (about 30 MB of memory). */
let bullmqModule: Promise<typeof import('bullmq')> | undefined;
const importBullmq = (): Promise<typeof import('bullmq')> => (bullmqModule ??= import('bullmq'));

/** The BullMQ side of roles `api` and `worker`. */
export class GenerationQueue {
  private readonly queues = new Map<string, Promise<Queue>>();
  private readonly closers: Array<() => Promise<unknown>> = [];
  private readonly connections: Redis[] = [];

  constructor(private readonly options: GenerationQueueOptions) {}

  /** A new connection as BullMQ wants it (no per-request retry limit). */
  private connection(): Redis {
    const redis = new Redis(this.options.redisUrl, { maxRetriesPerRequest: null, connectionName: 'graphql-ai-gateway-queue' });
    redis.on('error', (error: Error) => this.options.onError?.(error));
    this.connections.push(redis);
    return redis;
  }

  /** Adds the generation's job to its first candidate's queue. */
  async enqueue(data: GenerationJobData): Promise<void> {
    const providerId = data.candidates[0]!.providerId;
    let created = this.queues.get(providerId);
    if (!created) {
      created = importBullmq().then(({ Queue }) => {
        const queue = new Queue(generationQueueName(providerId), { connection: this.connection(), prefix: this.options.prefix });
        queue.on('error', (error: Error) => this.options.onError?.(error));
        this.closers.push(() => queue.close());
        return queue;
      });
      this.queues.set(providerId, created);
    }
    const queue = await created;
    await queue.add('generation', data, { jobId: data.generationId, attempts: 1, removeOnComplete: true, removeOnFail: { age: 3600 } });
  }

  /**
   * Runs the stalled check of every provider queue (without taking jobs) and reports each stalled
   * job (its worker died) and each failed one, with its generation id and the reason.
   */
  async watchLostJobs(onLost: (generationId: string, reason: string) => void): Promise<void> {
    const { QueueEvents } = await importBullmq();
    for (const providerId of this.options.providerIds) {
      const name = generationQueueName(providerId);
      const events = new QueueEvents(name, { connection: this.connection(), prefix: this.options.prefix });
      events.on('error', (error: Error) => this.options.onError?.(error));
      events.on('stalled', ({ jobId }) => onLost(jobId, 'its worker stopped renewing the job lock'));
      events.on('failed', ({ jobId, failedReason }) => onLost(jobId, failedReason));
      this.closers.push(() => events.close());
      await events.waitUntilReady();
      // A worker that never takes jobs: it only moves stalled jobs (maxStalledCount 0 → failed).
      const checker = await this.worker(name, undefined, 1, false);
      void checker.startStalledCheckTimer();
    }
  }

  /** Role `worker`: takes jobs from every provider queue and runs each with `process` (which must not throw for a generation's own failure). */
  async startWorkers(process: (data: GenerationJobData, job: Job<GenerationJobData>) => Promise<void>): Promise<void> {
    for (const providerId of this.options.providerIds) {
      const worker = await this.worker(generationQueueName(providerId), (job) => process(job.data, job), this.options.concurrency(providerId), true);
      await worker.waitUntilReady();
    }
  }

  private async worker(
    name: string,
    processor: ((job: Job<GenerationJobData>) => Promise<void>) | undefined,
    concurrency: number,
    autorun: boolean,
  ): Promise<Worker<GenerationJobData>> {
    const { Worker } = await importBullmq();
    const worker = new Worker<GenerationJobData>(name, processor ?? null, {
      connection: this.connection(),
      prefix: this.options.prefix,
      concurrency,
      autorun,
      maxStalledCount: 0,
      lockDuration: this.options.lockMs,
      stalledInterval: this.options.lockMs,
    });
    worker.on('error', (error: Error) => this.options.onError?.(error));
    this.closers.push(() => worker.close());
    return worker;
  }

  /** Closes workers (waiting for their running jobs), listeners, queues and connections. */
  async close(): Promise<void> {
    await Promise.all(this.closers.map((close) => close().catch(() => {})));
    await Promise.all(this.connections.map((redis) => redis.quit().catch(() => redis.disconnect())));
  }
}
