/**
 * The Pothos schema builder: context and scalar types only. Types live in the modules beside
 * this file; `index.ts` imports them and exports the schema.
 */
import SchemaBuilder from '@pothos/core';
import type { ConversationStore } from '../conversations/conversation-store.js';
import type { GenerationAccess } from '../generations/generation-access.js';
import type { UsageAccess } from '../operations/usage-reports.js';
import type { ProviderRegistry } from '../providers/provider-registry.js';
import type { ApiKeyAdministration } from '../security/api-key-administration.js';

/** What every resolver receives as its context. */
export interface GatewayContext {
  generations: GenerationAccess;
  registry: ProviderRegistry;
  conversations: ConversationStore;
  /** Usage reports as the request's caller may ask for them. */
  usage: UsageAccess;
  /** The admin operations on virtual keys as the request's caller may use them. */
  apiKeys: ApiKeyAdministration;
}

/** The one builder of the schema. */
export const builder = new SchemaBuilder<{
  Context: GatewayContext;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    SafeInt: { Input: number; Output: number };
    ID: { Input: string; Output: string };
  };
  DefaultFieldNullability: false;
}>({ defaultFieldNullability: false });

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
