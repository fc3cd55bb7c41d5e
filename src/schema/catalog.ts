/** The catalog: `models` and `providers`, with each provider's availability. */
import type { CatalogModel, CatalogProvider } from '../providers/provider-registry.js';
import { builder } from './builder.js';

const ModelCapability = builder.enumType('ModelCapability', {
  description:
    'What a model can do: CHAT and IMAGE are the kinds of generation; TOOLS (tool calling), VISION (image parts), JSON_SCHEMA (JSON replies, to a schema) and REASONING (a reasoning trace or effort) are what a chat request may need. A request needing one goes only to models that have it.',
  values: {
    CHAT: { value: 'chat' },
    IMAGE: { value: 'image' },
    TOOLS: { value: 'tools' },
    VISION: { value: 'vision' },
    JSON_SCHEMA: { value: 'json-schema' },
    REASONING: { value: 'reasoning' },
  } as const,
});

const Model = builder.objectRef<CatalogModel>('Model').implement({
  description: 'A model and the provider serving it. Request it as model: "id" or "provider:id".',
  fields: (t) => ({
    id: t.exposeString('id'),
    provider: t.exposeString('provider'),
    capabilities: t.field({ type: [ModelCapability], resolve: (model) => model.capabilities }),
  }),
});

const Provider = builder.objectRef<CatalogProvider>('Provider').implement({
  description: 'A configured provider; an unavailable one says why.',
  fields: (t) => ({
    id: t.exposeString('id'),
    label: t.exposeString('label'),
    available: t.boolean({ resolve: (provider) => provider.availability.available }),
    unavailableReason: t.string({ nullable: true, resolve: (provider) => provider.availability.reason }),
    capabilities: t.field({ type: [ModelCapability], resolve: (provider) => [...provider.capabilities] }),
    models: t.field({ type: [Model], resolve: (provider) => provider.models }),
  }),
});

builder.queryField('models', (t) =>
  t.field({
    type: [Model],
    description: 'Every model of every provider, in the order providers are tried.',
    resolve: (_root, _args, { registry }) => registry.models(),
  }),
);

builder.queryField('providers', (t) =>
  t.field({
    type: [Provider],
    description: 'Every configured provider with its availability and models.',
    resolve: (_root, _args, { registry }) => registry.catalog(),
  }),
);
