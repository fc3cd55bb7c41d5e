/**
 * A stand-in OpenTelemetry Collector for the tracing phase (`bench/tracing-overhead.ts`): takes
 * OTLP/HTTP exports (`POST /v1/traces`, any encoding), answers 200 at once and keeps only counts,
 * in its own process so that receiving spans costs neither the gateway nor the client.
 *
 * ```
 * node bench/otlp-sink-process.ts
 * → stdout: {"ready":true,"endpoint":"http://127.0.0.1:40123"}
 * stdin {"command":"stats","id":1} → stdout {"id":1,"exports":12,"bytes":345678}
 * ```
 * Exits when its stdin closes (the parent went away), on SIGTERM and on SIGINT.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';

let exports = 0;
let bytes = 0;
const server = createServer((request, response) => {
  request.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  request.on('end', () => {
    if (request.url === '/v1/traces') exports++;
    response.writeHead(request.url === '/v1/traces' ? 200 : 404, { 'content-type': 'application/x-protobuf' }).end();
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ ready: true, endpoint: `http://127.0.0.1:${port}` })}\n`);
});
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let message: { id?: unknown; command?: string };
  try {
    message = JSON.parse(line) as typeof message;
  } catch {
    return;
  }
  const answer = message.command === 'stats' ? { id: message.id, exports, bytes } : { id: message.id, error: `unknown command ${line}` };
  process.stdout.write(`${JSON.stringify(answer)}\n`);
});
lines.on('close', stop);
