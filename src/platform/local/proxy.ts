import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The app's stable URL. Each release's web process listens on a port of its own;
 * the proxy forwards to the live one, so switching releases drops no request.
 */
export class AppProxy {
  target: number | null = null;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly server = http.createServer((req, res) => {
    const target = this.target;
    if (target === null) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('no web process is running for this app\n');
      return;
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('the app did not answer\n');
    });
    req.pipe(upstream);
  });

  /** Listens on `port` (0: any free one) and returns the port it got. */
  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
