import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSettings } from '../src/config.ts';
import { FakeGitHub } from './helpers/fake-github.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

describe('GitHub App credentials instead of a token', () => {
  let t: TestServer;
  let github: FakeGitHub;
  let dir: string;
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-github-app-'));
    const repo = await GitRepo.create(path.join(dir, 'acme-shop'), webApp('app auth'));
    github = await FakeGitHub.start('acme/shop', repo);
    t = await startTestServer({
      env: { GITHUB_API_URL: github.url, GITHUB_APP_ID: '12345', GITHUB_APP_PRIVATE_KEY: privateKey, GITHUB_APP_INSTALLATION_ID: '678' },
    });
  });
  afterAll(async () => {
    await t.close();
    await github.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the repository as the app's installation", async () => {
    const created = await t.cli(['pipelines:create', 'shop', '--repo', 'github:acme/shop']);

    expect(created.code, created.err).toBe(0);
    const exchange = github.calls.find((c) => c.path === '/app/installations/678/access_tokens')!;
    const jwt = JSON.parse(Buffer.from(exchange.authorization!.replace(/^bearer /i, '').split('.')[1]!, 'base64url').toString()) as {
      iss: string | number;
    };
    expect(String(jwt.iss)).toBe('12345');
    expect(github.calls.find((c) => c.path === '/repos/acme/shop/commits/main')!.authorization).toBe('token ghs_installation_token');
  });

  it('names the missing setting when the credentials are incomplete', () => {
    expect(() => readSettings({ GITHUB_APP_ID: '1', GITHUB_APP_PRIVATE_KEY: privateKey })).toThrow(
      'GITHUB_APP_INSTALLATION_ID is missing: a GitHub App needs GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_INSTALLATION_ID (or unset them and use GITHUB_TOKEN)',
    );
  });
});
