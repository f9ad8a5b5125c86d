import { App, ExpressReceiver, LogLevel, SocketModeReceiver, type Logger } from '@slack/bolt';
import type express from 'express';
import PQueue from 'p-queue';
import type { ActionId } from '../blocks/actions.ts';
import type { DialogId } from '../blocks/dialogs.ts';
import type { SlackSettings } from '../config.ts';
import type { Engine } from '../engine/engine.ts';
import type { Outbox } from '../engine/outbox.ts';
import { log } from '../log.ts';
import type { UnverifiedBodyBudget } from '../http/unverified-body-budget.ts';
import type { SlackDeps } from './context.ts';
import { guardSlackRequests } from './guard-slack-requests.ts';
import { register as registerApprove } from './listeners/actions/approve.ts';
import { register as registerCiRerun } from './listeners/actions/ci-rerun.ts';
import { register as registerReject } from './listeners/actions/reject.ts';
import { register as registerPromoteDialog } from './listeners/views/promote-dialog.ts';
import { register as registerRejectDialog } from './listeners/views/reject-dialog.ts';
import { register as registerOutput } from './listeners/actions/output.ts';
import { register as registerPromote } from './listeners/actions/promote.ts';
import { register as registerRerelease } from './listeners/actions/rerelease.ts';
import { register as registerRestart } from './listeners/actions/restart.ts';
import { register as registerRetry } from './listeners/actions/retry.ts';
import { register as registerRollback } from './listeners/actions/rollback.ts';
import { register as registerUnlock } from './listeners/actions/unlock.ts';
import { register as registerExtend } from './listeners/actions/extend.ts';
import { register as registerFlow } from './listeners/commands/flow.ts';
import { register as registerAppHome } from './listeners/events/app-home-opened.ts';
import { register as registerHomePick } from './listeners/actions/home-pick.ts';
import { HomePublisher } from './home.ts';
import { SlackNotifier } from './notifier.ts';
import { SlackApi } from './slack-api.ts';

const boltLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (...msg: unknown[]) => log.warn({ bolt: msg.map(String).join(' ') }, 'bolt'),
  error: (...msg: unknown[]) => log.error({ bolt: msg.map(String).join(' ') }, 'bolt'),
  setLevel: () => undefined,
  getLevel: () => LogLevel.WARN,
  setName: () => undefined,
};

/** One listener per button the builders can make: a new action id in src/blocks/actions.ts does not compile until it has one. */
const buttonListeners: Record<ActionId, (app: App, deps: SlackDeps) => void> = {
  promote: registerPromote,
  rollback: registerRollback,
  rerelease: registerRerelease,
  unlock: registerUnlock,
  extend: registerExtend,
  restart: registerRestart,
  retry: registerRetry,
  ci_rerun: registerCiRerun,
  output: registerOutput,
  approve: registerApprove,
  reject: registerReject,
};

/** One listener per dialog the builders can open (src/blocks/dialogs.ts). */
const dialogListeners: Record<DialogId, (app: App, deps: SlackDeps) => void> = {
  promote_dialog: registerPromoteDialog,
  reject_request: registerRejectDialog,
};

export interface SlackFront {
  app: App;
  notifier: SlackNotifier;
  api: SlackApi;
  start(): Promise<void>;
  /** Resolves once listeners' work and deliveries are done (tests, benchmarks). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The Slack app, in the same process as the engine. HTTP mode mounts Bolt's
 * routes (`/slack/events`: commands, interactivity, events) on flowops' own HTTP
 * server, behind a guard that verifies every request's signature and timestamp
 * and lets a replayed request through once; Socket Mode connects out with the
 * app token instead.
 */
export function createSlackFront(
  engine: Engine,
  outbox: Outbox,
  settings: SlackSettings,
  http: express.Express,
  unverifiedBodies: UnverifiedBodyBudget,
  /** GitHub's web address, for links in messages. */
  githubWebUrl: string | null,
): SlackFront {
  const api = new SlackApi(settings.botToken, settings.apiUrl);
  const clientOptions = { slackApiUrl: settings.apiUrl };
  // Registered before Bolt's receiver mounts its router, so it runs first.
  if (settings.mode === 'http')
    http.post(
      '/slack/events',
      guardSlackRequests({ signingSecret: settings.signingSecret!, budget: unverifiedBodies, seen: engine.seenRequests }),
    );
  const receiver =
    settings.mode === 'socket'
      ? new SocketModeReceiver({ appToken: settings.appToken!, logger: boltLogger, installerOptions: { clientOptions } })
      : new ExpressReceiver({
          signingSecret: settings.signingSecret!,
          endpoints: '/slack/events',
          app: http,
          logger: boltLogger,
          // Whether this delivery is the first (guardSlackRequests): listeners' work waits for it after the ack.
          customPropertiesExtractor: (req) => ({
            firstDelivery: (req as { firstDelivery?: Promise<boolean> }).firstDelivery ?? Promise.resolve(true),
          }),
        });
  // Bolt would call auth.test before the first listener runs, so a slow Slack would hold up an ack.
  // Authorization answers from what is known instead; the bot's ids arrive when auth.test does.
  let identity: { botId?: string; botUserId?: string } = {};
  const app = new App({
    authorize: async () => ({ botToken: settings.botToken, ...identity }),
    receiver,
    logger: boltLogger,
    clientOptions,
  });
  const notifier = new SlackNotifier(engine, api, outbox, githubWebUrl);
  const home: SlackDeps['home'] = {};
  const homes = new HomePublisher({ engine, api, settings, home }, outbox, engine);
  const deps: SlackDeps = { engine, api, notifier, homes, settings, home, work: new PQueue({ concurrency: 4 }) };
  registerFlow(app, deps);
  for (const register of Object.values(buttonListeners)) register(app, deps);
  for (const register of Object.values(dialogListeners)) register(app, deps);
  registerAppHome(app, deps);
  registerHomePick(app, deps);
  app.error(async (err) => {
    log.error({ err }, 'slack listener failed');
  });

  return {
    app,
    notifier,
    api,
    async start() {
      // The token is checked in the background: a slow or unreachable Slack never holds up start-up.
      void api
        .call((web) => web.auth.test())
        .then((who) => {
          identity = { botId: who.bot_id, botUserId: who.user_id };
          deps.home.team = who.team_id;
        })
        .catch((err: unknown) =>
          log.error({ err: String(err) }, 'Slack refused SLACK_BOT_TOKEN or cannot be reached; check the token in "OAuth & Permissions"'),
        );
      if (settings.mode === 'socket') await app.start();
      notifier.start();
      homes.start();
    },
    async idle() {
      await deps.work.onIdle();
      await notifier.idle();
      await homes.idle();
    },
    async stop() {
      await deps.work.onIdle();
      await notifier.stop();
      await homes.stop();
      if (settings.mode === 'socket') await app.stop();
    },
  };
}
