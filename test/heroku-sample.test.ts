import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppView } from '../src/engine/views.ts';
import { GitRepo } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { fetchApp } from './helpers/app-http.ts';

/** Heroku's Node.js getting-started app, as a Heroku user has it: Express, `PORT`, `web: node index.js`. */
const herokuSample = (greeting: string): Record<string, string> => ({
  'package.json': JSON.stringify(
    {
      name: 'node-js-getting-started',
      version: '0.3.0',
      description: 'A sample Node.js app using Express 4',
      engines: { node: '20.x || 22.x' },
      main: 'index.js',
      scripts: { start: 'node index.js', test: 'node test.js' },
      dependencies: { express: '^4.21.2' },
      license: 'MIT',
    },
    null,
    2,
  ),
  'index.js': [
    "const express = require('express')",
    "const path = require('path')",
    '',
    'const PORT = process.env.PORT || 5006',
    '',
    'const app = express()',
    '',
    "app.use(express.static(path.join(__dirname, 'public')))",
    `app.get('/', (req, res) => res.send('${greeting}'))`,
    '',
    'app.listen(PORT, () => {',
    '  console.log(`Listening on ${ PORT }`)',
    '})',
    '',
  ].join('\n'),
  'public/robots.txt': 'User-agent: *\n',
  Procfile: 'web: node index.js\n',
});

describe("Heroku's sample Node.js app", () => {
  let t: TestServer;
  let repo: GitRepo;

  beforeAll(async () => {
    t = await startTestServer();
    repo = await GitRepo.create(path.join(t.dir, 'node-js-getting-started'), herokuSample('Hello from Heroku'));
    await t.cli(['pipelines:create', 'getting-started', '--repo', repo.dir]);
    await t.cli(['apps:create', 'getting-started-staging', '--pipeline', 'getting-started', '--stage', 'staging']);
  });
  afterAll(() => t.close());

  it('deploys unchanged: npm install, then its web process serves on PORT', async () => {
    const run = await t.cli(['deploy', 'getting-started', 'to', 'staging']);

    expect(run.code, run.out + run.err).toBe(0);
    expect(run.out).toContain('Node.js app detected');
    expect(run.out).toContain('Installing node modules (npm install)');
    const [app] = (await t.json<{ apps: AppView[] }>(['pipelines:info', 'getting-started'])).apps;
    expect(await (await fetchApp(app!.url!)).text()).toBe('Hello from Heroku');
    expect((await fetchApp(`${app!.url}/robots.txt`)).status).toBe(200);
  });

  it('rebuilds a code change from the dependency cache when package.json is unchanged', async () => {
    await repo.commit(herokuSample('Hello again'), 'Change the greeting');

    const run = await t.cli(['deploy', 'getting-started', 'to', 'staging']);

    expect(run.code, run.out + run.err).toBe(0);
    expect(run.out).toContain('Restoring node_modules from cache (lockfile unchanged)');
    expect(run.out).not.toContain('Installing node modules');
    const [app] = (await t.json<{ apps: AppView[] }>(['pipelines:info', 'getting-started'])).apps;
    expect(await (await fetchApp(app!.url!)).text()).toBe('Hello again');
  });
});
