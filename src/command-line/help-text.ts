/**
 * The text of `graphql-ai-gateway --help`: how to call the command, its flags, and every setting
 * with its default and description, taken from the same definitions as `docs/configuration.md`
 * (`config/settings.ts`), their Markdown written as plain text.
 */
import { allSettings } from '../config/settings.js';
import { describeDefault } from '../config/setting-reference.js';
import { PRINTING_FLAGS, SETTING_FLAGS } from './gateway-arguments.js';

/** Columns the descriptions are wrapped to. */
const WIDTH = 100;

/** `text` without its Markdown: links become their text; code spans, emphasis and backslash escapes lose their marks. */
function plainText(markdown: string): string {
  return markdown
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/\*\*([^*]+)\*\*/g, '$1')
    .replace(/\\([\\`*_[\]|])/g, '$1');
}

/**
 * `text` in lines of at most {@link WIDTH} columns (a longer word stands alone): the first line
 * starts with `indent`, the others with `continuation`.
 */
function wrap(text: string, indent: string, continuation = indent): string[] {
  const lines: string[] = [];
  let line = '';
  const prefix = () => (lines.length === 0 ? indent : continuation);
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && prefix().length + line.length + 1 + word.length > WIDTH) {
      lines.push(prefix() + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(prefix() + line);
  return lines;
}

/** Rows of two columns: the first padded to the longest, the second after two spaces. */
function columns(rows: ReadonlyArray<[string, string]>): string[] {
  const width = Math.max(...rows.map(([first]) => first.length));
  return rows.map(([first, second]) => `  ${first.padEnd(width)}  ${second}`);
}

/**
 * The help text for `version` (the package's), ending with a line break.
 * @throws Error when a setting's default cannot be described (see `describeDefault`).
 */
export function helpText(version: string): string {
  const flags = columns([
    ...Object.entries(SETTING_FLAGS).map(([flag, { setting, value }]): [string, string] => [`--${flag} <${value}>`, `sets ${setting}`]),
    ...Object.entries(PRINTING_FLAGS).map(([flag, { short, description }]): [string, string] => [`-${short}, --${flag}`, description]),
  ]);
  const settings = allSettings.flatMap((setting) => [
    ...wrap(`${setting.name} (default: ${plainText(describeDefault(setting))})`, '  ', '        '),
    ...wrap(plainText(setting.description), '      '),
  ]);
  return [
    `graphql-ai-gateway ${version}: one typed GraphQL API over many AI providers.`,
    '',
    `Usage: graphql-ai-gateway [${Object.entries(SETTING_FLAGS)
      .map(([flag, { value }]) => `--${flag} <${value}>`)
      .join('] [')}]`,
    '',
    ...wrap(
      'Serves GraphQL over HTTP, server-sent events and graphql-ws at /graphql (GraphiQL in a browser), the OpenAI-compatible REST API at /v1, ' +
        'a chat-and-image page at /, /healthz, /readyz and /metrics. It runs until SIGINT or SIGTERM, then shuts down gracefully.',
      '',
    ),
    '',
    'Options:',
    ...flags,
    '',
    ...wrap(
      'Settings: environment variables, or keys of the JSON file named by --config (CONFIG_FILE). A flag wins over the environment, ' +
        'the environment over the file; an empty variable counts as unset. Durations (…_MS) are in milliseconds, sizes (…_BYTES) in bytes.',
      '',
    ),
    '',
    ...settings,
    '',
    ...wrap('The notes the descriptions point to ("see below"), with examples of the JSON settings, are in docs/configuration.md of the gateway.', ''),
    '',
  ].join('\n');
}
