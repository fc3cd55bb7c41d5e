/** Generation ids. */
import { describe, expect, it } from 'vitest';
import { newGenerationId } from '../../src/generations/generation-ids.js';

describe('newGenerationId', () => {
  it('gives random version 4 UUIDs, all different', () => {
    const ids = Array.from({ length: 1000 }, () => newGenerationId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
