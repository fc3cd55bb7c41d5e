/**
 * A TCP proxy on 127.0.0.1 in front of a real server (Redis, in the tests), to break the network
 * between the gateway and it the ways networks break:
 * - `cut()` destroys every connection and stops listening (new connections are refused, as with
 *   the server down); `restore()` listens on the same port again;
 * - `freeze()` stops carrying bytes either way while every connection stays open, as a network that
 *   drops packets does (the peer waits for answers that never come).
 */
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly upstreams = new Set<Socket>();
  /** The port it listens on (0 until `listen`). */
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Listens on `port` (any free port the first time). */
  async listen(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      this.upstreams.add(upstream);
      upstream.on('close', () => this.upstreams.delete(upstream));
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {});
      }
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Destroys every connection and stops listening. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise((resolve) => server.close(resolve)) : Promise.resolve();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listens again on the same port after `cut`. */
  restore(): Promise<void> {
    return this.listen();
  }

  /** Stops carrying bytes on every open connection, leaving them open. */
  freeze(): void {
    for (const socket of this.sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  /** The local ports of the proxy's open connections to the target (`addr=127.0.0.1:<port>` in Redis' `CLIENT LIST`). */
  upstreamPorts(): number[] {
    return [...this.upstreams].flatMap((socket) => (socket.localPort === undefined ? [] : [socket.localPort]));
  }
}
