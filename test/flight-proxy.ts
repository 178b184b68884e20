import net from 'node:net';

/**
 * A TCP proxy in front of the server that counts client flights: how many times the client
 * starts sending after the server has sent something (or after connecting). Pipelined messages
 * written together are one flight; each wait for a reply before sending again is another.
 */
export class FlightProxy {
  flights = 0;
  /** ReadyForQuery messages from the server: one per Sync (or simple query) the client sent. */
  syncs = 0;
  /** Describe messages from the client. */
  describes = 0;
  connections = 0;
  clientBytes = 0;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(upstreamUrl: string): Promise<FlightProxy> {
    const up = new URL(upstreamUrl);
    const host = up.hostname;
    const port = Number(up.port || 5432);
    const server = net.createServer();
    const proxy = new FlightProxy(server);
    server.on('connection', (client) => {
      proxy.connections++;
      const upstream = net.connect({ host, port });
      proxy.#sockets.add(client).add(upstream);
      let serverSpokeLast = true;
      // Server messages are framed as type (1 byte) + length (4 bytes, counting itself) + body.
      let pending = Buffer.alloc(0);
      // Client messages are framed like the server's, except the first (startup: length first).
      let fromClient = Buffer.alloc(0);
      let startup = true;
      client.on('data', (chunk) => {
        fromClient = Buffer.concat([fromClient, chunk]);
        for (;;) {
          if (startup) {
            if (fromClient.length < 4) break;
            const size = fromClient.readInt32BE(0);
            if (fromClient.length < size) break;
            fromClient = fromClient.subarray(size);
            startup = false;
            continue;
          }
          if (fromClient.length < 5) break;
          const size = 1 + fromClient.readInt32BE(1);
          if (fromClient.length < size) break;
          if (fromClient[0] === 0x44) proxy.describes++; // 'D' Describe
          fromClient = fromClient.subarray(size);
        }
        proxy.clientBytes += chunk.length;
        if (serverSpokeLast) proxy.flights++;
        serverSpokeLast = false;
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        serverSpokeLast = true;
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 5) {
          const size = 1 + pending.readInt32BE(1);
          if (pending.length < size) break;
          if (pending[0] === 0x5a) proxy.syncs++; // 'Z' ReadyForQuery
          pending = pending.subarray(size);
        }
        client.write(chunk);
      });
      const end = () => { client.destroy(); upstream.destroy(); };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** `url` with host and port replaced by the proxy's. */
  url(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String((this.#server.address() as net.AddressInfo).port);
    return u.toString();
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
