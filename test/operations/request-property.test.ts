/** Values kept on request objects. */
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { RequestProperty } from '../../src/operations/request-property.js';

describe('RequestProperty', () => {
  it('keeps one value per request and property, apart from the request’s own fields', () => {
    const first = new IncomingMessage(new Socket());
    const second = new IncomingMessage(new Socket());
    const caller = new RequestProperty<{ id: string }>('caller');
    const requestId = new RequestProperty<string>('request id');
    expect(caller.get(first)).toBeUndefined();
    caller.set(first, { id: 'key:a' });
    requestId.set(first, 'request-1');
    requestId.set(second, 'request-2');
    expect(caller.get(first)).toEqual({ id: 'key:a' });
    expect(caller.get(second)).toBeUndefined();
    expect([requestId.get(first), requestId.get(second)]).toEqual(['request-1', 'request-2']);
    requestId.set(first, 'request-3');
    expect(requestId.get(first)).toBe('request-3');
    // Symbol keys: nothing a string key, a header or JSON of the request could reach.
    expect(Object.keys(first)).not.toContain('caller');
    expect(Object.getOwnPropertySymbols(first).map((key) => key.description)).toEqual(expect.arrayContaining(['caller', 'request id']));
  });
});
