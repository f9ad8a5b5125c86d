import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runOrThrow } from '../../src/exec.ts';

/** A real git repository the tests commit to, as a developer would. */
export class GitRepo {
  constructor(readonly dir: string) {}

  static async create(dir: string, files: Record<string, string>, message = 'First version'): Promise<GitRepo> {
    await mkdir(dir, { recursive: true });
    const repo = new GitRepo(dir);
    await repo.git('init', '-q', '-b', 'main');
    await repo.git('config', 'user.email', 'dana@example.com');
    await repo.git('config', 'user.name', 'Dana Dev');
    await repo.commit(files, message);
    return repo;
  }

  git(...args: string[]): Promise<string> {
    return runOrThrow('git', ['-C', this.dir, ...args]);
  }

  /** Writes the files and commits them; returns the new commit's sha. */
  async commit(files: Record<string, string>, message: string): Promise<string> {
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(this.dir, name)), { recursive: true });
      await writeFile(path.join(this.dir, name), content);
    }
    await this.git('add', '-A');
    await this.git('commit', '-q', '-m', message);
    return (await this.git('rev-parse', 'HEAD')).trim();
  }
}

/** A small web app with a release phase, no dependencies: `<text><SUFFIX>` on `/`, its pid on `/pid`. */
export function webApp(text: string, release = 'console.log("migrating database... ok")'): Record<string, string> {
  return {
    'index.js': [
      "const http = require('node:http');",
      "const text = require('./message.json').text;",
      "http.createServer((req, res) => res.end(req.url === '/pid' ? String(process.pid) : `${text}${process.env.SUFFIX ?? ''}\\n`)).listen(process.env.PORT);",
      '',
    ].join('\n'),
    'message.json': JSON.stringify({ text }),
    'release.js': `${release}\n`,
    Procfile: 'web: node index.js\nrelease: node release.js\n',
  };
}
