/**
 * How the references of the settings write a setting's default: the table of
 * `docs/configuration.md` (`scripts/print-configuration.ts`) and the settings that
 * `graphql-ai-gateway --help` lists (`command-line/help-text.ts`) take it from here.
 */
import type { SettingDocumentation } from './setting.js';

/** ` (1 hour)`, ` (20 MiB)`: a round duration (`…_MS`) or size (`…_BYTES`) in a larger unit; empty when there is none. */
function inLargerUnit(name: string, value: number): string {
  const units: [size: number, unit: string][] = name.endsWith('_MS')
    ? [
        [86_400_000, 'day'],
        [3_600_000, 'hour'],
        [60_000, 'min'],
        [1000, 's'],
      ]
    : name.endsWith('_BYTES')
      ? [
          [1024 * 1024, 'MiB'],
          [1024, 'KiB'],
        ]
      : [];
  for (const [size, unit] of units) {
    if (value >= size && value % size === 0) {
      const count = value / size;
      return ` (${count} ${unit}${count > 1 && (unit === 'day' || unit === 'hour') ? 's' : ''})`;
    }
  }
  return '';
}

/**
 * A setting's default as one line of Markdown: its `documentedDefault`, else its default as
 * written in the environment, in backticks (with a round duration or size also in a larger unit:
 * `` `3600000` (1 hour) ``), or `—` when it has none.
 * @throws Error for a default computed when loaded that has no `documentedDefault`.
 */
export function describeDefault(setting: SettingDocumentation): string {
  if (setting.documentedDefault !== undefined) return setting.documentedDefault;
  const value = setting.default;
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return '—';
  if (typeof value === 'function') throw new Error(`${setting.name}: a computed default needs a documentedDefault`);
  const written = typeof value === 'string' ? value : JSON.stringify(value);
  return `\`${written}\`${typeof value === 'number' ? inLargerUnit(setting.name, value) : ''}`;
}
