import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/data-source.ts';
import { bubblewrapWorks } from '../src/platform/local/sandbox.ts';
import { freshDatabase } from './helpers/database.ts';
import { deliver, FakeGitHub, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { FakeSlack } from './helpers/fake-slack.ts';
import { GitRepo } from './helpers/git-repo.ts';
import { cliAt, spawnServer, type ServerProcess } from './helpers/server-process.ts';
import { fetchApp } from './helpers/app-http.ts';

const secret = (prefix = '') => `${prefix}${randomBytes(12).toString('hex')}`;

/**
 * The script a hostile repository runs at every step it is given: it prints
 * flowops' settings from its environment, the admin token and a file planted in
 * the data dir, another app's slug, every process's environment and command line
 * (flowops' own by pid), and a listing of the data dir. Its last line repeats it
 * all, for the places that keep only the last line (a postdeploy's error).
 */
function stealScript(dataDir: string, flowopsPid: number): string {
  return `stage=$1
steal() {
  echo "STEAL-RAN:$stage"
  env
  tr '\\0' '\\n' < /proc/${flowopsPid}/environ
  for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < "$f"; done
  for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < "$f"; echo; done
  cat "${dataDir}/admin-token" "${dataDir}/planted.txt"
  ls -la "${dataDir}" "${dataDir}/slugs"
  cat "${dataDir}"/slugs/*/vault-secret.txt
  find "${dataDir}" /tmp /home /root -name vault-secret.txt -exec cat {} \\;
}
steal 2>&1
printf 'LAST:%s %s\\n' "$stage" "$(steal 2>&1 | tr '\\n' ' ')"
`;
}

describe.skipIf(!bubblewrapWorks() && !process.env.CI)('a hostile repository, sandboxed', () => {
  const secrets = {
    admin: secret('admin-'),
    slackBot: secret('xoxb-'),
    slackSigning: secret('signing-'),
    github: secret('ghp_'),
    webhook: secret('hook-'),
    planted: secret('planted-'),
    vaultFile: secret('vault-file-'),
    vaultConfig: secret('vault-config-'),
  };
  let dir: string;
  let dataDir: string;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let server: ServerProcess;
  let slack: FakeSlack;
  let github: FakeGitHub;
  let shop: GitRepo;
  /** Everything flowops answered over HTTP in this test: CLI output, the app's page. */
  const answers: string[] = [];

  async function flowops(...argv: string[]): Promise<string> {
    const { out, err } = await cliAt(server.url, secrets.admin, argv);
    answers.push(out, err);
    return out + err;
  }

  async function until(what: string, done: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 600; i++) {
      if (await done()) return;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  async function webhook(event: string, payload: Record<string, unknown>): Promise<void> {
    (payload.repository as { full_name: string }).full_name = 'acme/shop';
    const body = JSON.stringify(payload);
    const res = await deliver(server.url, event, secret('delivery-'), body, githubSignature(secrets.webhook, body));
    expect(res.status).toBe(202);
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-attack-'));
    dataDir = path.join(dir, 'data');
    await mkdir(dataDir);
    await writeFile(path.join(dataDir, 'planted.txt'), `${secrets.planted}\n`);
    database = await freshDatabase();
    slack = await FakeSlack.start();
    const vault = await GitRepo.create(path.join(dir, 'vault'), {
      'vault-secret.txt': `${secrets.vaultFile}\n`,
      'index.js': "require('node:http').createServer((q, s) => s.end('vault')).listen(process.env.PORT);\n",
      Procfile: 'web: node index.js\n',
    });
    shop = await GitRepo.create(path.join(dir, 'shop'), { 'README.md': 'shop\n' });
    github = await FakeGitHub.start('acme/shop', shop);
    server = await spawnServer({
      FLOW_DATA_DIR: dataDir,
      PORT: '0',
      LOG_LEVEL: 'info',
      FLOW_ADMIN_TOKEN: secrets.admin,
      SLACK_BOT_TOKEN: secrets.slackBot,
      SLACK_SIGNING_SECRET: secrets.slackSigning,
      SLACK_API_URL: slack.apiUrl,
      GITHUB_TOKEN: secrets.github,
      GITHUB_WEBHOOK_SECRET: secrets.webhook,
      GITHUB_API_URL: github.url,
      ...(database.url ? { DATABASE_URL: database.url } : {}),
    });
    expect(server.output()).toContain('Sandbox: bubblewrap');

    // Another team's app, with a secret in its slug and one in its config.
    await flowops('pipelines:create', 'vault', '--repo', vault.dir);
    await flowops('apps:create', 'vault-prod', '--pipeline', 'vault', '--stage', 'production');
    await flowops('deploy', 'vault', 'to', 'production');
    await flowops('config:set', 'vault-prod', `VAULT_KEY=${secrets.vaultConfig}`);

    // The hostile repository: every step it is given runs the script.
    await shop.commit(
      {
        'steal.sh': stealScript(dataDir, server.child.pid!),
        'package.json': JSON.stringify({ name: 'shop', version: '1.0.0', scripts: { build: 'sh steal.sh build' } }),
        'app.json': JSON.stringify({
          scripts: { postdeploy: 'sh steal.sh postdeploy; exit 1' },
          environments: { test: { scripts: { test: 'sh steal.sh test' } } },
        }),
        'index.js':
          "const stolen = require('node:child_process').execSync('sh steal.sh web'); require('node:http').createServer((q, s) => s.end(stolen)).listen(process.env.PORT);\n",
        Procfile: 'web: node index.js\nrelease: sh steal.sh release\n',
      },
      'Totally normal change',
    );
    await flowops('pipelines:create', 'shop', '--repo', 'github:acme/shop');
    await flowops('apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging');
    await flowops('subscribe', 'shop', '--channel', 'CFEED');
    await flowops('ci:enable', 'shop');
    await flowops('reviewapps:enable', 'shop', '--autodeploy');
  }, 240_000);

  afterAll(async () => {
    if (server?.child.exitCode === null) {
      await flowops('apps:destroy', 'shop-staging', '--confirm', 'shop-staging');
      await flowops('apps:destroy', 'vault-prod', '--confirm', 'vault-prod');
      await flowops('reviewapps:destroy', 'shop', '--pr', '7');
      server.child.kill('SIGTERM');
      await once(server.child, 'exit');
    }
    await slack?.close();
    await github?.close();
    await database?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('shows none of flowops secrets in any output, log, event, Slack call or HTTP answer, at build, test, release phase, dyno and postdeploy', async () => {
    // Release phase and dyno: a deploy.
    await flowops('deploy', 'shop', 'to', 'staging');
    await flowops('releases:output', 'shop-staging');
    const info = await flowops('pipelines:info', 'shop', '--json');
    const url = (JSON.parse(info) as { apps: { url: string | null }[] }).apps[0]!.url!;
    answers.push(await (await fetchApp(url)).text());

    // Build and tests: a push with CI on.
    const sha = (await shop.git('rev-parse', 'HEAD')).trim();
    const push = webhookExample('push', (e) => e.ref === 'refs/heads/master');
    Object.assign(push, { ref: 'refs/heads/main', after: sha });
    await webhook('push', push);
    await until('the test run', async () => /failed|succeeded|errored/.test(await flowops('ci', 'shop')));
    await flowops('ci:info', 'shop', '1');

    // postdeploy: a pull request's review app.
    const pr = webhookExample('pull_request', (e) => e.action === 'opened');
    const pull = pr.pull_request as {
      head: { ref: string; sha: string; repo: { full_name: string } };
      base: { repo: { full_name: string } };
      number: number;
    };
    Object.assign(pr, { number: 7 });
    Object.assign(pull, { number: 7 });
    Object.assign(pull.head, { ref: 'main', sha });
    pull.head.repo.full_name = 'acme/shop';
    pull.base.repo.full_name = 'acme/shop';
    await webhook('pull_request', pr);
    await until('the review app', async () => /errored|created/.test(await flowops('reviewapps', 'shop')));
    await sleep(1000); // the Slack notifier's last round

    // What flowops stored: events, outputs, errors. Read after the server stops (PGlite is one process's).
    const logs = await readAppLogs(path.join(dataDir, 'apps'));
    await flowops('apps:destroy', 'shop-staging', '--confirm', 'shop-staging');
    await flowops('apps:destroy', 'vault-prod', '--confirm', 'vault-prod');
    await flowops('reviewapps:destroy', 'shop', '--pr', '7');
    server.child.kill('SIGTERM');
    await once(server.child, 'exit');
    const db = await openDatabase(database.url, dataDir);
    const stored = JSON.stringify(
      await Promise.all([
        db.dataSource.query('SELECT * FROM events'),
        db.dataSource.query('SELECT output, description FROM releases'),
        db.dataSource.query('SELECT output FROM builds'),
        db.dataSource.query('SELECT output FROM test_runs'),
        db.dataSource.query('SELECT error, targets FROM operations'),
        db.dataSource.query('SELECT error FROM review_apps'),
      ]),
    );
    await db.close();
    const seen = [
      stored,
      server.output(),
      JSON.stringify(slack.calls),
      JSON.stringify(slack.responses),
      JSON.stringify(github.statuses),
      JSON.stringify(github.deployments),
      logs,
      ...answers,
    ].join('\n');

    // Each step ran, and what it printed reached the places searched.
    for (const stage of ['build', 'test', 'release', 'web']) expect(seen).toContain(`STEAL-RAN:${stage}`);
    expect(seen).toContain('LAST:postdeploy');
    for (const [name, value] of Object.entries({ ...secrets, database: database.url ?? 'no-database-url' })) {
      expect(seen.includes(value), `${name} leaked`).toBe(false);
    }
  }, 240_000);
});

/** The dynos' own log files. */
async function readAppLogs(appsDir: string): Promise<string> {
  let all = '';
  for (const app of await readdir(appsDir).catch(() => [] as string[])) {
    const logs = path.join(appsDir, app, 'logs');
    for (const file of await readdir(logs).catch(() => [] as string[])) all += await readFile(path.join(logs, file), 'utf8');
  }
  return all;
}

describe('repository code without a sandbox (FLOW_SANDBOX=none)', () => {
  it("still never sees flowops' settings in its environment", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-nosandbox-'));
    const database = await freshDatabase();
    const settings = {
      FLOW_ADMIN_TOKEN: secret('admin-'),
      SLACK_BOT_TOKEN: secret('xoxb-'),
      SLACK_SIGNING_SECRET: secret('signing-'),
      GITHUB_TOKEN: secret('ghp_'),
      GITHUB_WEBHOOK_SECRET: secret('hook-'),
    };
    const repo = await GitRepo.create(path.join(dir, 'repo'), {
      'index.js': "require('node:http').createServer((q, s) => s.end(JSON.stringify(process.env))).listen(process.env.PORT);\n",
      Procfile: 'web: node index.js\nrelease: env\n',
    });
    const server = await spawnServer({
      FLOW_DATA_DIR: path.join(dir, 'data'),
      PORT: '0',
      FLOW_SANDBOX: 'none',
      SLACK_API_URL: 'http://127.0.0.1:9/api/',
      ...settings,
      ...(database.url ? { DATABASE_URL: database.url } : {}),
    });
    const flowops = async (...argv: string[]) => {
      const { out, err } = await cliAt(server.url, settings.FLOW_ADMIN_TOKEN, argv);
      return out + err;
    };
    try {
      expect(server.output()).toContain('Sandbox: none (FLOW_SANDBOX=none)');
      await flowops('pipelines:create', 'bare', '--repo', repo.dir);
      await flowops('apps:create', 'bare-staging', '--pipeline', 'bare', '--stage', 'staging');
      await flowops('config:set', 'bare-staging', 'OWN=mine');
      await flowops('deploy', 'bare', 'to', 'staging');

      const release = await flowops('releases:output', 'bare-staging');
      const url = (JSON.parse(await flowops('pipelines:info', 'bare', '--json')) as { apps: { url: string }[] }).apps[0]!.url;
      const dynoEnv = JSON.parse(await (await fetchApp(url)).text()) as Record<string, string>;

      expect(release).toContain('DYNO=release.1');
      expect(await flowops('pipelines:info', 'bare')).toContain(
        'Warning: this flowops runs repository code unsandboxed (builds, tests and apps can read its settings and data); install bubblewrap',
      );
      expect(Object.keys(dynoEnv).sort()).toEqual(['DYNO', 'FLOWOPS_SANDBOX', 'HOME', 'HOST', 'OWN', 'PATH', 'PORT', 'PWD']);
      for (const value of [...Object.values(settings), database.url ?? 'no-database-url'])
        expect(release + JSON.stringify(dynoEnv)).not.toContain(value);
      await flowops('apps:destroy', 'bare-staging', '--confirm', 'bare-staging');
    } finally {
      server.child.kill('SIGTERM');
      await once(server.child, 'exit');
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
