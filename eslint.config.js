// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.flowops/**', 'test/fixtures/**'] },
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
          message: "Build mrkdwn with section()/contextBlock()/mrkdwnText() and the mrkdwn`` tag from src/blocks/mrkdwn.ts, so untrusted text is escaped.",
        },
      ],
    },
  },
  {
    // The CLI knows the server only through /api: its JSON shapes (src/api/types.ts) and the shared grammar.
    files: ['src/cli/**/*.ts', 'src/api/**/*.ts', 'src/commands/render-text.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/engine/*', '**/db/*', '**/platform/*', '**/source/*', '**/server/*', '**/slack/*', '**/github/*'],
              message: 'The CLI and the API types depend on src/api/types.ts, not on the server side; declare the shape there.',
            },
          ],
        },
      ],
    },
  },
);
