/**
 * A follower of another instance's generation re-reads the log once its live subscription is
 * confirmed (`GenerationPubSub.whenListening`): scaled out, events published after its first read
 * but before Redis ran its `SUBSCRIBE` reach neither, and without that re-read a lost terminal event
 * would leave it waiting. Real parts: the in-memory event log and the in-process pub/sub; the
 * confirmation is the one thing held back, as Redis may hold it.
 */
import { describe, expect, it } from 'vitest';
import { MemoryEventLog } from '../../src/generations/event-log.js';
import { followEvents, type FollowSource } from '../../src/generations/event-follower.js';
import type { GenerationEvent } from '../../src/generations/generation-events.js';
import { createGenerationPubSub, type GenerationPubSub } from '../../src/generations/generation-pub-sub.js';
import type { GenerationRecord } from '../../src/generations/generation-records.js';

describe('followEvents, scaled out', () => {
  it('reads the log again once its subscription is confirmed, so events published before that are not lost', async () => {
    const eventLog = new MemoryEventLog();
    let confirm!: () => void;
    const confirmed = new Promise<void>((resolve) => (confirm = resolve));
    const pubSub: GenerationPubSub = { ...createGenerationPubSub(), whenListening: () => confirmed };
    const source: FollowSource = {
      eventLog,
      pubSub,
      register: () => () => {},
      sharedEnd: async () => undefined,
      settledLastSequence: async (record) => record.lastSequence,
      unstoredEnd: () => undefined,
      runsHere: () => false,
    };
    const record = { id: 'g', kind: 'chat', status: 'running', lastSequence: 1, text: '', createdAt: new Date() } as unknown as GenerationRecord;
    const events: GenerationEvent[] = [
      { type: 'chat-completion-started', generationId: 'g', sequence: 1, provider: 'p', model: 'm' },
      { type: 'chat-token-delta', generationId: 'g', sequence: 2, text: 'Once' },
      { type: 'chat-completion-completed', generationId: 'g', sequence: 3, finishReason: 'stop', text: 'Once' },
    ] as GenerationEvent[];
    await eventLog.append(events[0]!);

    const follower = followEvents(source, record, 0, { closed: false });
    expect((await follower.next()).value).toEqual(events[0]);
    // Stored, and published where this follower did not hear it yet (its subscription not in force).
    await eventLog.append(events[1]!);
    await eventLog.append(events[2]!);
    const rest = (async () => {
      const seen: GenerationEvent[] = [];
      for (let result = await follower.next(); !result.done; result = await follower.next()) seen.push(result.value);
      return seen;
    })();
    confirm();
    expect(await rest).toEqual(events.slice(1));
  });
});
