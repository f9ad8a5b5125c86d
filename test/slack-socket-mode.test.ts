import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeSlack } from './helpers/fake-slack.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

describe('the Slack app in Socket Mode', () => {
  let slack: FakeSlack;
  let t: TestServer;

  beforeAll(async () => {
    slack = await FakeSlack.start({ socketMode: true });
    t = await startTestServer({
      env: { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_APP_TOKEN: 'xapp-1-test', SLACK_API_URL: slack.apiUrl, FLOW_SLACK_ADMINS: 'UADMIN' },
    });
  });
  afterAll(async () => {
    await t.close();
    await slack.close();
  });

  it('connects with the app token and answers a slash command sent over the socket', async () => {
    expect(slack.callsOf('apps.connections.open')).toHaveLength(1);
    expect(slack.sockets).toHaveLength(1);
    const socket = slack.sockets[0]!;
    const acks: { envelope_id: string }[] = [];
    socket.on('message', (data) => acks.push(JSON.parse(String(data)) as { envelope_id: string }));

    socket.send(
      JSON.stringify({
        envelope_id: 'env-1',
        type: 'slash_commands',
        accepts_response_payload: true,
        payload: {
          token: 'x',
          team_id: 'T1',
          channel_id: 'C1',
          user_id: 'UADMIN',
          user_name: 'ada',
          command: '/flow',
          text: 'help promote',
          api_app_id: 'A1',
          response_url: slack.responseUrl('socket'),
          trigger_id: '1',
        },
      }),
    );

    await slack.waitFor(() => acks.find((a) => a.envelope_id === 'env-1'), 'the ack over the socket');
    const reply = await slack.waitFor(() => slack.responses.find((r) => r.id === 'socket') as { text: string } | undefined, 'the answer');
    // As Slack must receive it: escaped, or Slack would read <pipeline> as a link.
    expect(reply.text).toContain('promote &lt;pipeline&gt; [from &lt;stage&gt;[/&lt;app&gt;]]');
    expect((await t.server.database.dataSource.query("SELECT admin FROM users WHERE external_id = 'slack:T1:UADMIN'"))[0]).toEqual({
      admin: true,
    });
  });
});
