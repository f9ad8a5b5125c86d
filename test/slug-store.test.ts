import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSettings } from '../src/config.ts';
import type { OperationView, ReleaseView } from '../src/engine/views.ts';
import { LocalPlatform } from '../src/platform/local/local-platform.ts';
import { openSlugStore } from '../src/platform/slug-store.ts';
import { slugToken, slugUrl } from '../src/platform/slug-url.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startLocalS3, type LocalS3 } from './helpers/local-s3.ts';
import { startServer } from '../src/server/start-server.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** GET with nothing of fetch's own: the path goes out exactly as written (`..` included), redirects are not followed. */
function rawGet(url: string, pathAndQuery: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    http
      .get({ host: hostname, port, path: pathAndQuery }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

const pathOf = (url: string) => {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
};

/** A replica of its own: a data dir that never built anything, on the same slug store. */
async function replica(env: Record<string, string>): Promise<{ platform: LocalPlatform; dataDir: string; close(): Promise<void> }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowops-replica-'));
  const platform = new LocalPlatform(dataDir, {
    bootTimeoutMs: 20_000,
    routerPort: 0,
    slugStore: openSlugStore(readSettings(env).slugStore, dataDir),
  });
  return { platform, dataDir, close: () => rm(dataDir, { recursive: true, force: true }) };
}

async function runIn(platform: LocalPlatform, slugId: string, command: string): Promise<{ code: number; output: string }> {
  return platform.runCommand(slugId, command, { SUFFIX: '!' }, () => undefined);
}

describe('slugs in S3: uploaded once, fetched by any replica, verified', () => {
  let s3: LocalS3;
  let t: TestServer;
  let repo: GitRepo;
  let storeEnv: Record<string, string>;
  let slugId: string;
  const savedEnv = { ...process.env };
  const puts = () => s3.requests.filter((r) => r.method === 'PUT');

  beforeAll(async () => {
    s3 = await startLocalS3(['slugs']);
    // The AWS SDK's default credential chain reads them from the environment, as on a real machine.
    Object.assign(process.env, s3.env);
    storeEnv = { FLOW_SLUG_STORE: 's3://slugs/some/prefix', FLOW_S3_ENDPOINT: s3.endpoint };
    t = await startTestServer({ env: storeEnv });
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('hello from s3'));
    await t.cli(['pipelines:create', 'shop', '--repo', repo.dir]);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production']);
  });
  afterAll(async () => {
    await t?.close();
    await s3?.close();
    for (const name of Object.keys(s3?.env ?? {})) if (savedEnv[name] === undefined) delete process.env[name];
  });

  it('uploads the slug of a deploy to the bucket exactly once, under <prefix>/<sha256>.tgz', async () => {
    const deploy = await t.json<OperationView>(['deploy', 'shop', 'to', 'staging']);

    expect(deploy.status).toBe('succeeded');
    slugId = (await t.json<ReleaseView[]>(['releases', 'shop-staging']))[0]!.slug!;
    expect(puts()).toEqual([{ method: 'PUT', url: expect.stringMatching(`^/slugs/some/prefix/${slugId}\\.tgz(\\?|$)`), status: 200 }]);
    const local = await readFile(path.join(t.dir, 'data', 'slugs', `${slugId}.tgz`));
    expect(sha256(local)).toBe(slugId);
    const stored = await fetch((await t.server.platform.slugStore.readUrl(slugId))!);
    expect(sha256(Buffer.from(await stored.arrayBuffer()))).toBe(slugId);
  });

  it('never uploads a slug the bucket already has (another replica built the same bytes)', async () => {
    const archive = path.join(t.dir, 'data', 'slugs', `${slugId}.tgz`);

    const uploaded = await t.server.platform.slugStore.put(slugId, archive);

    expect(uploaded).toBe(false);
    expect(s3.requests.at(-1)).toMatchObject({ method: 'HEAD', status: 200 });
    expect(puts()).toHaveLength(1);
  });

  it('promotes without uploading anything: the production release points at the same slug', async () => {
    const before = s3.requests.length;

    const promotion = await t.json<OperationView>(['promote', 'shop']);

    expect(promotion.status).toBe('succeeded');
    expect((await t.json<ReleaseView[]>(['releases', 'shop']))[0]!.slug).toBe(slugId);
    expect(s3.requests.slice(before).filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);
    expect(puts()).toHaveLength(1);
  });

  it('runs the slug on a replica that never built it: fetched from S3 into its cache, its sha256 checked', async () => {
    const other = await replica(storeEnv);
    try {
      const gets = s3.requests.filter((r) => r.method === 'GET').length;

      // A release phase and a one-off command of the same slug at once: one download.
      const [run, again] = await Promise.all([
        runIn(other.platform, slugId, 'node -e "console.log(require(\'./message.json\').text + process.env.SUFFIX)"'),
        runIn(other.platform, slugId, 'cat Procfile'),
      ]);

      expect(run).toMatchObject({ code: 0, output: expect.stringContaining('hello from s3!') });
      expect(again).toMatchObject({ code: 0, output: expect.stringContaining('web: node index.js') });
      expect(s3.requests.filter((r) => r.method === 'GET').length).toBe(gets + 1);
      expect(sha256(await readFile(path.join(other.dataDir, 'slugs', `${slugId}.tgz`)))).toBe(slugId);
      // Cached now: the second command fetches nothing.
      expect((await runIn(other.platform, slugId, 'cat Procfile')).code).toBe(0);
      expect(s3.requests.filter((r) => r.method === 'GET').length).toBe(gets + 1);
      expect(puts()).toHaveLength(1);
    } finally {
      await other.close();
    }
  });

  it('refuses a slug whose bytes in S3 are not its sha256, and keeps nothing of it', async () => {
    const original = await readFile(path.join(t.dir, 'data', 'slugs', `${slugId}.tgz`));
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true });
    const key = `some/prefix/${slugId}.tgz`;
    // Someone with write access to the bucket swaps the archive for another one (a valid gzip, a different app).
    const other = await GitRepo.create(path.join(t.dir, 'evil'), { Procfile: 'web: node evil.js\n', 'evil.js': '' });
    const tampered = await readFile(await archiveOf(other.dir, path.join(t.dir, 'evil.tgz')));
    await client.send(new PutObjectCommand({ Bucket: 'slugs', Key: key, Body: tampered }));
    const fresh = await replica(storeEnv);
    try {
      const run = runIn(fresh.platform, slugId, 'cat Procfile');

      await expect(run).rejects.toThrow(
        `slug ${slugId.slice(0, 12)} in the slug store has sha256 ${sha256(tampered).slice(0, 12)}: refusing to use it`,
      );
      expect(existsSync(path.join(fresh.dataDir, 'slugs', `${slugId}.tgz`))).toBe(false);
      expect(existsSync(path.join(fresh.dataDir, 'slugs', slugId))).toBe(false);
    } finally {
      await fresh.close();
      await client.send(new PutObjectCommand({ Bucket: 'slugs', Key: key, Body: original }));
    }
  });

  it('keeps the S3 settings and credentials out of the app: a one-off command sees none of them', async () => {
    const run = await runIn(t.server.platform, slugId, 'env');

    expect(run.code).toBe(0);
    expect(run.output).toContain('SUFFIX=!');
    expect(run.output).not.toMatch(/AWS_|S3RVER|FLOW_S3|FLOW_SLUG_STORE/);
  });

  it('says so when a slug is not in the store at all', async () => {
    const fresh = await replica(storeEnv);
    try {
      await expect(runIn(fresh.platform, 'f'.repeat(64), 'true')).rejects.toThrow(`slug ffffffffffff is not in s3://slugs/some/prefix`);
    } finally {
      await fresh.close();
    }
  });

  it('redirects a pod with a good token to a presigned URL, good for 5 minutes, that S3 serves', async () => {
    const url = slugUrl(t.server.url, t.server.slugUrlKey, 'shop', slugId);

    const answer = await rawGet(t.server.url, pathOf(url));

    expect(answer.status).toBe(302);
    const location = new URL(answer.headers.location!);
    expect(location.origin).toBe(s3.endpoint);
    expect(location.pathname).toBe(`/slugs/some/prefix/${slugId}.tgz`);
    expect(location.searchParams.get('X-Amz-Expires')).toBe('300');
    expect(location.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    const object = await fetch(location);
    expect(object.status).toBe(200);
    expect(sha256(Buffer.from(await object.arrayBuffer()))).toBe(slugId);
    // Six minutes later the same URL is refused. (s3rver checks a presigned URL's date and expiry but not its
    // SigV4 signature, so time passing is played by dating the URL back; S3 itself would refuse the edit too.)
    const later = new URL(location);
    const sixMinutesAgo = new Date(Date.now() - 6 * 60_000).toISOString().replace(/[-:]|\.\d{3}/g, '');
    later.searchParams.set('X-Amz-Date', sixMinutesAgo);
    const expired = await fetch(later);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain('Request has expired');
  });

  it('answers 404 for a slug that is not in S3, even with a token for it', async () => {
    const missing = 'a'.repeat(64);

    const answer = await rawGet(t.server.url, pathOf(slugUrl(t.server.url, t.server.slugUrlKey, 'shop', missing)));

    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body.toString())).toEqual({ error: { code: 'not_found', message: 'no such slug' } });
  });
});

/** `tar czf` of a directory, as an archive an attacker could upload. */
async function archiveOf(dir: string, file: string): Promise<string> {
  const { runOrThrow } = await import('../src/exec.ts');
  await runOrThrow('tar', ['-czf', file, '-C', dir, '.']);
  return file;
}

describe('the slug endpoint, slugs in the data dir', () => {
  let t: TestServer;
  let slugId: string;

  beforeAll(async () => {
    t = await startTestServer();
    const repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('hello from the data dir'));
    await t.cli(['pipelines:create', 'shop', '--repo', repo.dir]);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['apps:create', 'blog', '--pipeline', 'shop', '--stage', 'production']);
    await t.json(['deploy', 'shop', 'to', 'staging']);
    slugId = (await t.json<ReleaseView[]>(['releases', 'shop-staging']))[0]!.slug!;
  });
  afterAll(() => t?.close());

  it('streams the exact archive for a good token, as application/gzip with its length', async () => {
    const archive = await readFile(path.join(t.dir, 'data', 'slugs', `${slugId}.tgz`));

    const answer = await rawGet(t.server.url, pathOf(slugUrl(t.server.url, t.server.slugUrlKey, 'shop-staging', slugId)));

    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/gzip');
    expect(answer.headers['content-length']).toBe(String(archive.length));
    expect(answer.body.equals(archive)).toBe(true);
    expect(sha256(answer.body)).toBe(slugId);
  });

  const refused = { error: { code: 'not_found', message: 'no such slug' } };
  const key = () => t.server.slugUrlKey;

  it.each([
    ['no token', () => `/slugs/${slugId}.tgz?app=shop-staging`],
    ['no app', () => `/slugs/${slugId}.tgz?token=${slugToken(key(), 'shop-staging', slugId)}`],
    ['a forged token', () => `/slugs/${slugId}.tgz?app=shop-staging&token=${'0'.repeat(64)}`],
    [
      'a token with one digit changed',
      () => {
        const token = slugToken(key(), 'shop-staging', slugId);
        return `/slugs/${slugId}.tgz?app=shop-staging&token=${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`;
      },
    ],
    [
      'a token made with another key',
      () => `/slugs/${slugId}.tgz?app=shop-staging&token=${slugToken(Buffer.from('guess'), 'shop-staging', slugId)}`,
    ],
    ['another app’s token', () => `/slugs/${slugId}.tgz?app=shop-staging&token=${slugToken(key(), 'blog', slugId)}`],
    ['a token for another slug', () => `/slugs/${slugId}.tgz?app=shop-staging&token=${slugToken(key(), 'shop-staging', 'b'.repeat(64))}`],
    [
      'a good token for a slug that does not exist',
      () => `/slugs/${'b'.repeat(64)}.tgz?app=shop-staging&token=${slugToken(key(), 'shop-staging', 'b'.repeat(64))}`,
    ],
    [
      'an upper-case sha',
      () => `/slugs/${slugId.toUpperCase()}.tgz?app=shop-staging&token=${slugToken(key(), 'shop-staging', slugId.toUpperCase())}`,
    ],
    [
      'a short sha',
      () => `/slugs/${slugId.slice(0, 12)}.tgz?app=shop-staging&token=${slugToken(key(), 'shop-staging', slugId.slice(0, 12))}`,
    ],
    ['a sha without .tgz (the unpacked tree)', () => `/slugs/${slugId}?app=shop-staging&token=${slugToken(key(), 'shop-staging', slugId)}`],
    ['a token given twice', () => `/slugs/${slugId}.tgz?app=shop-staging&token=${slugToken(key(), 'shop-staging', slugId)}&token=x`],
    [
      'an escaped path out of the slugs dir',
      () => `/slugs/..%2F..%2Fadmin-token?app=shop-staging&token=${slugToken(key(), 'shop-staging', '../../admin-token')}`,
    ],
    ['a path with .. segments', () => `/slugs/../admin-token?app=shop-staging&token=${slugToken(key(), 'shop-staging', '../admin-token')}`],
    [
      'the package.json beside the slugs',
      () => `/slugs/package.json?app=shop-staging&token=${slugToken(key(), 'shop-staging', 'package.json')}`,
    ],
  ])('answers 404 and nothing else for %s', async (_what, path) => {
    const answer = await rawGet(t.server.url, path());

    expect(answer.status).toBe(404);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    // A path that is not /slugs/<one segment> never reaches the endpoint: the server's own 404.
    expect(JSON.parse(answer.body.toString())).toEqual(
      path().includes('/../') ? { error: { code: 'not_found', message: 'no such endpoint' } } : refused,
    );
    expect(answer.body.toString()).not.toContain(t.server.admin.token);
  });
});

describe('FLOW_SLUG_STORE and FLOW_S3_ENDPOINT', () => {
  it.each([
    [{}, { kind: 'dir' }],
    [{ FLOW_SLUG_STORE: 'dir' }, { kind: 'dir' }],
    [{ FLOW_SLUG_STORE: 's3://slugs' }, { kind: 's3', bucket: 'slugs', prefix: '', endpoint: undefined, region: 'us-east-1' }],
    [
      { FLOW_SLUG_STORE: 's3://my.slugs-1/flowops/prod/', FLOW_S3_ENDPOINT: 'http://minio:9000/', AWS_REGION: 'eu-west-1' },
      { kind: 's3', bucket: 'my.slugs-1', prefix: 'flowops/prod', endpoint: 'http://minio:9000', region: 'eu-west-1' },
    ],
  ])('reads %j', (env, expected) => {
    expect(readSettings(env).slugStore).toEqual(expected);
  });

  it.each([
    [{ FLOW_SLUG_STORE: 'slugs' }, 'FLOW_SLUG_STORE must be dir or s3://bucket/prefix'],
    [{ FLOW_SLUG_STORE: 'https://slugs.s3.amazonaws.com' }, 'FLOW_SLUG_STORE must be dir or s3://bucket/prefix'],
    [{ FLOW_SLUG_STORE: 's3://' }, 'FLOW_SLUG_STORE must be dir or s3://bucket/prefix'],
    [{ FLOW_SLUG_STORE: 's3://Slugs' }, 'FLOW_SLUG_STORE must be dir or s3://bucket/prefix'],
    [{ FLOW_SLUG_STORE: 's3://slugs/a/../b' }, 'FLOW_SLUG_STORE must be dir or s3://bucket/prefix'],
    [{ FLOW_SLUG_STORE: 's3://slugs//a' }, 'FLOW_SLUG_STORE must be dir or s3://bucket/prefix'],
    [{ FLOW_SLUG_STORE: 's3://slugs/a b' }, 'FLOW_SLUG_STORE must be dir or s3://bucket/prefix'],
    [
      { FLOW_SLUG_STORE: 's3://slugs', FLOW_S3_ENDPOINT: 'minio:9000' },
      'FLOW_S3_ENDPOINT must be the http(s) address of an S3-compatible service, like http://minio:9000, got "minio:9000"; unset it for AWS S3',
    ],
    [
      { FLOW_S3_ENDPOINT: 'http://minio:9000' },
      'FLOW_S3_ENDPOINT is set but FLOW_SLUG_STORE is not an s3:// URL; set FLOW_SLUG_STORE=s3://bucket/prefix or unset FLOW_S3_ENDPOINT',
    ],
    [{ FLOW_SLUG_STORE: 's3://slugs', AWS_REGION: 'Europe (Paris)' }, 'AWS_REGION must be a region name like eu-west-1'],
  ])('refuses %j, naming the setting and what to set', (env, message) => {
    expect(() => readSettings(env)).toThrow(message);
  });

  it('stops start-up, saying what to check, when the bucket cannot be reached', async () => {
    const s3 = await startLocalS3(['slugs']);
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowops-slug-settings-'));
    Object.assign(process.env, s3.env);
    try {
      const start = startServer(
        readSettings({ PORT: '0', FLOW_DATA_DIR: dataDir, FLOW_SLUG_STORE: 's3://no-such-bucket/x', FLOW_S3_ENDPOINT: s3.endpoint }),
      );

      await expect(start).rejects.toThrow(
        'FLOW_SLUG_STORE: the bucket "no-such-bucket" cannot be reached (HTTP 404); check FLOW_S3_ENDPOINT, AWS_REGION and the AWS credentials',
      );
      expect(s3.requests.map((r) => r.method)).toEqual(['HEAD']);
    } finally {
      await s3.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
