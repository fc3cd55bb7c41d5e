/**
 * Summarises a V8 `.cpuprofile` (written by `node --cpu-prof` or the inspector's `Profiler.stop`):
 * self time per function and per package, highest first. Used by `npm run bench -- --profile` on the gateway process; also
 * runnable on its own: `npx tsx bench/cpu-profile-summary.ts path/to/file.cpuprofile [top]`.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** One line of a summary: a function or a package with its self time. */
export interface SelfTimeEntry {
  name: string;
  selfMs: number;
  /** Share of all sampled time, 0..1. */
  share: number;
}

/** Self time per function and per package of one profile. */
export interface CpuProfileSummary {
  totalMs: number;
  /** Sampled time not spent idle (JavaScript, native code, garbage collection). */
  busyMs: number;
  functions: SelfTimeEntry[];
  packages: SelfTimeEntry[];
}

/** `node_modules/@scope/name/…` → `@scope/name`, `node:internal/x/…` → `node: x`, repository files → `gateway src`. */
function packageOf(url: string): string {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (match) return match[1]!;
  if (url.startsWith('node:')) {
    // node:internal/deps/undici/undici → node: undici; node:_http_server → node: _http_server
    const rest = url.slice('node:'.length).replace(/^internal\//, '').replace(/^deps\//, '');
    return `node: ${rest.split('/')[0]}`;
  }
  if (url.includes('/src/')) return 'gateway src';
  if (url.includes('/bench/')) return 'bench';
  return url;
}

/** A readable function name: `name (file:line)` with the path shortened after `node_modules/` or the repository. */
function describeFrame(frame: CpuProfileNode['callFrame']): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  const path = frame.url.replace(/^file:\/\//, '');
  const short = path.includes('/node_modules/') ? path.replace(/^.*node_modules\//, '') : path.replace(/^.*\/(src|bench)\//, '$1/');
  return `${name} (${short}:${frame.lineNumber + 1}:${frame.columnNumber + 1})`;
}

/**
 * Reads a `.cpuprofile` and returns its self-time summary, `top` entries of each list. Samples
 * taken inside the inspector session that controls the profiler (`node:inspector` frames, e.g. the
 * `Profiler.stop` call itself) are left out.
 */
export function summarizeCpuProfile(path: string, top = 20): CpuProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const insideInspector = (id: number): boolean => {
    for (let current: number | undefined = id; current !== undefined; current = parents.get(current)) {
      if (nodes.get(current)?.callFrame.url === 'node:inspector') return true;
    }
    return false;
  };
  const selfByNode = new Map<number, number>();
  for (let index = 0; index < profile.samples.length; index++) {
    const id = profile.samples[index]!;
    // timeDeltas[i] is the time before sample i; charge it to the sample (V8's DevTools convention).
    const deltaMicroseconds = profile.timeDeltas[index] ?? 0;
    selfByNode.set(id, (selfByNode.get(id) ?? 0) + deltaMicroseconds);
  }
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  let totalMicroseconds = 0;
  let idleMicroseconds = 0;
  for (const [id, microseconds] of selfByNode) {
    const node = nodes.get(id);
    if (!node || insideInspector(id)) continue;
    totalMicroseconds += microseconds;
    if (node.callFrame.functionName === '(idle)') idleMicroseconds += microseconds;
    const name = describeFrame(node.callFrame);
    byFunction.set(name, (byFunction.get(name) ?? 0) + microseconds);
    const functionName = node.callFrame.functionName;
    const pack =
      node.callFrame.url !== ''
        ? packageOf(node.callFrame.url)
        : functionName.startsWith('(')
          ? functionName // (idle), (program), (garbage collector)
          : `native: ${functionName || '(anonymous)'}`;
    byPackage.set(pack, (byPackage.get(pack) ?? 0) + microseconds);
  }
  const toEntries = (map: Map<string, number>): SelfTimeEntry[] =>
    [...map.entries()]
      .sort((left, right) => right[1] - left[1])
      .slice(0, top)
      .map(([name, microseconds]) => ({ name, selfMs: microseconds / 1000, share: totalMicroseconds > 0 ? microseconds / totalMicroseconds : 0 }));
  return {
    totalMs: totalMicroseconds / 1000,
    busyMs: (totalMicroseconds - idleMicroseconds) / 1000,
    functions: toEntries(byFunction),
    packages: toEntries(byPackage),
  };
}

/** The summary as Markdown tables. */
export function formatCpuProfileSummary(summary: CpuProfileSummary): string {
  const table = (title: string, entries: SelfTimeEntry[]) =>
    [
      `| ${title} | self ms | share |`,
      '|---|---:|---:|',
      ...entries.map((entry) => `| ${entry.name.replaceAll('|', '\\|')} | ${entry.selfMs.toFixed(1)} | ${(entry.share * 100).toFixed(1)} % |`),
    ].join('\n');
  return [
    `Sampled time: ${summary.totalMs.toFixed(0)} ms, of which busy (not idle): ${summary.busyMs.toFixed(0)} ms.`,
    '',
    table('package (self time)', summary.packages),
    '',
    table('function (self time)', summary.functions),
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const path = process.argv[2];
  if (!path) {
    console.error('usage: tsx bench/cpu-profile-summary.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(formatCpuProfileSummary(summarizeCpuProfile(path, Number(process.argv[3] ?? 20))));
}
