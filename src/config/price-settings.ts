/**
 * The price table (`MODEL_PRICES`): what a model's tokens and images cost, for the `cost` of usage
 * rows. Part of the settings tree of `settings.ts`; see `setting.ts` for how a setting is defined.
 */
import { z } from 'zod';
import { setting } from './setting.js';
import { jsonValue } from './value-schemas.js';

/**
 * What one model costs, in the operator's currency (whatever `MODEL_PRICES` is written in). A
 * component that is absent has no price: a generation that used it gets no cost.
 */
export interface ModelPrice {
  /** Per million prompt (input) tokens. */
  inputPerMillionTokens?: number;
  /** Per million completion (output) tokens. */
  outputPerMillionTokens?: number;
  /** Per generated image. */
  perImage?: number;
}

/** Prices by `provider:model` or by model id (see `operations/model-prices.ts` for the lookup). */
export type ModelPrices = Readonly<Record<string, ModelPrice>>;

const PRICE_FIELDS = ['inputPerMillionTokens', 'outputPerMillionTokens', 'perImage'] as const;

/** One price: the three amounts, each optional, at least one, none negative. */
function priceSchema(name: string) {
  const amount = z
    .number({ error: `${name}: a price is a number (no quotes)` })
    .min(0, `${name}: a price is 0 or more`)
    .refine(Number.isFinite, `${name}: a price is a finite number`)
    .optional();
  return z
    .strictObject(
      { inputPerMillionTokens: amount, outputPerMillionTokens: amount, perImage: amount },
      {
        error: (issue) =>
          issue.code === 'unrecognized_keys'
            ? `${name}: a price has only ${PRICE_FIELDS.join(', ')} (got ${issue.keys.map((key) => `"${key}"`).join(', ')})`
            : `${name}: each price is an object like {"inputPerMillionTokens": 0.15, "outputPerMillionTokens": 0.6}`,
      },
    )
    .refine((price) => PRICE_FIELDS.some((field) => price[field] !== undefined), `${name}: a price names at least one of ${PRICE_FIELDS.join(', ')}`);
}

export const modelPrices = setting({
  name: 'MODEL_PRICES',
  schema: jsonValue('a JSON object of prices by model', (name) =>
    z.record(z.string().min(1, `${name}: a model name must not be empty`), priceSchema(name), {
      error: `${name} must be a JSON object of prices by model`,
    }),
  ),
  default: {},
  documentedDefault: '— (no prices, no costs)',
  description:
    'JSON object: `"provider:model"` or `"model"` → `{"inputPerMillionTokens", "outputPerMillionTokens", "perImage"}`, the cost of usage rows in your currency (see below)',
  details: {
    title: 'Prices',
    text:
      'Each ended generation is stored with its cost when its model has a price, computed when the row is written: prompt tokens × ' +
      '`inputPerMillionTokens` / 1,000,000 + completion tokens × `outputPerMillionTokens` / 1,000,000 + images × `perImage`, in whatever ' +
      'currency you write the prices in (the gateway names none). A row\'s price is the entry `"<provider>:<model>"`, else `"<model>"` ' +
      '(the model id the provider ran, as usage reports it). A generation whose model has no entry, or whose entry lacks a component the ' +
      'generation used (output tokens without `outputPerMillionTokens`), gets no cost — never a guessed one; a change of prices applies to ' +
      'rows written after it. Example: `MODEL_PRICES=\'{"openai:gpt-4o-mini": {"inputPerMillionTokens": 0.15, "outputPerMillionTokens": 0.6}, ' +
      '"flux": {"perImage": 0.003}}\'`. See [Usage, prices and history](usage.md).',
  },
});
