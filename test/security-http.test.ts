import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSettings } from '../src/config.ts';
import { deliver, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { FakeSlack, postToSlackEndpoint, slackSignature, slashCommand } from './helpers/fake-slack.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const GITHUB_SECRET = 'github-webhook-secret-for-tests';
const SLACK_SECRET = 'slack-signing-secret-for-tests';
const MB = 2 ** 20;

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A POST sent as an attacker sends it, with node:http: the headers (declaring
 * whatever Content-Length), then only `first` bytes of the body. It resolves
 * with the answer if one comes while the rest of the body has not been sent;
 * `send` writes more, `hangUp` ends the connection.
 */
function openPost(port: number, path: string, headers: Record<string, string | number>, first = '') {
  const req = http.request({ port, host: '127.0.0.1', method: 'POST', path, headers });
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  if (first) req.write(first);
  return {
    answer,
    async send(bytes: number): Promise<void> {
      const chunk = Buffer.alloc(MB, 0x61);
      for (let sent = 0; sent < bytes; sent += MB) {
        if (!req.write(bytes - sent >= MB ? chunk : chunk.subarray(0, bytes - sent)))
          await new Promise((resolve) => req.once('drain', resolve));
      }
    },
    end: () => req.end(),
    hangUp: () => req.destroy(),
  };
}

const errorOf = (answer: { body: string }) => (JSON.parse(answer.body) as { error: { code: string; message: string } }).error;

async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('GitHub webhooks: what GitHub would never send is refused, cheaply, with nothing recorded', () => {
  let t: TestServer;
  const deliveries = async (): Promise<string[]> =>
    ((await t.server.database.dataSource.query('SELECT id FROM github_deliveries ORDER BY id')) as { id: string }[]).map((r) => r.id);
  const githubHeaders = (id: string, extra: Record<string, string | number> = {}) => ({
    'content-type': 'application/json',
    'x-github-event': 'push',
    'x-github-delivery': id,
    'x-hub-signature-256': `sha256=${'0'.repeat(64)}`,
    ...extra,
  });
  const signedPush = () => {
    const push = webhookExample('push', (e) => typeof e.ref === 'string' && e.ref.startsWith('refs/heads/') && !e.deleted);
    (push.repository as { full_name: string }).full_name = 'acme/nothing-connected';
    return push;
  };

  beforeAll(async () => {
    t = await startTestServer({ env: { GITHUB_WEBHOOK_SECRET: GITHUB_SECRET } });
  });
  afterAll(() => t.close());

  it.each([
    ['X-Hub-Signature-256', { 'x-hub-signature-256': undefined }],
    ['X-GitHub-Delivery', { 'x-github-delivery': undefined }],
    ['X-GitHub-Event', { 'x-github-event': undefined }],
  ])('refuses a delivery without %s before reading its body', async (_header, without) => {
    const headers = Object.fromEntries(
      Object.entries({ ...githubHeaders('unsigned-1', { 'content-length': 100 * MB }), ...without }).filter(([, v]) => v !== undefined),
    ) as Record<string, string>;

    const post = openPost(t.server.port, '/github/webhooks', headers, '{"ref":');
    const answer = await post.answer;
    post.hangUp();

    expect(answer.status).toBe(400);
    expect(errorOf(answer).message).toBe(
      'a GitHub delivery needs X-GitHub-Delivery, X-GitHub-Event and X-Hub-Signature-256 headers and a JSON body',
    );
    expect(answer.headers.connection).toBe('close');
    expect(await deliveries()).toEqual([]);
  });

  it("refuses a delivery over GitHub's 25 MB cap before reading it, naming the limit", async () => {
    const post = openPost(t.server.port, '/github/webhooks', githubHeaders('huge-1', { 'content-length': 25 * MB + 1 }), '{"ref":');
    const answer = await post.answer;
    post.hangUp();

    expect(answer.status).toBe(413);
    expect(errorOf(answer)).toEqual({ code: 'payload_too_large', message: 'the request body is over the 25 MB limit' });
    expect(await deliveries()).toEqual([]);
  });

  it('refuses a chunked body (no Content-Length) as soon as it passes 25 MB', async () => {
    const post = openPost(t.server.port, '/github/webhooks', githubHeaders('chunked-1', { 'transfer-encoding': 'chunked' }));

    await post.send(25 * MB + 1);
    const answer = await post.answer;
    post.hangUp();

    expect(answer.status).toBe(413);
    expect(errorOf(answer).message).toBe('the request body is over the 25 MB limit');
    expect(await deliveries()).toEqual([]);
  });

  it('refuses a body that is not application/json before reading it, and says what to set on GitHub', async () => {
    const post = openPost(
      t.server.port,
      '/github/webhooks',
      githubHeaders('form-1', { 'content-type': 'application/x-www-form-urlencoded', 'content-length': 10 * MB }),
      'payload=',
    );
    const answer = await post.answer;
    post.hangUp();

    expect(answer.status).toBe(400);
    expect(errorOf(answer).message).toBe(
      'the body must be application/json: set the webhook\'s content type to "application/json" on GitHub',
    );
  });

  it('refuses forged posts at once past the budget of unverified bytes, and still takes a signed delivery meanwhile', async () => {
    // 20 posts that look signed, each declaring 24 MB: the default budget (100 MB) holds four of them.
    const forged = Array.from({ length: 20 }, (_, i) =>
      openPost(t.server.port, '/github/webhooks', githubHeaders(`forged-${i}`, { 'content-length': 24 * MB })),
    );
    const answered = new Map<number, RawAnswer>();
    forged.forEach((post, i) => void post.answer.then((a) => answered.set(i, a)));
    await waitFor(() => answered.size === 16, 'the posts past the budget to be refused');
    const refusals = [...answered.values()];

    expect(refusals.map((a) => a.status)).toEqual(Array(16).fill(503));
    expect(refusals[0]!.headers['retry-after']).toBe('10');
    expect(errorOf(refusals[0]!)).toEqual({
      code: 'unavailable',
      message: 'too many unverified request bodies are arriving at once (over 100 MB); try again in 10 s',
    });
    expect(t.server.unverifiedBodies.inFlight).toBe(4 * 24 * MB);

    const body = JSON.stringify(signedPush());
    const meanwhile = await deliver(t.server.url, 'push', 'legit-during-attack', body, githubSignature(GITHUB_SECRET, body));

    expect(meanwhile.status).toBe(202);
    const admitted = forged.filter((_, i) => !answered.has(i));
    expect(admitted).toHaveLength(4);
    const refused = await Promise.all(
      admitted.map(async (post) => {
        await post.send(24 * MB);
        post.end();
        return post.answer;
      }),
    );
    expect(refused.map((a) => [a.status, errorOf(a).message])).toEqual(Array(4).fill([401, 'signature does not match']));
    expect(t.server.unverifiedBodies.inFlight).toBe(0);
    expect(await deliveries()).toEqual(['legit-during-attack']);
  });

  it('gives the budget back when a sender hangs up part-way through a body', async () => {
    const posts = Array.from({ length: 4 }, (_, i) =>
      openPost(t.server.port, '/github/webhooks', githubHeaders(`hangup-${i}`, { 'content-length': 24 * MB }), '{"ref":'),
    );
    await waitFor(() => t.server.unverifiedBodies.inFlight === 4 * 24 * MB, 'the four bodies to be reserved');

    for (const post of posts) {
      post.answer.catch(() => undefined);
      post.hangUp();
    }

    await waitFor(() => t.server.unverifiedBodies.inFlight === 0, 'the budget to be given back');
    const body = JSON.stringify(signedPush());
    expect((await deliver(t.server.url, 'push', 'legit-after-hangups', body, githubSignature(GITHUB_SECRET, body))).status).toBe(202);
  });

  const pushExample = signedPush();
  const prExample = webhookExample('pull_request', (e) => e.action === 'opened');
  it.each([
    ['a body that is not JSON', 'push', '{"ref":', 'the body is not JSON'],
    ['null', 'push', 'null', "a push delivery's body must be a JSON object"],
    ['an array', 'push', '[]', "a push delivery's body must be a JSON object"],
    [
      '{} for a push',
      'push',
      '{}',
      'this is not a push delivery as GitHub sends it: ref: Invalid input: expected string, received undefined',
    ],
    [
      'a push whose after is no sha',
      'push',
      JSON.stringify({ ...pushExample, after: '../../user' }),
      'this is not a push delivery as GitHub sends it: after: must be a commit sha (40 hex digits)',
    ],
    [
      'a push whose ref holds a NUL',
      'push',
      JSON.stringify({ ...pushExample, ref: 'refs/heads/ma\u0000in' }),
      'this is not a push delivery as GitHub sends it: ref: must be a git ref name',
    ],
    [
      'a push whose repository is a number',
      'push',
      JSON.stringify({ ...pushExample, repository: 7 }),
      'this is not a push delivery as GitHub sends it: repository: Invalid input: expected object, received number',
    ],
    [
      'pull_request: {}',
      'pull_request',
      JSON.stringify({ ...prExample, pull_request: {} }),
      'this is not a pull_request delivery as GitHub sends it: pull_request.title: Invalid input: expected string, received undefined',
    ],
    [
      'a pull request number that is a string',
      'pull_request',
      JSON.stringify({ ...prExample, number: '2' }),
      'this is not a pull_request delivery as GitHub sends it: number: Invalid input: expected number, received string',
    ],
    [
      'a pull request number past any integer',
      'pull_request',
      JSON.stringify({ ...prExample, number: 1e30 }),
      'this is not a pull_request delivery as GitHub sends it: number: Too big: expected number to be <=2147483647',
    ],
    [
      'a ping whose repository has no name',
      'ping',
      JSON.stringify({ zen: 'hi', repository: {} }),
      'this is not a ping delivery as GitHub sends it: repository.full_name: Invalid input: expected string, received undefined',
    ],
  ])(
    'answers a correctly signed but malformed delivery (%s) with 400, records nothing, and takes its redelivery once fixed',
    async (what, event, body, message) => {
      const id = `malformed-${what.replace(/[^a-z]+/g, '-')}`;

      const res = await deliver(t.server.url, event, id, body, githubSignature(GITHUB_SECRET, body));

      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe(message);
      expect(await deliveries()).not.toContain(id);
      const fixed = JSON.stringify(
        event === 'pull_request'
          ? { ...prExample, repository: { ...(prExample.repository as object), full_name: 'acme/nothing-connected' } }
          : event === 'ping'
            ? { zen: 'Keep it logically awesome.' }
            : signedPush(),
      );
      const redelivered = await deliver(t.server.url, event, id, fixed, githubSignature(GITHUB_SECRET, fixed));
      expect(redelivered.status).toBe(202);
      expect(await deliveries()).toContain(id);
    },
  );
});

describe('FLOW_UNVERIFIED_BODIES_MB, the budget of unverified bytes', () => {
  it('is 100 MB unless set', () => {
    expect(readSettings({}).unverifiedBodyBytes).toBe(100 * MB);
    expect(readSettings({ FLOW_UNVERIFIED_BODIES_MB: '300' }).unverifiedBodyBytes).toBe(300 * MB);
  });

  it.each(['10', 'lots'])('stops start-up on "%s" with one line naming it', (value) => {
    expect(() => readSettings({ FLOW_UNVERIFIED_BODIES_MB: value })).toThrow(
      `FLOW_UNVERIFIED_BODIES_MB must be a whole number of megabytes, at least 25 (GitHub's largest delivery), got "${value}"; set FLOW_UNVERIFIED_BODIES_MB=100 or unset it`,
    );
  });
});

describe('Slack over HTTP: a request from the future is refused, a replay runs once', () => {
  let slack: FakeSlack;
  let t: TestServer;
  let n = 0;
  const form = 'application/x-www-form-urlencoded';
  const now = () => Math.floor(Date.now() / 1000);
  const answersTo = (id: string) => slack.responses.filter((r) => r.id === id);
  /** A signed `/flow help` whose answer goes to its own response_url. */
  const help = () => {
    const id = `help-${n++}`;
    return {
      id,
      body: slashCommand({ text: 'help', user: 'UADMIN', userName: 'ada', channel: 'CDEPLOY', responseUrl: slack.responseUrl(id) }),
    };
  };
  const homeOpened = (user: string, eventId: string) =>
    JSON.stringify({
      token: 'x',
      team_id: 'T1',
      api_app_id: 'A1',
      type: 'event_callback',
      event_id: eventId,
      event_time: now(),
      event: { type: 'app_home_opened', user, channel: 'D1', tab: 'home', event_ts: '1.1' },
    });
  const publishedTo = (user: string) => slack.callsOf('views.publish').filter((c) => c.args.user_id === user);

  beforeAll(async () => {
    slack = await FakeSlack.start();
    t = await startTestServer({
      env: { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_API_URL: slack.apiUrl, FLOW_SLACK_ADMINS: 'UADMIN' },
    });
  });
  afterAll(async () => {
    await t.close();
    await slack.close();
  });

  it('refuses a correctly signed request timestamped more than 5 minutes in the future, and does nothing', async () => {
    const { id, body } = help();

    const res = await postToSlackEndpoint(t.server.url, body, { secret: SLACK_SECRET, contentType: form, timestamp: now() + 6 * 60 });
    await t.server.slack!.idle();

    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      'the request timestamp is more than 5 minutes away from now',
    );
    expect(answersTo(id)).toEqual([]);
  });

  it('refuses a request from the future, or without a signature, before reading its body', async () => {
    const future = openPost(
      t.server.port,
      '/slack/events',
      {
        'content-type': form,
        'content-length': 3 * MB,
        'x-slack-request-timestamp': now() + 3600,
        'x-slack-signature': `v0=${'0'.repeat(64)}`,
      },
      'token=',
    );
    const unsigned = openPost(
      t.server.port,
      '/slack/events',
      { 'content-type': form, 'content-length': 3 * MB, 'x-slack-request-timestamp': now() },
      'token=',
    );

    const answers = await Promise.all([future.answer, unsigned.answer]);
    future.hangUp();
    unsigned.hangUp();

    expect(answers.map((a) => [a.status, errorOf(a).message])).toEqual([
      [401, 'the request timestamp is more than 5 minutes away from now'],
      [401, 'a Slack request needs X-Slack-Request-Timestamp and a v0 X-Slack-Signature'],
    ]);
  });

  it('still accepts a request a little in the future (clocks differ by seconds)', async () => {
    const { id, body } = help();

    const res = await postToSlackEndpoint(t.server.url, body, { secret: SLACK_SECRET, contentType: form, timestamp: now() + 60 });

    expect(res.status).toBe(200);
    expect((await slack.waitFor(() => answersTo(id)[0], 'the answer')).text).toContain('flowops commands');
  });

  it('runs the same signed slash command once when it arrives twice, even at the same moment', async () => {
    const { id, body } = help();
    const timestamp = now();
    const signature = slackSignature(SLACK_SECRET, timestamp, body);

    const [first, replay] = await Promise.all([
      postToSlackEndpoint(t.server.url, body, { secret: SLACK_SECRET, contentType: form, timestamp, signature }),
      postToSlackEndpoint(t.server.url, body, { secret: SLACK_SECRET, contentType: form, timestamp, signature }),
    ]);
    const later = await postToSlackEndpoint(t.server.url, body, { secret: SLACK_SECRET, contentType: form, timestamp, signature });
    await slack.waitFor(() => answersTo(id)[0], 'the answer');
    await t.server.slack!.idle();

    expect([first.status, replay.status, later.status]).toEqual([200, 200, 200]);
    expect(answersTo(id)).toHaveLength(1);
  });

  it('runs an event once when Slack retries it (X-Slack-Retry-Num, same event_id, new timestamp)', async () => {
    const event = homeOpened('URETRY', 'Ev0RETRY');
    await postToSlackEndpoint(t.server.url, event, { secret: SLACK_SECRET, contentType: 'application/json' });
    await slack.waitFor(() => publishedTo('URETRY')[0], 'the first home view');

    const timestamp = now() + 1;
    const retry = await fetch(`${t.server.url}/slack/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': slackSignature(SLACK_SECRET, timestamp, event),
        'x-slack-retry-num': '1',
        'x-slack-retry-reason': 'http_timeout',
      },
      body: event,
    });
    // Another event after the retry: once its view is published, a second run of the retry would have been queued too.
    await postToSlackEndpoint(t.server.url, homeOpened('UOTHER', 'Ev0OTHER'), { secret: SLACK_SECRET, contentType: 'application/json' });
    await slack.waitFor(() => publishedTo('UOTHER')[0], 'the other home view');
    await t.server.slack!.idle();

    expect(retry.status).toBe(200);
    expect(retry.headers.get('x-slack-no-retry')).toBe('1');
    expect(publishedTo('URETRY')).toHaveLength(1);
  });

  it.runIf(process.env.DATABASE_URL)('runs a request replayed to another flowops process on the same Postgres once', async () => {
    const other = await startTestServer({
      sharedDatabaseUrl: t.databaseUrl,
      env: { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_API_URL: slack.apiUrl, FLOW_SLACK_ADMINS: 'UADMIN' },
    });
    try {
      const { id, body } = help();
      const timestamp = now();
      const signature = slackSignature(SLACK_SECRET, timestamp, body);

      const answers = await Promise.all(
        [t, other].map((s) => postToSlackEndpoint(s.server.url, body, { secret: SLACK_SECRET, contentType: form, timestamp, signature })),
      );
      await slack.waitFor(() => answersTo(id)[0], 'the answer');
      await Promise.all([t.server.slack!.idle(), other.server.slack!.idle()]);

      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      expect(answersTo(id)).toHaveLength(1);
    } finally {
      await other.close();
    }
  });
});

describe('the API: bad input is a 4xx that says what, never a 500, and changes nothing', () => {
  let t: TestServer;
  const counts = async () =>
    (
      await t.server.database.dataSource.query(
        'SELECT (SELECT count(*) FROM operations)::int AS operations, (SELECT count(*) FROM events)::int AS events',
      )
    )[0] as { operations: number; events: number };
  const get = (path: string, token = t.server.admin.token) =>
    fetch(`${t.server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${t.server.url}/api/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.server.admin.token}`, ...headers },
      body,
    });
  const messageOf = async (res: Response) => ((await res.json()) as { error: { message: string } }).error.message;

  beforeAll(async () => {
    t = await startTestServer();
    await t.cli(['pipelines:create', 'shop', '--repo', t.dir]);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
  });
  afterAll(() => t.close());

  it.each([
    ['/api/operations/99999999999999999999', 404, 'no operation 99999999999999999999'],
    ['/api/operations/2147483648', 404, 'no operation 2147483648'],
    ['/api/operations/0', 404, 'no operation 0'],
    ['/api/operations/1e30', 400, 'operation ids are whole numbers, like 12; got "1e30"'],
    ['/api/operations/-1', 400, 'operation ids are whole numbers, like 12; got "-1"'],
    ['/api/operations/0x10', 400, 'operation ids are whole numbers, like 12; got "0x10"'],
    ['/api/operations/%E0%A4%A', 400, 'the request is malformed (a %-escape in the URL, or the body)'],
    ['/api/operations/1?after=99999999999999999999', 400, '?after= takes the id of the last event seen, a whole number'],
    ['/api/operations/1?after=1&after=2', 400, '?after= takes the id of the last event seen, a whole number'],
    ['/api/operations/1?after=-5', 400, '?after= takes the id of the last event seen, a whole number'],
  ])('answers GET %s with %i', async (path, status, message) => {
    const res = await get(path);

    expect(res.status).toBe(status);
    expect(await messageOf(res)).toBe(message);
  });

  it('refuses an API body over 1 MB with 413, naming the limit', async () => {
    const before = await counts();

    const res = await post(JSON.stringify({ argv: ['config:set', 'shop-staging', `BIG=${'x'.repeat(MB)}`] }));

    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: { code: 'payload_too_large', message: 'the request body is over the 1 MB limit of /api' } });
    expect(await counts()).toEqual(before);
  });

  it('refuses a request without a valid token before reading its body', async () => {
    const sent = openPost(
      t.server.port,
      '/api/commands',
      { 'content-type': 'application/json', 'content-length': 50 * MB, authorization: 'Bearer flo_wrong' },
      '{"argv":',
    );
    const answer = await sent.answer;
    sent.hangUp();

    expect(answer.status).toBe(401);
    expect(errorOf(answer).message).toContain('this token is not valid');
  });

  it.each([
    ['JSON that does not parse', '{"argv": [', {}, 'the request body is not valid JSON'],
    ['null', 'null', {}, 'the request body is not valid JSON'],
    ['a JSON string', '"pipelines"', {}, 'the request body is not valid JSON'],
    [
      'a body that is not JSON at all',
      'argv=pipelines',
      { 'content-type': 'application/x-www-form-urlencoded' },
      'the request body must be {"argv": ["command", "word", ...]} (Content-Type: application/json), at most 200 words of at most 64 KB',
    ],
    [
      'argv holding a number',
      '{"argv": ["releases", 7]}',
      {},
      'the request body must be {"argv": ["command", "word", ...]} (Content-Type: application/json), at most 200 words of at most 64 KB',
    ],
    [
      'a NUL character (a JSON \\u0000 escape) in a word',
      '{"argv": ["config:set", "shop-staging", "A=x\\u0000y"]}',
      {},
      'the value of A contains a control character (U+0000 at character 2): config values may hold tabs and line breaks, but never NUL or other control characters',
    ],
    [
      'an unpaired surrogate (a JSON \\ud800 escape) in a word',
      '{"argv": ["config:set", "shop-staging", "A=\\ud800"]}',
      {},
      'the value of A is not valid Unicode (a lone surrogate, U+D800 at character 1); set it again',
    ],
    [
      'a charset other than UTF-8',
      '{"argv": ["pipelines"]}',
      { 'content-type': 'application/json; charset=koi8-r' },
      'the request body must be JSON in UTF-8, uncompressed or gzip/deflate',
    ],
    [
      'a Content-Encoding that is not supported',
      '{"argv": ["pipelines"]}',
      { 'content-encoding': 'x-snappy' },
      'the request body must be JSON in UTF-8, uncompressed or gzip/deflate',
    ],
    [
      'a gzip body that is not gzip',
      '{"argv": ["pipelines"]}',
      { 'content-encoding': 'gzip' },
      'the request is malformed (a %-escape in the URL, or the body)',
    ],
  ])('answers a command with %s with 400, and changes nothing', async (_what, body, headers, message) => {
    const before = await counts();

    const res = await post(body, headers);

    expect(res.status).toBe(400);
    expect(await messageOf(res)).toBe(message);
    expect(await counts()).toEqual(before);
  });
});
