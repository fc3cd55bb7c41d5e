/**
 * When `startChat` resolves, the provider's request has left for the upstream — also on a reused
 * keep-alive connection, where undici (7.30) writes it in the event loop's check phase rather than
 * at once (its idle-socket validation). The caller's work for event 1 (a transport sending it) then
 * runs while the upstream works, not before the request leaves. Real parts: the OpenAI-compatible
 * provider and undici against a local HTTP fake upstream (`test/helpers/fake-openai-upstream.ts`);
 * undici's own diagnostics channels tell when the request headers were written.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAICompatibleProvider } from '../../src/providers/openai-compatible/openai-compatible-provider.js';
import { startFakeOpenAIUpstream, type FakeOpenAIUpstream } from '../helpers/fake-openai-upstream.js';
import { createInMemoryService, drain } from '../helpers/in-memory-service.js';

let upstream: FakeOpenAIUpstream;

beforeEach(async () => {
  upstream = await startFakeOpenAIUpstream({ models: ['llama-3.1-8b'] });
});

afterEach(async () => {
  await upstream.close();
});

describe('startChat and the upstream request', () => {
  it('resolves after the request headers were written on a reused keep-alive connection', async () => {
    const provider = createOpenAICompatibleProvider({ id: 'groq', baseURL: upstream.baseURL, connectTimeoutMs: 5_000, idleTimeoutMs: 5_000 });
    const { service } = createInMemoryService(provider);
    const order: string[] = [];
    let connections = 0;
    const onHeadersWritten = () => order.push('request headers written');
    const onConnected = () => connections++;
    diagnosticsChannel.subscribe('undici:client:sendHeaders', onHeadersWritten);
    diagnosticsChannel.subscribe('undici:client:connected', onConnected);
    try {
      // The first generation opens the chat connection (its request is written once connected);
      // the second reuses it.
      let connectionsAfterFirst = 0;
      for (let round = 1; round <= 2; round++) {
        order.length = 0;
        const record = await service.startChat({ model: 'llama-3.1-8b', messages: [{ role: 'user', content: 'tell me a story' }] });
        order.push('startChat resolved');
        const events = await drain(await service.subscribe(record.id));
        expect(events.at(-1)).toMatchObject({ type: 'chat-completion-completed' });
        if (round === 1) connectionsAfterFirst = connections;
      }
      expect(connectionsAfterFirst).toBeGreaterThan(0);
      expect(connections).toBe(connectionsAfterFirst); // the second request reused a connection
      expect(order).toEqual(['request headers written', 'startChat resolved']);
    } finally {
      diagnosticsChannel.unsubscribe('undici:client:sendHeaders', onHeadersWritten);
      diagnosticsChannel.unsubscribe('undici:client:connected', onConnected);
    }
  });
});
