import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

export interface S3Request {
  method: string;
  /** The path and query, as sent (`/slugs/prefix/<sha>.tgz`). */
  url: string;
  status: number;
}

export interface LocalS3 {
  /** The S3 endpoint (FLOW_S3_ENDPOINT): the recording proxy in front of s3rver. */
  endpoint: string;
  /** Every request that reached S3, in order. */
  requests: S3Request[];
  /** The credentials s3rver accepts. */
  env: { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string };
  close(): Promise<void>;
}

/**
 * A local S3-compatible server (s3rver, data in a temp dir) with the given
 * buckets, behind a small proxy that records each request, so tests assert
 * what flowops sent to S3.
 */
export async function startLocalS3(buckets: string[]): Promise<LocalS3> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'flowops-s3-'));
  const s3 = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true, configureBuckets: buckets.map((name) => ({ name })) });
  const { port: s3Port } = await s3.run();
  const requests: S3Request[] = [];
  // Headers go through unchanged (Host too): the SDK's signatures cover them.
  const proxy = http.createServer((req, res) => {
    const upstream = http.request(
      { host: '127.0.0.1', port: s3Port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        requests.push({ method: req.method!, url: req.url!, status: answer.statusCode! });
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    requests,
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' },
    async close() {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
      await s3.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
