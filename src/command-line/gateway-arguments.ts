/**
 * The arguments of the `graphql-ai-gateway` command, read with `node:util`'s `parseArgs`
 * (https://nodejs.org/api/util.html#utilparseargsconfig). `--port`, `--models-dir` and `--config`
 * each set the setting they stand for (`PORT`, `MODELS_DIR`, `CONFIG_FILE`), winning over the
 * environment and the config file; `--help` and `--version` print instead of serving.
 */
import { parseArgs } from 'node:util';

/** The flags that set a setting: the setting's name (its environment variable) and what the value is, for `--help`. */
export const SETTING_FLAGS = {
  port: { setting: 'PORT', value: 'port' },
  'models-dir': { setting: 'MODELS_DIR', value: 'folder' },
  config: { setting: 'CONFIG_FILE', value: 'file' },
} as const;

/** The flags that print: their one-letter forms and what they print, for `--help`. */
export const PRINTING_FLAGS = {
  help: { short: 'h', description: 'prints this text' },
  version: { short: 'v', description: 'prints the version' },
} as const;

/**
 * What the command was asked to do: print its help or version, or serve with `settings`
 * (environment variable names → values, from the flags given; empty when none was).
 */
export type GatewayCommand = { action: 'help' } | { action: 'version' } | { action: 'serve'; settings: Record<string, string> };

/** Arguments the command does not take; `message` is one line naming the argument. */
export class CommandLineError extends Error {
  override readonly name = 'CommandLineError';
}

const OPTIONS = {
  ...Object.fromEntries(Object.keys(SETTING_FLAGS).map((flag) => [flag, { type: 'string' as const }])),
  ...Object.fromEntries(Object.entries(PRINTING_FLAGS).map(([flag, { short }]) => [flag, { type: 'boolean' as const, short }])),
};

/**
 * Reads the command's arguments (`process.argv.slice(2)`). `--help` wins over `--version`, both
 * over serving; a flag given twice takes its last value.
 * @throws CommandLineError for an unknown option, an argument that is no option, a setting flag
 *   with no value (`--port` at the end, or followed by another `--` option) or a value given to
 *   `--help`/`--version`.
 */
export function parseGatewayArguments(args: readonly string[]): GatewayCommand {
  // Not strict: the tokens let the messages name the argument in one line.
  const { tokens } = parseArgs({ args: [...args], options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const settings: Record<string, string> = {};
  let action: 'help' | 'version' | undefined;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') throw new CommandLineError(`unexpected argument ${JSON.stringify(token.value)}`);
    if (Object.hasOwn(SETTING_FLAGS, token.name)) {
      const value = token.value;
      if (value === undefined || (!token.inlineValue && value.startsWith('--'))) throw new CommandLineError(`${token.rawName} needs a value`);
      settings[SETTING_FLAGS[token.name as keyof typeof SETTING_FLAGS].setting] = value;
    } else if (Object.hasOwn(PRINTING_FLAGS, token.name)) {
      if (token.value !== undefined) throw new CommandLineError(`${token.rawName} takes no value`);
      if (action !== 'help') action = token.name as 'help' | 'version';
    } else {
      throw new CommandLineError(`unknown option ${token.rawName}`);
    }
  }
  return action ? { action } : { action: 'serve', settings };
}
