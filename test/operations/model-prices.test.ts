/**
 * The price table: `MODEL_PRICES` read from the environment and a config file, a bad value refused
 * in one line naming it, and the cost of a row — `provider:model` before `model`, no price or a
 * missing component giving no cost.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { costOf, priceOf } from '../../src/operations/model-prices.js';

const row = { provider: 'openai', model: 'gpt-4o-mini', promptTokens: 1_000, completionTokens: 2_000, images: 0 };

describe('MODEL_PRICES', () => {
  it('reads prices by provider:model or model, and none by default', () => {
    expect(loadConfig({}).modelPrices).toEqual({});
    const prices = { 'openai:gpt-4o-mini': { inputPerMillionTokens: 0.15, outputPerMillionTokens: 0.6 }, flux: { perImage: 0.003 } };
    expect(loadConfig({ MODEL_PRICES: JSON.stringify(prices) }).modelPrices).toEqual(prices);
  });

  it.each([
    ['{"gpt-4o": ', /^Invalid configuration: MODEL_PRICES: MODEL_PRICES must be a JSON object of prices by model \(got "\{\\"gpt-4o\\": "\)$/],
    ['["gpt-4o"]', /^Invalid configuration: MODEL_PRICES: MODEL_PRICES must be a JSON object of prices by model/],
    ['{"gpt-4o": {"inputPerMillionTokens": -1}}', /^Invalid configuration: MODEL_PRICES\.gpt-4o\.inputPerMillionTokens: MODEL_PRICES: a price is 0 or more$/],
    ['{"gpt-4o": {"inputPerMillionTokens": "0.15"}}', /^Invalid configuration: MODEL_PRICES\.gpt-4o\.inputPerMillionTokens: MODEL_PRICES: a price is a number \(no quotes\)$/],
    ['{"gpt-4o": {"input": 0.15}}', /^Invalid configuration: MODEL_PRICES\.gpt-4o: MODEL_PRICES: a price has only inputPerMillionTokens, outputPerMillionTokens, perImage \(got "input"\)$/],
    ['{"gpt-4o": {}}', /^Invalid configuration: MODEL_PRICES\.gpt-4o: MODEL_PRICES: a price names at least one of /],
    ['{"gpt-4o": 0.15}', /^Invalid configuration: MODEL_PRICES\.gpt-4o: MODEL_PRICES: each price is an object like /],
  ])('refuses %s in one line naming the setting', (value, message) => {
    const attempt = () => loadConfig({ MODEL_PRICES: value });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
  });
});

describe('costOf', () => {
  const prices = {
    'openai:gpt-4o-mini': { inputPerMillionTokens: 0.15, outputPerMillionTokens: 0.6 },
    'gpt-4o-mini': { inputPerMillionTokens: 99, outputPerMillionTokens: 99 },
    flux: { perImage: 0.003 },
    'input-only': { inputPerMillionTokens: 1 },
  };

  it('prices tokens per million and images each, provider:model before model', () => {
    expect(costOf(prices, row)).toBeCloseTo((1_000 * 0.15 + 2_000 * 0.6) / 1_000_000, 12);
    expect(costOf(prices, { ...row, provider: 'groq' })).toBeCloseTo((1_000 * 99 + 2_000 * 99) / 1_000_000, 12);
    expect(costOf(prices, { provider: 'pollinations', model: 'flux', promptTokens: 0, completionTokens: 0, images: 3 })).toBeCloseTo(0.009, 12);
    expect(priceOf(prices, 'openai', 'gpt-4o-mini')).toBe(prices['openai:gpt-4o-mini']);
  });

  it('gives no cost without a price, or when the price lacks a component the row used', () => {
    expect(costOf(prices, { ...row, model: 'unknown' })).toBeUndefined();
    expect(costOf({}, row)).toBeUndefined();
    expect(costOf(prices, { ...row, model: 'input-only' })).toBeUndefined();
    expect(costOf(prices, { ...row, model: 'input-only', completionTokens: 0 })).toBeCloseTo(0.001, 12);
    expect(costOf(prices, { ...row, model: 'flux' })).toBeUndefined();
  });
});
