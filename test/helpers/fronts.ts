import type { FakeGitHub } from './fake-github.ts';
import type { FakeSlack } from './fake-slack.ts';

/** The settings that point a flowops server at the tests' stand-ins for GitHub and Slack (HTTP mode), as an operator sets them. */
export function frontsEnv(fronts: {
  github?: { fake: FakeGitHub; webhookSecret?: string };
  slack?: { fake: FakeSlack; signingSecret: string; admins?: string };
}): Record<string, string> {
  const { github, slack } = fronts;
  return {
    ...(github ? { GITHUB_API_URL: github.fake.url, GITHUB_TOKEN: 'ghp_test' } : {}),
    ...(github?.webhookSecret ? { GITHUB_WEBHOOK_SECRET: github.webhookSecret } : {}),
    ...(slack ? { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: slack.signingSecret, SLACK_API_URL: slack.fake.apiUrl } : {}),
    ...(slack?.admins ? { FLOW_SLACK_ADMINS: slack.admins } : {}),
  };
}
