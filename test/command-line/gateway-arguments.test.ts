/**
 * The arguments of the `graphql-ai-gateway` command: the setting flags map to their settings, the
 * printing flags print, and anything else is refused with a message naming it. The command run
 * from the packed package is tested in `test/operations/npm-package.test.ts`.
 */
import { describe, expect, it } from 'vitest';
import { CommandLineError, parseGatewayArguments } from '../../src/command-line/gateway-arguments.js';
import { helpText } from '../../src/command-line/help-text.js';
import { describeDefault } from '../../src/config/setting-reference.js';
import { allSettings } from '../../src/config/settings.js';

describe('parseGatewayArguments', () => {
  it('serves with no arguments, and maps --port, --models-dir and --config to their settings', () => {
    expect(parseGatewayArguments([])).toEqual({ action: 'serve', settings: {} });
    expect(parseGatewayArguments(['--port', '0', '--models-dir=./my models', '--config', 'gateway.json'])).toEqual({
      action: 'serve',
      settings: { PORT: '0', MODELS_DIR: './my models', CONFIG_FILE: 'gateway.json' },
    });
    expect(parseGatewayArguments(['--port', '1', '--port', '2'])).toEqual({ action: 'serve', settings: { PORT: '2' } });
  });

  it('prints help (which wins) or the version', () => {
    expect(parseGatewayArguments(['--version'])).toEqual({ action: 'version' });
    expect(parseGatewayArguments(['-v'])).toEqual({ action: 'version' });
    expect(parseGatewayArguments(['-h'])).toEqual({ action: 'help' });
    expect(parseGatewayArguments(['--version', '--port', '1', '--help'])).toEqual({ action: 'help' });
  });

  it.each([
    [['--prot', '1'], 'unknown option --prot'],
    [['-p', '1'], 'unknown option -p'],
    [['serve'], 'unexpected argument "serve"'],
    [['--', '--port'], 'unexpected argument "--port"'],
    [['--port'], '--port needs a value'],
    [['--port', '--models-dir', 'models'], '--port needs a value'],
    [['--help=yes'], '--help takes no value'],
  ])('refuses %j: %s', (args, message) => {
    expect(() => parseGatewayArguments(args)).toThrow(new CommandLineError(message));
  });
});

describe('helpText', () => {
  const text = helpText('1.2.3');

  it('names the version and the flags', () => {
    expect(text).toMatch(/^graphql-ai-gateway 1\.2\.3: /);
    expect(text).toContain('Usage: graphql-ai-gateway [--port <port>] [--models-dir <folder>] [--config <file>]');
    expect(text).toMatch(/^ {2}--models-dir <folder> {2}sets MODELS_DIR$/m);
    expect(text).toMatch(/^ {2}-h, --help +prints this text$/m);
  });

  it('lists every setting with its default and its description as plain text, in lines of at most 100 columns but for single long words', () => {
    for (const setting of allSettings) expect(text).toContain(`\n  ${setting.name} (default:`);
    // Markdown gone: `MODELS_DIR` in code spans, [Scaling out](scaling-out.md) as its text.
    expect(text).toContain('  DATA_DIR (default: ./data)\n      stored data: images in DATA_DIR/images, the embedded database in DATA_DIR/db\n');
    expect(text).toContain('Redis shared by several instances (see Scaling out), e.g. redis://127.0.0.1:6379/0');
    expect(text).toContain('  GENERATION_RETENTION_MS (default: 3600000 (1 hour))');
    expect(text).not.toMatch(/`|\]\(/);
    const masterKey = allSettings.find((setting) => setting.name === 'MASTER_KEY')!;
    expect(text).toContain(`  MASTER_KEY (default: ${describeDefault(masterKey)})`);
    for (const line of text.split('\n')) if (line.length > 100) expect(line.trim()).not.toContain(' ');
  });
});
