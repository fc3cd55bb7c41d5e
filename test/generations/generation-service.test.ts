/**
 * The generation service on its own, behind the provider interface: numbering, replay while live,
 * slow subscribers (more live events than the buffer holds), cancellation, and retention.
 * The provider is a scripted implementation of `ChatProvider` (the seam the guide names for fakes).
 */
import { describe, expect, it, vi } from 'vitest';
import type { GenerationEvent } from '../../src/generations/generation-events.js';
import { GenerationService } from '../../src/generations/generation-service.js';
import { createInMemoryService, drain } from '../helpers/in-memory-service.js';
import { scriptedProvider } from '../helpers/scripted-provider.js';

const input = { messages: [{ role: 'user' as const, content: 'go' }] };

describe('GenerationService', () => {
  it('delivers every event in order to a subscriber that reads nothing until the generation has ended', async () => {
    const { service } = createInMemoryService(scriptedProvider(2000));
    const record = await service.startChat(input);
    const subscription = await service.subscribe(record.id);
    const first = await subscription.next(); // the subscriber is live now, then stalls
    const finished = await drain(await service.subscribe(record.id));
    expect(finished).toHaveLength(2002);
    const rest = await drain(subscription);
    const events = [first.value as GenerationEvent, ...rest];
    expect(events.map((event) => event.sequence)).toEqual(finished.map((event) => event.sequence));
    expect(events.at(-1)).toMatchObject({ type: 'chat-completion-completed', text: record.text });
    expect(record.text).toHaveLength(2000);
  });

  it('joins a running generation without gaps or repeats, wherever `after` points', async () => {
    let release: () => void = () => {};
    let opened = Promise.resolve();
    const gate = () => opened;
    const { service } = createInMemoryService(scriptedProvider(50, () => gate()));
    opened = new Promise<void>((resolve) => (release = resolve));
    const record = await service.startChat(input);
    const early = await service.subscribe(record.id, 0);
    const fromOne = await service.subscribe(record.id, 1);
    release();
    const [all, resumed] = await Promise.all([drain(early), drain(fromOne)]);
    expect(all.map((event) => event.sequence)).toEqual(Array.from({ length: 52 }, (_, index) => index + 1));
    expect(resumed).toEqual(all.slice(1));
  });

  it('a cancellation between two provider steps leaves no unhandled rejection (the next step is still observed)', async () => {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    try {
      let service!: GenerationService;
      // The first delta cancels the generation synchronously, before the provider's next step is asked for.
      ({ service } = createInMemoryService(scriptedProvider(5), { observer: { contentReceived: (record) => void service.cancel(record.id, 'between steps') } }));
      const record = await service.startChat(input);
      const events = await drain(await service.subscribe(record.id));
      expect(events.at(-1)).toMatchObject({ type: 'generation-cancelled', reason: 'between steps' });
      // Node reports unhandled rejections once the microtask queue has drained.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(rejections).toEqual([]);
  });

  it('cancels promptly even when the provider ignores the signal, and emits generation-cancelled last', async () => {
    const never = new Promise<void>(() => {});
    const { service } = createInMemoryService(scriptedProvider(10, () => never));
    const record = await service.startChat(input);
    const events = drain(await service.subscribe(record.id));
    const cancelled = await service.cancel(record.id, 'test says stop');
    expect(cancelled.status).toBe('cancelled');
    expect((await events).map((event) => event.type)).toEqual(['chat-completion-started', 'generation-cancelled']);
    expect((await events).at(-1)).toMatchObject({ reason: 'test says stop', sequence: 2 });
  });

  it('closing a startChatStream iterator while it waits cancels the generation', async () => {
    const never = new Promise<void>(() => {});
    const { service } = createInMemoryService(scriptedProvider(10, () => never));
    const stream = await service.startChatStream(input);
    const started = await stream.next();
    const waiting = stream.next();
    await stream.return!();
    expect(await waiting).toEqual({ done: true, value: undefined });
    const record = service.get((started.value as GenerationEvent).generationId)!;
    expect(record.status).toBe('cancelled');
  });

  it('forgets each finished generation and its events after the retention time, counted from its own end', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const { service, eventLog } = createInMemoryService(scriptedProvider(3), { retentionMs: 5_000 });
      const record = await service.startChat(input);
      await drain(await service.subscribe(record.id));
      vi.advanceTimersByTime(2_000);
      const later = await service.startChat(input);
      await drain(await service.subscribe(later.id));
      expect(service.get(record.id)).toBe(record);
      vi.advanceTimersByTime(2_999);
      expect(service.get(record.id)).toBe(record);
      expect(eventLog.size).toBe(2);
      vi.advanceTimersByTime(1);
      expect(service.get(record.id)).toBeUndefined();
      expect(service.get(later.id)).toBe(later);
      expect(eventLog.size).toBe(1);
      await expect(service.subscribe(record.id)).rejects.toMatchObject({ code: 'GENERATION_NOT_FOUND' });
      vi.advanceTimersByTime(1_999);
      expect(service.get(later.id)).toBe(later);
      vi.advanceTimersByTime(1);
      expect(service.get(later.id)).toBeUndefined();
      expect(eventLog.size).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps at most maxRetained finished generations, forgetting the oldest first', async () => {
    const { service, eventLog } = createInMemoryService(scriptedProvider(1), { maxRetained: 2 });
    const ids: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const record = await service.startChat(input);
      await drain(await service.subscribe(record.id));
      ids.push(record.id);
    }
    expect(service.get(ids[0]!)).toBeUndefined();
    expect(service.get(ids[1]!)).toBeDefined();
    expect(service.get(ids[2]!)).toBeDefined();
    expect(eventLog.size).toBe(2);
  });
});
