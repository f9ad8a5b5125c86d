import http from 'node:http';

export interface AppAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text(): Promise<string>;
}

/**
 * GET (or another method) on an app's URL, `http://shop.localhost:5000/path`,
 * as curl and browsers do: `*.localhost` is this machine (RFC 6761), which
 * Node's resolver does not know, so the request goes to 127.0.0.1 with the
 * URL's host in the Host header. Rejects when nothing listens.
 */
export function fetchApp(url: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<AppAnswer> {
  const target = new URL(url);
  const loopback = target.hostname === 'localhost' || target.hostname.endsWith('.localhost');
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: loopback ? '127.0.0.1' : target.hostname,
        port: target.port || 80,
        path: `${target.pathname}${target.search}`,
        method: init.method ?? 'GET',
        headers: { host: target.host, ...init.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: async () => body });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
    req.end();
  });
}
