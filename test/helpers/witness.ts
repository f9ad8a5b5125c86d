import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Witness {
  /** What repository code reported, in the order it arrived. */
  reports: string[];
  /**
   * A shell command that reports `message` (shell-expanded, in double quotes) and
   * waits for the answer. Repository code runs sandboxed, where no path of the
   * test is visible, but it shares the machine's loopback.
   */
  report(message: string): string;
  close(): Promise<void>;
}

/** A local HTTP server that repository code (a release phase, postdeploy) tells what it did. */
export async function startWitness(): Promise<Witness> {
  const reports: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      reports.push(body);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    reports,
    report: (message) =>
      `node -e 'fetch(process.argv[1], { method: "POST", body: process.argv[2] }).then((r) => r.text())' ${url} "${message}"`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
