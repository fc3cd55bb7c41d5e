/** `docs/configuration.md` is printed from the setting definitions; this fails when the committed file differs. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printConfigurationReference } from '../scripts/print-configuration.js';
import { allSettings } from '../src/config/settings.js';

describe('docs/configuration.md', () => {
  it('is the print of the settings (run `npm run print-configuration` after changing a setting)', () => {
    const committed = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    expect(committed).toBe(printConfigurationReference());
  });

  it('lists each variable once, each with a description', () => {
    const names = allSettings.map((setting) => setting.name);
    expect(new Set(names).size).toBe(names.length);
    for (const setting of allSettings) expect(setting.description, setting.name).not.toBe('');
  });
});
