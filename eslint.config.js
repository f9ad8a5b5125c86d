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
);
