/**
 * Child processes of the benchmark (fake upstream, gateway, raw llama.cpp): compiled by esbuild and
 * spawned with the same Node binary and no loader, talking JSON lines on stdout, always killed
 * when the benchmark ends — normally, on an error, on SIGINT/SIGTERM, or when the parent dies (each
 * child also exits when its stdin closes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/** The repository root (the folder above `bench/`). */
export const REPOSITORY_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A child process speaking JSON lines on stdout. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** The next stdout line, parsed as JSON; rejects after `timeoutMs` or when the process exits first. */
  nextMessage<Message = Record<string, unknown>>(timeoutMs: number): Promise<Message>;
  /** Writes one JSON line to the child's stdin. */
  send(message: unknown): void;
  /** Closes stdin and sends SIGTERM, then SIGKILL after `graceMs`; resolves once the process exited. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHandlersInstalled = false;

/** Kills every child still running (SIGKILL): the last line of defence, safe to call more than once. */
export function killAllChildren(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  running.clear();
}

/**
 * Counts `child` among the benchmark's children, so that {@link killAllChildren} (and the exit
 * handler) kill it too: for children not started by {@link startTypeScriptProcess}, e.g. Portkey.
 */
export function trackChild(child: ChildProcess): void {
  installExitHandlers();
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/** Sends SIGTERM to `child`, then SIGKILL after `graceMs`; resolves once it exited (or 2 s after SIGKILL). */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  if (!(await waitForExit(child, graceMs))) {
    child.kill('SIGKILL');
    await waitForExit(child, 2_000);
  }
  running.delete(child);
}

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on('exit', killAllChildren);
}

/** Resolves once `child` exited, or after `timeoutMs` (then false). */
function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Where {@link compileEntry} writes compiled entry files: beside the gateway's build (ignored by
 * git). Not under bench/: packages the compiled files import are looked up from there, and
 * bench/node_modules (Portkey's install) has other versions of some (zod 3, where the gateway's
 * code, bundled into the raw llama.cpp process, needs zod 4).
 */
const COMPILED_DIRECTORY = join(REPOSITORY_ROOT, 'dist', 'bench');

/** Compilations by entry file: each file is compiled once per benchmark run, however many processes run it. */
const compilations = new Map<string, Promise<string>>();

/**
 * Compiles the TypeScript entry `file` (relative to the repository root) into one JavaScript
 * module with esbuild: the files it imports by relative path are bundled in, packages and `node:`
 * modules stay imports (resolved by Node from dist/bench/, so from the repository's node_modules,
 * as for the gateway's sources), and `import.meta.url` keeps the source file's URL, so paths it
 * resolves from there (e.g. `../dist/app.js`) are the same as for the source. The process then
 * runs on plain Node with no loader. Why not tsx: in Node 20, tsx's module hooks run on a thread
 * of their own and every module the process loads — the gateway's dist/ and its dependencies — is
 * resolved and loaded through a round trip to it: the gateway process took 2.4–2.6 s to start
 * under tsx and 1.5–1.7 s compiled on this machine, and kept the loader's thread beside the
 * measured gateway.
 * Compiles each file once per run (later calls share the result).
 * @returns the compiled file's absolute path (`dist/bench/<file's name>.mjs`).
 * @throws Error from esbuild when the file does not compile.
 */
function compileEntry(file: string): Promise<string> {
  let compilation = compilations.get(file);
  if (!compilation) {
    compilation = compileEntryOnce(file);
    compilations.set(file, compilation);
  }
  return compilation;
}

async function compileEntryOnce(file: string): Promise<string> {
  const outfile = join(COMPILED_DIRECTORY, `${basename(file, extname(file))}.mjs`);
  await build({
    entryPoints: [join(REPOSITORY_ROOT, file)],
    outfile,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(join(REPOSITORY_ROOT, file)).href) },
    logLevel: 'warning',
  });
  return outfile;
}

/**
 * Compiles `file` ({@link compileEntry}), spawns `node [nodeArguments] <compiled file>` in the
 * repository root and waits for its first JSON line (`{"ready":true,…}`), which it returns with
 * the handle.
 * @param file path relative to the repository root, e.g. `bench/fake-upstream-process.ts`; it may
 *   import TypeScript by relative path only (that is bundled), packages as they are.
 * @param options.environment variables added to this process's environment.
 * @param options.nodeArguments extra Node flags, e.g. `--cpu-prof`.
 * @param options.readyTimeoutMs how long the child may take to print its first line.
 * @throws Error when the file does not compile, the process exits or prints no ready line in time.
 */
export async function startTypeScriptProcess(
  name: string,
  file: string,
  options: { environment?: Record<string, string>; nodeArguments?: string[]; readyTimeoutMs: number },
): Promise<{ handle: ManagedProcess; ready: Record<string, unknown> }> {
  installExitHandlers();
  const compiled = await compileEntry(file);
  const child = spawn(process.execPath, [...(options.nodeArguments ?? []), compiled], {
    cwd: REPOSITORY_ROOT,
    env: { ...process.env, ...options.environment },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.stdin?.on('error', () => {});

  const queued: string[] = [];
  const waiters: Array<{ resolve: (line: string) => void; reject: (error: Error) => void }> = [];
  let exitError: Error | undefined;
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter.resolve(line);
    else queued.push(line);
  });
  const failAll = (error: Error) => {
    exitError ??= error;
    for (const waiter of waiters.splice(0)) waiter.reject(exitError);
  };
  child.once('error', (error) => failAll(new Error(`${name}: cannot start: ${error.message}`)));
  child.once('exit', (code, signal) => failAll(new Error(`${name} exited (${signal ?? `code ${code}`})`)));

  const nextLine = (timeoutMs: number): Promise<string> => {
    const line = queued.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (exitError) return Promise.reject(exitError);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (value: string) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`${name}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push(waiter);
    });
  };

  let stopping: Promise<void> | undefined;
  const handle: ManagedProcess = {
    name,
    child,
    async nextMessage<Message>(timeoutMs: number): Promise<Message> {
      for (;;) {
        const line = await nextLine(timeoutMs);
        try {
          return JSON.parse(line) as Message;
        } catch {
          // Not one of ours (a library printing to stdout): show it and read on.
          console.error(`[${name}] ${line}`);
        }
      }
    },
    send(message: unknown) {
      child.stdin?.write(`${JSON.stringify(message)}\n`);
    },
    stop(graceMs = 6_000) {
      stopping ??= (async () => {
        child.stdin?.end();
        await stopChild(child, graceMs);
      })();
      return stopping;
    },
  };

  try {
    const ready = await handle.nextMessage<Record<string, unknown>>(options.readyTimeoutMs);
    if (ready.ready !== true) throw new Error(`${name}: unexpected first line ${JSON.stringify(ready)}`);
    return { handle, ready };
  } catch (error) {
    await handle.stop(1_000);
    throw error;
  }
}

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU time (user + system, all threads) process `processId` has used so far, ms, from Linux
 * `/proc/<pid>/stat` (10 ms resolution); NaN where unavailable. Unlike a sampling profile, this
 * is CPU actually used, not wall time: time spent waiting for a core is not counted.
 */
export function processCpuMs(processId: number | undefined): number {
  if (processId === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${processId}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const userTicks = Number(fields[11]);
    const systemTicks = Number(fields[12]);
    return ((userTicks + systemTicks) / CLOCK_TICKS_PER_SECOND) * 1000;
  } catch {
    return Number.NaN;
  }
}

/** Resident memory (`VmRSS` of Linux `/proc/<pid>/status`) of process `processId`, bytes; NaN where unavailable. */
export function residentBytes(processId: number | undefined): number {
  if (processId === undefined) return Number.NaN;
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${processId}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The soft limit of open files of process `processId` (Linux `/proc/<pid>/limits`); NaN where unavailable or unlimited. */
export function openFilesLimit(processId: number | undefined): number {
  if (processId === undefined) return Number.NaN;
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${processId}/limits`, 'utf8'));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU time this process has used so far (user + system, all threads), ms. */
export function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** CPU time of the whole machine so far, ms, over all cores. */
export interface MachineCpu {
  /** user, nice, system, irq and softirq: what processes (and the kernel for them) used. */
  busyMs: number;
  /** Time the hypervisor ran something else while this machine's vCPUs wanted to run. */
  stealMs: number;
}

/** Reads {@link MachineCpu} from Linux `/proc/stat`; NaN fields where unavailable. */
export function machineCpu(): MachineCpu {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    const ticks = [user, nice, system, irq, softirq].reduce<number>((sum, value) => sum + (value ?? 0), 0);
    return { busyMs: (ticks / CLOCK_TICKS_PER_SECOND) * 1000, stealMs: ((steal ?? Number.NaN) / CLOCK_TICKS_PER_SECOND) * 1000 };
  } catch {
    return { busyMs: Number.NaN, stealMs: Number.NaN };
  }
}

/**
 * CPU time (user + system) used so far by process `rootProcessId` and all its living descendants
 * (children, and their helpers such as esbuild's service), including what their finished and
 * reaped children used (node-llama-cpp tests its binaries in short-lived child processes), ms,
 * from Linux `/proc`; NaN where unavailable.
 */
export function processTreeCpuMs(rootProcessId: number): number {
  try {
    const children = new Map<number, number[]>();
    const cpu = new Map<number, number>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const processId = Number(entry);
      const parentId = Number(fields[1]);
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      cpu.set(processId, (ticks / CLOCK_TICKS_PER_SECOND) * 1000);
      children.set(parentId, [...(children.get(parentId) ?? []), processId]);
    }
    let total = 0;
    const pending = [rootProcessId];
    while (pending.length > 0) {
      const processId = pending.pop()!;
      total += cpu.get(processId) ?? 0;
      pending.push(...(children.get(processId) ?? []));
    }
    return total;
  } catch {
    return Number.NaN;
  }
}
