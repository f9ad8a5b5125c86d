import { LogLevel, WebClient, type Logger } from '@slack/web-api';
import PQueue from 'p-queue';
import { log } from '../log.ts';

const quiet: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (...msg: unknown[]) => log.warn({ slack: msg.join(' ') }, 'slack web api'),
  error: (...msg: unknown[]) => log.error({ slack: msg.join(' ') }, 'slack web api'),
  setLevel: () => undefined,
  getLevel: () => LogLevel.WARN,
  setName: () => undefined,
};

/**
 * Slack's Web API behind one queue: a few calls at a time, and on a rate limit
 * the client waits for Retry-After and tries again (so does it on a server
 * error), off the path of any ack.
 */
export class SlackApi {
  readonly web: WebClient;
  private readonly queue = new PQueue({ concurrency: 4 });

  constructor(token: string, apiUrl: string | undefined) {
    this.web = new WebClient(token, {
      slackApiUrl: apiUrl,
      logger: quiet,
      rejectRateLimitedCalls: false,
      retryConfig: { retries: 5, factor: 2, minTimeout: 100, maxTimeout: 5000 },
    });
  }

  call<T>(work: (web: WebClient) => Promise<T>): Promise<T> {
    return this.queue.add(() => work(this.web));
  }

  idle(): Promise<void> {
    return this.queue.onIdle();
  }
}
