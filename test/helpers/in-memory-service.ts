/** A generation service on in-memory parts only (event log, pub/sub, conversations), for service-level tests. */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryConversationStore } from '../../src/conversations/conversation-store.js';
import { MemoryEventLog } from '../../src/generations/event-log.js';
import type { GenerationEvent } from '../../src/generations/generation-events.js';
import { createGenerationPubSub } from '../../src/generations/generation-pub-sub.js';
import { GenerationService } from '../../src/generations/generation-service.js';
import { ImageStore } from '../../src/images/image-store.js';
import type { GenerationObserver } from '../../src/generations/generation-observer.js';
import type { ChatProvider } from '../../src/providers/provider.js';
import { ProviderRegistry } from '../../src/providers/provider-registry.js';

/**
 * The service with `provider` as its only provider, and its event log (to inspect or evict).
 * @param options.retentionMs how long finished generations are kept, ms (default 60 000).
 * @param options.maxRetained how many finished generations are kept at most (default: no limit).
 * @param options.observer told about generations as metrics and logs are.
 */
export function createInMemoryService(
  provider: ChatProvider,
  options: { retentionMs?: number; maxRetained?: number; observer?: GenerationObserver } = {},
) {
  const eventLog = new MemoryEventLog();
  const service = new GenerationService({
    registry: new ProviderRegistry([provider]),
    eventLog,
    pubSub: createGenerationPubSub(),
    conversations: new MemoryConversationStore({ maxMessages: 100, maxCharacters: 100_000, retentionMs: 60_000 }),
    imageStore: new ImageStore({ directory: join(tmpdir(), 'gateway-service-test-images'), maxBytes: 1024, downloadTimeoutMs: 1000 }),
    retentionMs: options.retentionMs ?? 60_000,
    ...(options.maxRetained !== undefined && { maxRetained: options.maxRetained }),
    ...(options.observer && { observer: options.observer }),
  });
  return { service, eventLog };
}

/** Reads a subscription to its end: every event, in order. */
export async function drain(events: AsyncIterable<GenerationEvent>): Promise<GenerationEvent[]> {
  const all: GenerationEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}
