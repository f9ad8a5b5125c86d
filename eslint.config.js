// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers (README "How it works"): each folder imports only what sits below it.
 * A wrong import fails `npm test`.
 */
const layer = (files, forbidden, why) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: [{ group: forbidden.flatMap((dir) => [`**/${dir}/*`, `**/${dir}/**`]), message: why }] },
    ],
  },
});
const FRONTS = ['slack', 'cli', 'github', 'server'];

export default tseslint.config(
  { ignores: ['node_modules/**', '.flowops/**', 'test/fixtures/**', 'examples/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // Untrusted text reaches Slack only escaped: mrkdwn text objects are made by src/blocks/mrkdwn.ts (section, contextBlock, mrkdwnText).
    files: ['src/**/*.ts'],
    ignores: ['src/blocks/mrkdwn.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "Property[key.name='type'][value.value='mrkdwn']",
          message:
            'Build mrkdwn with section()/contextBlock()/mrkdwnText() and the mrkdwn`` tag from src/blocks/mrkdwn.ts, so untrusted text is escaped.',
        },
      ],
    },
  },
  layer(
    ['src/engine/**/*.ts'],
    [...FRONTS, 'commands', 'blocks'],
    'the engine speaks the domain: it never imports a front (slack, cli, github, server), the commands or Block Kit.',
  ),
  layer(
    ['src/db/**/*.ts', 'src/source/**/*.ts', 'src/platform/**/*.ts'],
    ['engine', ...FRONTS, 'commands', 'blocks'],
    'db, source and platform sit below the engine: they import nothing of it or of the fronts (errors live in src/errors.ts).',
  ),
  layer(
    ['src/runtime/**/*.ts'],
    ['engine', ...FRONTS, 'commands', 'blocks', 'db', 'source'],
    'the runtime runs apps for the local platform, apart from flowops: it imports the sandbox and nothing of the engine, the fronts or the database.',
  ),
  layer(
    ['src/blocks/**/*.ts'],
    [...FRONTS, 'commands', 'db'],
    'Block Kit builders are pure functions of results and events: no front, no commands, no database.',
  ),
  layer(
    ['src/commands/**/*.ts'],
    [...FRONTS, 'blocks', 'db'],
    'the command grammar serves every front: it imports no front, no Block Kit and no database.',
  ),
  layer(
    ['src/cli/**/*.ts'],
    ['engine', 'db', 'slack', 'github', 'server', 'blocks', 'platform', 'source'],
    'the CLI speaks HTTP to the server: it knows the API types and the grammar, nothing of the engine or the database.',
  ),
  layer(
    ['src/slack/**/*.ts'],
    ['cli', 'github', 'server', 'db'],
    'the Slack front talks to the engine, the commands and Block Kit; not to other fronts or the database.',
  ),
  layer(
    ['src/github/**/*.ts'],
    ['cli', 'slack', 'server', 'commands', 'blocks'],
    'the GitHub front turns deliveries into engine calls; it imports no other front.',
  ),
  layer(
    ['src/http/**/*.ts'],
    ['engine', 'db', 'source', 'platform', ...FRONTS, 'commands', 'blocks'],
    'HTTP edge helpers (status codes, body budgets) serve every front; they know only errors.',
  ),
  layer(
    ['src/errors.ts', 'src/format.ts', 'src/log.ts', 'src/exec.ts'],
    ['engine', 'db', 'source', 'platform', ...FRONTS, 'commands', 'blocks'],
    'leaf modules: anyone may import them, they import nothing of flowops.',
  ),
  layer(
    ['src/api/**/*.ts', 'src/commands/render-text.ts'],
    ['engine', 'db', 'platform', 'source', ...FRONTS, 'blocks'],
    'the CLI and the API types depend on src/api/types.ts, not on the server side; declare the shape there.',
  ),
);
