/**
 * The cost of a usage row from the price table (`MODEL_PRICES`, `config/price-settings.ts`): what
 * the usage recorder stores as the row's `cost` when it writes it. No price, no cost — never a guess.
 */
import type { ModelPrice, ModelPrices } from '../config/price-settings.js';
import type { GenerationRow } from '../storage/generation-store.js';

/** Tokens per unit of the `…PerMillionTokens` prices. */
const TOKENS_PER_PRICE_UNIT = 1_000_000;

/** The price of `model` run by `provider`: the entry `provider:model`, else the entry `model`, else undefined. */
export function priceOf(prices: ModelPrices, provider: string, model: string): ModelPrice | undefined {
  return prices[`${provider}:${model}`] ?? prices[model];
}

/**
 * The cost of a row, in the price table's currency: prompt tokens × `inputPerMillionTokens` / 10⁶
 * + completion tokens × `outputPerMillionTokens` / 10⁶ + images × `perImage`. Undefined when the
 * row's model has no price, or when the row used something (prompt tokens, completion tokens,
 * images) whose component the price lacks.
 */
export function costOf(prices: ModelPrices, row: Pick<GenerationRow, 'provider' | 'model' | 'promptTokens' | 'completionTokens' | 'images'>): number | undefined {
  const price = priceOf(prices, row.provider, row.model);
  if (!price) return undefined;
  const parts: Array<[used: number, price: number | undefined, unit: number]> = [
    [row.promptTokens, price.inputPerMillionTokens, TOKENS_PER_PRICE_UNIT],
    [row.completionTokens, price.outputPerMillionTokens, TOKENS_PER_PRICE_UNIT],
    [row.images, price.perImage, 1],
  ];
  let cost = 0;
  for (const [used, amount, unit] of parts) {
    if (used === 0) continue;
    if (amount === undefined) return undefined;
    cost += (used * amount) / unit;
  }
  return cost;
}
