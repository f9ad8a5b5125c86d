import net from 'node:net';

/**
 * A TCP proxy in front of Postgres that a test can cut (every open connection
 * dropped, new ones dropped as they come) and restore: a database outage, or
 * a network partition, on demand, with the real database behind it.
 */
export class TcpProxy {
  private readonly open = new Set<net.Socket>();
  private server!: net.Server;
  private down = false;
  /** Connections dropped at once because the proxy was cut. */
  refused = 0;
  port = 0;

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy();
    proxy.server = net.createServer((client) => {
      if (proxy.down) {
        proxy.refused++;
        client.destroy();
        return;
      }
      const upstream = net.connect(target.port, target.host);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        proxy.open.add(a);
        a.pipe(b);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          proxy.open.delete(a);
          b.destroy();
        });
      }
    });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  cut(): void {
    this.down = true;
    for (const socket of this.open) socket.destroy();
  }

  restore(): void {
    this.down = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
