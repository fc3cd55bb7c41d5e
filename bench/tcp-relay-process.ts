/**
 * A process that only relays bytes between the benchmark's client and the fake upstream, the
 * least any middle process can do: a `node:net` server that opens one upstream connection per
 * client connection and pipes both ways (Nagle off on both), with no HTTP parsing. Run beside
 * direct at concurrency 1, it shows what the two extra process hops of any gateway cost on this
 * machine (its scheduler's wake-ups), apart from the gateway's own work:
 *
 * ```
 * BENCH_RELAY_TARGET=127.0.0.1:40123 node dist/bench/tcp-relay-process.js
 * → stdout: {"ready":true,"port":40124,"baseURL":"http://127.0.0.1:40124/v1"}
 * ```
 *
 * The benchmark runs it compiled by esbuild, with no loader (`compileEntry` in
 * `bench/child-processes.ts`). `BENCH_RELAY_TARGET` (`host:port`) is required. A connection whose
 * other side ends or fails is closed. Exits when its stdin closes (the parent went away), on
 * SIGTERM and on SIGINT.
 */
import { connect, createServer, type AddressInfo } from 'node:net';

/** Parses `BENCH_RELAY_TARGET`; throws Error naming it when it is not `host:port`. */
function readTarget(value: string | undefined): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(value ?? '');
  if (!match) throw new Error(`BENCH_RELAY_TARGET must be host:port, got ${JSON.stringify(value)}`);
  return { host: match[1]!, port: Number(match[2]) };
}

/** Starts the relay, prints its address as one JSON line, exits with its parent. */
function main(): void {
  const target = readTarget(process.env.BENCH_RELAY_TARGET);
  const server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ ...target, noDelay: true });
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.once('error', close).once('close', close);
    upstream.once('error', close).once('close', close);
  });
  // Exiting closes the listening socket and every connection.
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop).on('error', stop).resume();
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(`${JSON.stringify({ ready: true, port, baseURL: `http://127.0.0.1:${port}/v1` })}\n`);
  });
}

try {
  main();
} catch (error) {
  console.error('[tcp-relay] failed to start:', error);
  process.exit(1);
}
