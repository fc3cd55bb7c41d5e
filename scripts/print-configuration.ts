/**
 * Prints the configuration reference, `docs/configuration.md`, from the setting definitions of
 * `src/config/` (`npm run print-configuration`). `test/configuration-reference.test.ts` fails when
 * the committed file differs.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { loadConfig } from '../src/config.js';
import { describeDefault } from '../src/config/setting-reference.js';
import { allSettings } from '../src/config/settings.js';

/** The message `loadConfig` gives for `environment`, quoted as an example. */
function exampleError(environment: Record<string, string>): string {
  try {
    loadConfig(environment);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`no configuration error for ${JSON.stringify(environment)}`);
}

const INTRODUCTION = [
  'The gateway reads its settings from environment variables. Alternatively, `CONFIG_FILE` names a JSON',
  'file holding one object with the same keys, whose values may be strings (as in the environment) or',
  'JSON values (numbers, booleans, arrays, objects); a variable set in the environment wins over the',
  'file, and an empty variable counts as unset.',
  '',
  'Invalid configuration stops start-up with one line on standard error naming the bad setting:',
  '',
  '```',
  exampleError({ PORT: 'abc' }),
  '```',
  '',
  'The value of a secret (a key or token) is never repeated in that line. A provider that is',
  'configured but unavailable (no model files, upstream down) does not stop the server:',
  '`providers { id available unavailableReason }` says why ([Providers and models](providers.md)).',
  '',
  'Durations (`…_MS`) are in milliseconds, sizes (`…_BYTES`) in bytes.',
].join('\n');

/** One table row. @throws Error when a cell would break the table (a `|` or a line break). */
function row(cells: string[]): string {
  for (const cell of cells) {
    if (/[|\n]/.test(cell)) throw new Error(`a table cell may not hold "|" or a line break: ${cell}`);
  }
  return `| ${cells.join(' | ')} |`;
}

/** The table of the fields of one JSON array entry, from the `.describe()`d object schema. */
function fieldTable(fields: z.ZodObject): string[] {
  const rows = Object.entries(fields.shape).map(([field, schema]) => {
    if (!schema.description) throw new Error(`field ${field} has no description`);
    const written =
      schema instanceof z.ZodDefault ? `\`${JSON.stringify(schema.def.defaultValue)}\`` : schema instanceof z.ZodOptional ? '—' : 'required';
    return row([`\`${field}\``, written, schema.description]);
  });
  return ['| field | default | meaning |', '|---|---|---|', ...rows];
}

/** `docs/configuration.md`: the introduction, the table of every setting, then the sections of those with details. */
export function printConfigurationReference(): string {
  const lines = [
    '# Configuration',
    '',
    '<!-- Printed by `npm run print-configuration` from the settings of src/config/: change them there, not here. -->',
    '',
    INTRODUCTION,
    '',
    '| variable | default | meaning |',
    '|---|---|---|',
    ...allSettings.map((setting) => row([`\`${setting.name}\``, describeDefault(setting), setting.description])),
  ];
  for (const setting of allSettings) {
    if (!setting.details && !setting.fields) continue;
    lines.push('', `## ${setting.details?.title ?? setting.name} (\`${setting.name}\`)`);
    if (setting.details) lines.push('', setting.details.text);
    if (setting.fields) lines.push('', 'The fields of each entry:', '', ...fieldTable(setting.fields));
  }
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
  writeFileSync(path, printConfigurationReference());
  console.log(`wrote ${path}`);
}
