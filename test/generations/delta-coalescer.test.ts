import { describe, expect, it } from 'vitest';
import { DeltaCoalescer } from '../../src/generations/delta-coalescer.js';

describe('DeltaCoalescer', () => {
  it('sends the first delta at once and groups what follows within the window', async () => {
    const sent: string[] = [];
    const deltas = new DeltaCoalescer(60_000, async (text) => {
      sent.push(text);
    });
    await deltas.add('Once');
    expect(sent).toEqual(['Once']);
    await deltas.add(' upon');
    await deltas.add(' a');
    expect(sent).toEqual(['Once']);
    await deltas.flush();
    expect(sent).toEqual(['Once', ' upon a']);
    await deltas.flush();
    expect(sent).toEqual(['Once', ' upon a']);
  });

  it('sends pending text by itself when the window ends', async () => {
    const sent: string[] = [];
    let second!: () => void;
    const secondSent = new Promise<void>((resolve) => (second = resolve));
    const deltas = new DeltaCoalescer(20, async (text) => {
      sent.push(text);
      if (sent.length === 2) second();
    });
    await deltas.add('a');
    await deltas.add('b');
    await deltas.add('c');
    await secondSent;
    expect(sent).toEqual(['a', 'bc']);
  });

  it('with a window of 0 sends every delta, in order', async () => {
    const sent: string[] = [];
    const deltas = new DeltaCoalescer(0, async (text) => {
      sent.push(text);
    });
    for (const text of ['x', 'y', 'z']) await deltas.add(text);
    expect(sent).toEqual(['x', 'y', 'z']);
  });

  it('reports a failed send at the next flush', async () => {
    const deltas = new DeltaCoalescer(0, async () => {
      throw new Error('log is down');
    });
    await expect(deltas.add('x')).rejects.toThrow('log is down');
    await expect(deltas.flush()).rejects.toThrow('log is down');
  });
});
