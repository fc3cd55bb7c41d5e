#!/usr/bin/env node
/**
 * `graphql-ai-gateway`: the command the npm package installs (`bin` in package.json), so that
 * `npx graphql-ai-gateway` or a global install serves as `npm start` does, with the same defaults.
 * `--port`, `--models-dir` and `--config` set `PORT`, `MODELS_DIR` and `CONFIG_FILE`
 * (`command-line/gateway-arguments.ts`); `--help` lists every setting (`command-line/help-text.ts`);
 * `--version` prints the package's version. An argument it does not take is one line on standard
 * error and status 2.
 *
 * The server runs with the Node.js flags of `npm run serve`, {@link SERVER_NODE_FLAGS}, and sets
 * `NODE_ENV=production` unless it is set (`main.ts`). The semi-space size is read by V8 when the
 * process starts, so unless this process has it already (in its own flags or in `NODE_OPTIONS`)
 * the command runs the server in a child process with those flags: it passes SIGINT and SIGTERM
 * on, exits with the child's status (or is ended by the child's signal), and the child shuts down
 * as on SIGTERM when the command ends without passing anything on (killed with SIGKILL). With the
 * flag set, the server runs in this process.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CommandLineError, parseGatewayArguments, type GatewayCommand } from './command-line/gateway-arguments.js';

/**
 * The Node.js flags of `npm run serve`: stack traces in TypeScript lines, and 32 MB semi-spaces for
 * the short-lived objects of every streamed token (docs/performance.md, "Runtime settings").
 */
const SERVER_NODE_FLAGS = ['--enable-source-maps', '--max-semi-space-size=32'];

/** Signals passed on to the child, as `main.ts` handles them. */
const RELAYED_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Whether this process runs with a semi-space size of its own choosing (V8 takes `-` and `_` alike in flag names). */
function hasSemiSpaceFlag(): boolean {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return flags.some((flag) => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(flag));
}

/** The version in the package's package.json (one folder above this module, in `src/` and `dist/` alike). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Runs the server in this process, once the flags' settings are in the environment. */
async function serveHere(): Promise<void> {
  process.setSourceMapsEnabled(true);
  // Started by the command as its child: when the command is gone without passing a signal on
  // (SIGKILL), its IPC channel closes; shut down as on SIGTERM rather than run on unseen.
  if (process.channel) {
    process.channel.unref();
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  }
  await import('./main.js');
}

/** Runs this command again in a child process with {@link SERVER_NODE_FLAGS}, and relays (see the module comment). */
function serveInChild(): void {
  const child = spawn(process.execPath, [...process.execArgv, ...SERVER_NODE_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  const relay = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of RELAYED_SIGNALS) process.on(signal, relay);
  child.once('error', (error) => {
    process.stderr.write(`graphql-ai-gateway: cannot start ${process.execPath}: ${error.message}\n`);
    process.exitCode = 1;
  });
  child.once('exit', (code, signal) => {
    for (const relayed of RELAYED_SIGNALS) process.off(relayed, relay);
    if (signal) process.kill(process.pid, signal);
    else process.exitCode = code ?? 1;
  });
}

let command: GatewayCommand | undefined;
try {
  command = parseGatewayArguments(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof CommandLineError)) throw error;
  process.stderr.write(`graphql-ai-gateway: ${error.message} (see graphql-ai-gateway --help)\n`);
  process.exitCode = 2;
}
if (command?.action === 'help') {
  const { helpText } = await import('./command-line/help-text.js');
  process.stdout.write(helpText(packageVersion()));
} else if (command?.action === 'version') {
  process.stdout.write(`${packageVersion()}\n`);
} else if (command?.action === 'serve') {
  Object.assign(process.env, command.settings);
  if (hasSemiSpaceFlag()) await serveHere();
  else serveInChild();
}
