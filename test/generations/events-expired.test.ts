/**
 * Subscribers never skip events the log no longer holds: on the in-memory event log (with events
 * evicted or deleted, as a trimmed or expired Redis Stream would have them), a subscriber that needs
 * them ends with GatewayError `EVENTS_EXPIRED` naming the generation and the missing sequences —
 * whether it joins late with `after`, or falls behind a live generation. The provider is a scripted
 * implementation of `ChatProvider` (the seam the guide names for fakes).
 */
import { describe, expect, it } from 'vitest';
import { MemoryEventLog } from '../../src/generations/event-log.js';
import { GatewayError } from '../../src/generations/gateway-error.js';
import type { GenerationEvent } from '../../src/generations/generation-events.js';
import type { ChatProvider } from '../../src/providers/provider.js';
import { createInMemoryService } from '../helpers/in-memory-service.js';
import { scriptedProvider } from '../helpers/scripted-provider.js';

/** Reads every event until the stream ends or fails; `error` is what it failed with. */
async function collect(events: AsyncIterable<GenerationEvent>): Promise<{ events: GenerationEvent[]; error?: unknown }> {
  const seen: GenerationEvent[] = [];
  try {
    for await (const event of events) seen.push(event);
    return { events: seen };
  } catch (error) {
    return { events: seen, error };
  }
}

const input = { messages: [{ role: 'user' as const, content: 'go' }] };

describe('MemoryEventLog', () => {
  it('replays after a sequence, evicts the front, and after a delete starts over at any sequence (as a Redis Stream after DEL)', async () => {
    const log = new MemoryEventLog();
    const event = (sequence: number): GenerationEvent => ({ type: 'chat-token-delta', generationId: 'g', sequence, text: `t${sequence}` });
    for (let sequence = 1; sequence <= 5; sequence += 1) await log.append(event(sequence));
    await expect(log.append(event(7))).rejects.toThrow(/out of order/);
    await expect(log.append(event(5))).rejects.toThrow(/out of order/);
    log.evict('g', 2);
    expect((await log.read('g', 0)).map((stored) => stored.sequence)).toEqual([3, 4, 5]);
    expect((await log.read('g', 3)).map((stored) => stored.sequence)).toEqual([4, 5]);
    await log.append(event(6));
    await log.delete('g');
    expect(await log.read('g', 0)).toEqual([]);
    await log.append(event(9));
    expect((await log.read('g', 0)).map((stored) => stored.sequence)).toEqual([9]);
    await expect(log.append({ ...event(0), generationId: 'h' })).rejects.toThrow(/no valid sequence/);
  });
});

describe('subscribers and events the log no longer holds', () => {
  it('a subscriber with after whose events were evicted ends with EVENTS_EXPIRED naming the generation and the missing range', async () => {
    const { service, eventLog } = createInMemoryService(scriptedProvider(3));
    const record = await service.startChat(input);
    const all = await collect(await service.subscribe(record.id));
    expect(all.events.map((event) => event.sequence)).toEqual([1, 2, 3, 4, 5]);

    eventLog.evict(record.id, 3);
    const fromStart = await collect(await service.subscribe(record.id, 0));
    expect(fromStart.events).toEqual([]);
    expect(fromStart.error).toBeInstanceOf(GatewayError);
    expect(fromStart.error).toMatchObject({ code: 'EVENTS_EXPIRED', extensions: { code: 'EVENTS_EXPIRED' } });
    expect((fromStart.error as Error).message).toContain(`Events 1 to 3 of generation "${record.id}"`);

    const fromTwo = await collect(await service.subscribe(record.id, 2));
    expect(fromTwo.events).toEqual([]);
    expect((fromTwo.error as Error).message).toContain(`Events 3 to 3 of generation "${record.id}"`);

    // What the log still holds replays as before.
    expect(await collect(await service.subscribe(record.id, 3))).toEqual({ events: all.events.slice(3) });
  });

  it('a finished generation whose whole log is gone ends a subscriber with EVENTS_EXPIRED instead of waiting forever', async () => {
    const { service, eventLog } = createInMemoryService(scriptedProvider(2));
    const record = await service.startChat(input);
    await collect(await service.subscribe(record.id));
    await eventLog.delete(record.id);
    const result = await collect(await service.subscribe(record.id, 1));
    expect(result.events).toEqual([]);
    expect(result.error).toMatchObject({ code: 'EVENTS_EXPIRED' });
    expect((result.error as Error).message).toContain(`Events 2 to 4 of generation "${record.id}"`);
    // Nothing is left to give a subscriber that has seen the end.
    expect(await collect(await service.subscribe(record.id, 4))).toEqual({ events: [] });
  });

  it('a subscriber joining a running generation whose first events were evicted ends with EVENTS_EXPIRED', async () => {
    const gates: Array<() => void> = [];
    const { service, eventLog } = createInMemoryService(scriptedProvider(20, (index) => (index < 10 ? Promise.resolve() : new Promise<void>((resolve) => gates.push(resolve)))));
    const record = await service.startChat(input);
    const watcher = await service.subscribe(record.id);
    // Events 1..11 (started, ten deltas) are out once the eleventh delta waits at its gate.
    for (let seen = 0; seen < 11; seen += 1) await watcher.next();
    eventLog.evict(record.id, 6);
    const late = await collect(await service.subscribe(record.id, 2));
    expect(late.events).toEqual([]);
    expect(late.error).toMatchObject({ code: 'EVENTS_EXPIRED' });
    expect((late.error as Error).message).toContain(`Events 3 to 6 of generation "${record.id}"`);
    await service.cancel(record.id, 'test over');
    await watcher.return!();
  });

  it('a subscriber that fell behind a live generation (its buffer overflowed) and whose missing events were evicted ends with EVENTS_EXPIRED, never skipping', async () => {
    let release!: () => void;
    const opened = new Promise<void>((resolve) => (release = resolve));
    const { service, eventLog } = createInMemoryService(scriptedProvider(600, (index) => (index === 0 ? opened : Promise.resolve())));
    const record = await service.startChat(input);
    const slow = await service.subscribe(record.id);
    const first = await slow.next(); // live from here; then it reads nothing while the generation runs on
    expect(first.value).toMatchObject({ sequence: 1 });
    release();
    await collect(await service.subscribe(record.id)); // the generation has ended: 602 events
    expect(record.lastSequence).toBe(602);
    eventLog.evict(record.id, 400);
    const rest = await collect(slow);
    // Whatever it still gets is contiguous from 2; then the hole is reported, not skipped.
    expect(rest.events.map((event) => event.sequence)).toEqual(rest.events.map((_, index) => index + 2));
    expect(rest.error).toMatchObject({ code: 'EVENTS_EXPIRED' });
    const missingFrom = 2 + rest.events.length;
    expect((rest.error as Error).message).toContain(`Events ${missingFrom} to 400 of generation "${record.id}"`);
  });

  it('a chatCompletion-style stream (it owns its generation) that ends with EVENTS_EXPIRED cancels the generation it started', async () => {
    const never = new Promise<void>(() => {});
    let reached!: () => void;
    const waiting = new Promise<void>((resolve) => (reached = resolve));
    const { service, eventLog } = createInMemoryService(
      scriptedProvider(1000, (index) => {
        if (index < 300) return Promise.resolve();
        reached();
        return never;
      }),
    );
    const stream = await service.startChatStream(input);
    const first = await stream.next();
    const id = (first.value as GenerationEvent).generationId;
    await waiting; // 300 deltas are out; the reader has read one event, its live buffer overflowed
    eventLog.evict(id, 100);
    const rest = await collect(stream);
    expect(rest.error).toMatchObject({ code: 'EVENTS_EXPIRED' });
    expect(service.get(id)).toMatchObject({ status: 'cancelled' });
  });

  it('a subscriber that is not behind is untouched by an eviction: it gets every event once', async () => {
    const { service, eventLog } = createInMemoryService(scriptedProvider(30, async () => {}));
    const record = await service.startChat(input);
    const follower = await service.subscribe(record.id);
    const seen: GenerationEvent[] = [];
    for await (const event of follower) {
      seen.push(event);
      if (event.sequence === 5) eventLog.evict(record.id, 5);
    }
    expect(seen.map((event) => event.sequence)).toEqual(Array.from({ length: 32 }, (_, index) => index + 1));
    expect(seen.at(-1)).toMatchObject({ type: 'chat-completion-completed' });
  });
});
