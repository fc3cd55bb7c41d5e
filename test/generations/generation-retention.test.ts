/** GenerationRetention on its own: finished generations forgotten after the retention time, oldest first, and beyond the maximum at once. */
import { describe, expect, it } from 'vitest';
import { GenerationRetention } from '../../src/generations/generation-retention.js';

describe('GenerationRetention', () => {
  it('forgets the oldest at once beyond maxRetained', () => {
    const forgotten: string[] = [];
    const retention = new GenerationRetention({ retentionMs: 60_000, maxRetained: 2, forget: (id) => forgotten.push(id) });
    for (const id of ['a', 'b', 'c', 'd']) retention.keep(id);
    expect(forgotten).toEqual(['a', 'b']);
    retention.clear();
  });

  it('forgets each after the retention time, in the order they finished, with one timer', async () => {
    const forgotten: string[] = [];
    let allForgotten!: () => void;
    const done = new Promise<void>((resolve) => (allForgotten = resolve));
    const retention = new GenerationRetention({
      retentionMs: 30,
      forget: (id) => {
        forgotten.push(id);
        if (forgotten.length === 3) allForgotten();
      },
    });
    const keptAt = performance.now();
    retention.keep('first');
    retention.keep('second');
    retention.keep('third');
    await done;
    expect(forgotten).toEqual(['first', 'second', 'third']);
    expect(performance.now() - keptAt).toBeGreaterThanOrEqual(29);
  });

  it('forgets nothing once cleared', async () => {
    const forgotten: string[] = [];
    const retention = new GenerationRetention({ retentionMs: 5, forget: (id) => forgotten.push(id) });
    retention.keep('a');
    retention.clear();
    // A later generation's expiry runs on a new timer; the cleared one never fires.
    let later!: () => void;
    const laterForgotten = new Promise<void>((resolve) => (later = resolve));
    const next = new GenerationRetention({ retentionMs: 10, forget: () => later() });
    next.keep('b');
    await laterForgotten;
    expect(forgotten).toEqual([]);
  });
});
