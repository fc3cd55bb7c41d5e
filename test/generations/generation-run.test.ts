/**
 * GenerationRun on its own (the per-generation object of the service): its events numbered and
 * stored in order whatever the log's latency, exactly one terminal event (completed, cancelled,
 * failed with the work's error, GENERATION_TIMEOUT past its limit), and a log that refuses an
 * event ending the run with EVENT_LOG_UNAVAILABLE right after the last event it stored.
 */
import { describe, expect, it } from 'vitest';
import { MemoryEventLog } from '../../src/generations/event-log.js';
import { isTerminalEvent, type GenerationEvent } from '../../src/generations/generation-events.js';
import { createGenerationPubSub } from '../../src/generations/generation-pub-sub.js';
import type { ChatGenerationRecord } from '../../src/generations/generation-records.js';
import { GenerationRun, type GenerationRunContext, type GenerationWork } from '../../src/generations/generation-run.js';
import { createLogger } from '../../src/operations/logger.js';
import { ProviderError } from '../../src/providers/provider.js';

/** A memory log whose appends answer after `delayOf(sequence)` ms, and refuse from `refuseFrom` on. */
class SlowEventLog extends MemoryEventLog {
  constructor(
    private readonly delayOf: (sequence: number) => number,
    private readonly refuseFrom = Number.POSITIVE_INFINITY,
  ) {
    super();
  }

  override async append(event: GenerationEvent): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, this.delayOf(event.sequence)));
    if (event.sequence >= this.refuseFrom && !isTerminalEvent(event)) throw new Error('the log is full');
    await super.append(event);
  }
}

function record(): ChatGenerationRecord {
  return { kind: 'chat', id: `run-${Math.random().toString(36).slice(2)}`, status: 'running', provider: 'scripted', model: 'script', createdAt: new Date(), text: '', lastSequence: 0 };
}

function context(eventLog: MemoryEventLog, timeoutMs?: number): GenerationRunContext & { ended: GenerationRun[] } {
  const ended: GenerationRun[] = [];
  return {
    eventLog,
    pubSub: createGenerationPubSub(),
    logger: createLogger({ level: 'silent' }),
    ...(timeoutMs !== undefined && { timeoutMs }),
    unstoredEnds: new Map(),
    wakeFollowers: () => {},
    keeps: () => true,
    share: async () => {},
    releaseLease: () => {},
    onEnded: (run) => ended.push(run),
    ended,
  };
}

/** Work that emits `count` deltas, then completes. */
const deltas =
  (count: number): GenerationWork =>
  async (run) => {
    for (let index = 0; index < count; index += 1) await run.emit({ type: 'chat-token-delta', text: String(index) });
    return { type: 'chat-completion-completed', finishReason: 'stop', text: '' };
  };

describe('GenerationRun', () => {
  it('stores its events in sequence order while the log answers in another order, then ends once', async () => {
    // Even sequences take longer than odd ones: appends would overtake each other if they were not chained.
    const log = new SlowEventLog((sequence) => (sequence % 2 === 0 ? 5 : 0));
    const runContext = context(log);
    const run = new GenerationRun(record(), runContext);
    const started = run.emit({ type: 'chat-completion-started', provider: 'scripted', model: 'script' });
    await run.start(deltas(6));
    await started;
    const events = await log.read(run.record.id, 0);
    expect(events.map((event) => event.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(events.filter(isTerminalEvent)).toHaveLength(1);
    expect(run.record).toMatchObject({ status: 'completed', lastSequence: 8 });
    expect(runContext.ended).toEqual([run]);
    expect(await run.settledLastSequence()).toBe(8);
  });

  it('ends with generation-cancelled and its reason when cancelled while the work waits', async () => {
    const log = new MemoryEventLog();
    const run = new GenerationRun(record(), context(log));
    // Work waiting on a step that never settles on its own; steps go through `race`, as a provider's do.
    void run.start((_run, race) => race(new Promise(() => {})));
    await run.cancel('stop it');
    expect((await log.read(run.record.id, 0)).at(-1)).toMatchObject({ type: 'generation-cancelled', reason: 'stop it', sequence: 1 });
    expect(run.record.status).toBe('cancelled');
  });

  it('fails with GENERATION_TIMEOUT past its time limit, and with the work\'s own error otherwise', async () => {
    const log = new MemoryEventLog();
    const slow = new GenerationRun(record(), context(log, 20));
    await slow.start((_run, race) => race(new Promise(() => {})));
    expect(slow.record).toMatchObject({ status: 'failed', error: { code: 'GENERATION_TIMEOUT' } });
    const failing = new GenerationRun(record(), context(log));
    await failing.start(async () => {
      throw new ProviderError({ code: 'UPSTREAM_ERROR', provider: 'scripted', message: 'boom' });
    });
    expect((await log.read(failing.record.id, 0)).at(-1)).toMatchObject({ type: 'generation-failed', error: { code: 'UPSTREAM_ERROR', message: 'boom' } });
  });

  it('ends with EVENT_LOG_UNAVAILABLE right after the last stored event when the log refuses one', async () => {
    const log = new SlowEventLog(() => 0, 4);
    const run = new GenerationRun(record(), context(log));
    await run.start(deltas(10));
    const events = await log.read(run.record.id, 0);
    expect(events.map((event) => event.sequence)).toEqual([1, 2, 3, 4]);
    expect(events.at(-1)).toMatchObject({ type: 'generation-failed', error: { code: 'EVENT_LOG_UNAVAILABLE' } });
    expect(run.record).toMatchObject({ status: 'failed', lastSequence: 4 });
  });
});
