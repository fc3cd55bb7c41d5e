/**
 * The in-memory event log keeps a finished generation's events compacted (src/generations/compact-events.ts):
 * every replay — from the start and from every `after` — must give back exactly the events that
 * were appended, whatever their kinds; and a retained generation must cost far less than its
 * events as objects.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { CompactEvents } from '../../src/generations/compact-events.js';
import { MemoryEventLog } from '../../src/generations/event-log.js';
import type { GenerationEvent } from '../../src/generations/generation-events.js';

const ID = 'generation-1';

/** A generation's events in order, numbered from `first`. */
function numbered(events: Array<Record<string, unknown>>, first = 1): GenerationEvent[] {
  return events.map((event, index) => Object.assign({}, event, { generationId: ID, sequence: first + index }) as unknown as GenerationEvent);
}

/** A chat with every kind of event: a failed attempt, reasoning, text (with non-ASCII and an empty-looking piece), a tool call. */
function mixedChat(): GenerationEvent[] {
  const text = ['Once', ' upon', ' a time — ', '🦊', ' the end.'];
  return numbered([
    { type: 'chat-completion-started', provider: 'alpha', model: 'm' },
    { type: 'provider-attempt-failed', provider: 'alpha', error: { code: 'UPSTREAM_ERROR', message: 'boom', provider: 'alpha' } },
    { type: 'chat-completion-started', provider: 'beta', model: 'm' },
    { type: 'chat-reasoning-delta', text: 'Think' },
    { type: 'chat-reasoning-delta', text: 'ing.' },
    ...text.map((piece) => ({ type: 'chat-token-delta', text: piece })),
    { type: 'chat-tool-call-delta', index: 0, id: 'call_1', name: 'lookup', argumentsDelta: '{"q":' },
    { type: 'chat-tool-call-delta', index: 0, argumentsDelta: '"fox"}' },
    { type: 'chat-completion-completed', finishReason: 'tool-calls', text: text.join(''), reasoning: 'Thinking.' },
  ]);
}

describe('CompactEvents', () => {
  it('replays exactly the events it was made of, from every position', () => {
    const events = mixedChat();
    const compact = CompactEvents.of(events);
    expect(compact.lastSequence).toBe(events.length);
    for (let after = 0; after <= events.length + 1; after++) {
      expect(compact.after(after)).toEqual(events.filter((event) => event.sequence > after));
    }
  });

  it('keeps the key order of rebuilt deltas (the same shape as appended ones)', () => {
    const events = mixedChat();
    const rebuilt = CompactEvents.of(events).after(0);
    for (const [index, event] of rebuilt.entries()) expect(Object.keys(event)).toEqual(Object.keys(events[index]!));
  });

  it('keeps a delta longer than its layout can describe as an object', () => {
    const long = 'x'.repeat(20_000);
    const events = numbered([
      { type: 'chat-completion-started', provider: 'p', model: 'm' },
      { type: 'chat-token-delta', text: 'a' },
      { type: 'chat-token-delta', text: long },
      { type: 'chat-token-delta', text: 'b' },
      { type: 'chat-completion-completed', finishReason: 'stop', text: `a${long}b` },
    ]);
    expect(CompactEvents.of(events).after(0)).toEqual(events);
    expect(CompactEvents.of(events).after(2)).toEqual(events.slice(2));
  });

  it('replays a generation whose events start after sequence 1 (a log trimmed at the front)', () => {
    const events = mixedChat().slice(4);
    const compact = CompactEvents.of(events);
    expect(compact.firstSequence).toBe(5);
    expect(compact.after(0)).toEqual(events);
    expect(compact.after(7)).toEqual(events.filter((event) => event.sequence > 7));
  });
});

describe('MemoryEventLog', () => {
  it('reads the same events before and after the terminal event compacts them, and refuses a late append', async () => {
    const log = new MemoryEventLog();
    const events = mixedChat();
    for (const event of events.slice(0, -1)) await log.append(event);
    const before = await log.read(ID, 3);
    await log.append(events.at(-1)!);
    expect(before).toEqual(events.slice(3, -1));
    expect(await log.read(ID, 0)).toEqual(events);
    expect(await log.read(ID, 3)).toEqual(events.slice(3));
    const late = Object.assign({}, events[0], { sequence: 3 }) as GenerationEvent;
    await expect(log.append(late)).rejects.toThrow(/out of order/);
    log.evict(ID, 10);
    expect(await log.read(ID, 0)).toEqual(events.slice(10));
  });

  it('holds a finished generation of 512 one-token deltas in a fraction of their size as objects', async () => {
    // A garbage collector to call, without starting the test process with --expose-gc.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const measure = async (compacted: boolean): Promise<number> => {
      const logs: unknown[] = [];
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let generation = 0; generation < 200; generation++) {
        const id = `g-${compacted}-${generation}`;
        const tokens = Array.from({ length: 512 }, (_, index) => ` w${index}`);
        const events = [
          { type: 'chat-completion-started', provider: 'p', model: 'm' },
          ...tokens.map((text) => ({ type: 'chat-token-delta', text })),
          ...(compacted ? [{ type: 'chat-completion-completed', finishReason: 'stop', text: tokens.join('') }] : []),
        ].map((event, index) => Object.assign({}, event, { generationId: id, sequence: index + 1 }) as GenerationEvent);
        const log = new MemoryEventLog();
        for (const event of events) await log.append(event);
        logs.push(log);
      }
      gc();
      const used = process.memoryUsage().heapUsed - before;
      expect(logs).toHaveLength(200);
      return used;
    };
    const asObjects = await measure(false);
    const compacted = await measure(true);
    expect(compacted).toBeLessThan(asObjects / 4);
  });
});
