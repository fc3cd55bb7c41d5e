/**
 * The example clients in `examples/`, for the tests that build, check and run them: their folders,
 * GraphQL Code Generator run on an example's own `codegen.ts` without writing files, and the
 * TypeScript example's script run as a user runs it (`node --import tsx src/main.ts`, in a child
 * process, the gateway's URL in its environment).
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CodegenConfig } from '@graphql-codegen/cli';

const execFileAsync = promisify(execFile);

/** The repository's root folder. */
export const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));

/** `examples/typescript-client`: the Node.js client generated with the client preset. */
export const TYPESCRIPT_CLIENT_EXAMPLE = join(REPOSITORY, 'examples', 'typescript-client');

/** `examples/browser-urql`: the browser page streaming a chat with urql. */
export const BROWSER_URQL_EXAMPLE = join(REPOSITORY, 'examples', 'browser-urql');

/** A file as codegen would write it: its path relative to the example's folder, and its text. */
export interface GeneratedFile {
  path: string;
  content: string;
}

/**
 * Runs GraphQL Code Generator on `<exampleDir>/codegen.ts` as `npx graphql-codegen` would from that
 * folder, but returns the files instead of writing them.
 */
export async function runCodegen(exampleDir: string): Promise<GeneratedFile[]> {
  // Loaded here, not at the top: the tests that only run an example need none of Code Generator.
  const { generate } = await import('@graphql-codegen/cli');
  const { default: config } = (await import(join(exampleDir, 'codegen.ts'))) as { default: CodegenConfig };
  const outputs = (await generate({ ...config, cwd: exampleDir, silent: true }, false)) as Array<{ filename: string; content: string }>;
  return outputs.map((output) => ({ path: relative(exampleDir, join(exampleDir, output.filename)), content: output.content }));
}

/** The files under `folder` (relative to `exampleDir`) as they are on disk. */
export function committedFiles(exampleDir: string, folder: string): GeneratedFile[] {
  const directory = join(exampleDir, folder);
  return readdirSync(directory, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const path = join(entry.parentPath, entry.name);
      return { path: relative(exampleDir, path), content: readFileSync(path, 'utf8') };
    });
}

/** Type-checks an example with its own `tsconfig.json` (`tsc --noEmit -p`); resolves with tsc's output, rejects when tsc exits non-zero. */
export async function typeCheckExample(exampleDir: string): Promise<string> {
  const tsc = join(REPOSITORY, 'node_modules', 'typescript', 'bin', 'tsc');
  const { stdout } = await execFileAsync(process.execPath, [tsc, '--noEmit', '-p', join(exampleDir, 'tsconfig.json')], { cwd: exampleDir });
  return stdout;
}

/** What the TypeScript example printed. */
export interface TypeScriptClientOutput {
  /** Everything on standard output. */
  stdout: string;
  /** The streamed chat text (everything before the `completed:` line, without the line break before it). */
  chatText: string;
  /** The `completed:` line's finish reason and token counts. */
  completed: { finishReason: string; promptTokens: number; completionTokens: number };
  /** One entry per `image:` line. */
  images: Array<{ url: string; width: number; height: number; mimeType: string }>;
}

/**
 * Runs the TypeScript example's script against a gateway (`node --import tsx src/main.ts`, from
 * the example's folder) and parses what it prints.
 * @param environment its settings: `GATEWAY_URL`, `CHAT_MODEL`, `IMAGE_MODEL`, `SEND_DOCUMENT_IDS`, …
 * @throws the child's error (with its stderr) when it exits non-zero, or an Error when the output is not as documented.
 */
export async function runTypeScriptClient(environment: Record<string, string>): Promise<TypeScriptClientOutput> {
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: TYPESCRIPT_CLIENT_EXAMPLE,
    env: { PATH: process.env.PATH, ...environment },
    timeout: 60_000,
  });
  const match = /^([\s\S]*)\ncompleted: (\w+), (\d+) \+ (\d+) tokens\n((?:image: .*\n)*)$/.exec(stdout);
  if (!match) throw new Error(`unexpected output of the TypeScript example:\n${stdout}`);
  const images = match[5]!
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [, url, width, height, mimeType] = /^image: (\S+) (\d+)x(\d+) (\S+)$/.exec(line) ?? [];
      if (!url) throw new Error(`unexpected image line: ${line}`);
      return { url, width: Number(width), height: Number(height), mimeType: mimeType! };
    });
  return {
    stdout,
    chatText: match[1]!,
    completed: { finishReason: match[2]!, promptTokens: Number(match[3]), completionTokens: Number(match[4]) },
    images,
  };
}
