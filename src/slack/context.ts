import type PQueue from 'p-queue';
import { log } from '../log.ts';
import type { SlackSettings } from '../config.ts';
import type { Actor } from '../engine/access.ts';
import type { Engine } from '../engine/engine.ts';
import type { HomePublisher } from './home.ts';
import type { SlackNotifier } from './notifier.ts';
import type { SlackApi } from './slack-api.ts';

/** What every listener needs. */
export interface SlackDeps {
  engine: Engine;
  api: SlackApi;
  notifier: SlackNotifier;
  /** Publishes App Homes, and again when what they show changes. */
  homes: HomePublisher;
  settings: SlackSettings;
  /** This app's own workspace, from auth.test (unknown until it answers). */
  home: { team?: string };
  /**
   * The work listeners do after their ack. Bounded, so a burst of commands
   * cannot crowd acks off the event loop (the embedded database runs on it too).
   */
  work: PQueue;
}

/** The flowops user behind a Slack user (team + user id), created on first contact with no grants. */
export function slackActor(deps: SlackDeps, team: string | undefined, user: string, name?: string): Promise<Actor> {
  return deps.engine.externalUser({
    externalId: `slack:${team ?? '-'}:${user}`,
    name: name || user.toLowerCase(),
    admin: deps.settings.admins.includes(user),
    via: 'slack',
    // Someone of another workspace (a Slack Connect channel), or before auth.test said which is ours: no access:default.
    guest: !deps.home.team || team !== deps.home.team,
  });
}

/** Slack user ids of the named flowops users who came from this workspace, for mentions. */
export async function slackPeople(deps: SlackDeps, team: string | undefined, names: string[]): Promise<Record<string, string>> {
  const people: Record<string, string> = {};
  for (const [name, externalId] of Object.entries(await deps.engine.externalIds(names))) {
    const match = /^slack:([^:]*):([UW][A-Z0-9]+)$/.exec(externalId);
    if (match && match[1] === (team ?? '-')) people[name] = match[2]!;
  }
  return people;
}

/**
 * Turns Slack's forms into the CLI's words: a user mention `<@U123|alice>` becomes
 * that person's flowops user name (the user is created if new), a channel
 * `<#C123|feed>` becomes `--channel C123`.
 */
export async function slackWords(deps: SlackDeps, team: string | undefined, words: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const word of words) {
    const user = /^<@([UW][A-Z0-9]+)(?:\|([^>]*))?>$/.exec(word);
    const channel = /^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$/.exec(word);
    if (user) out.push((await slackActor(deps, team, user[1]!, user[2])).name);
    else if (channel) out.push('--channel', channel[1]!);
    else out.push(word);
  }
  return out;
}

/**
 * Queues a listener's work after its ack, unless this delivery was taken before
 * (a replayed request, or another process got it first): guardSlackRequests
 * records the delivery while Bolt acks, and the work waits for that answer, so
 * the ack never waits for the database.
 */
export function afterAck(deps: SlackDeps, context: Record<string, unknown>, work: () => Promise<void>): void {
  void deps.work.add(async () => {
    const first = context.firstDelivery as Promise<boolean> | undefined;
    if (first && !(await first.catch(() => true))) {
      log.info({}, 'Slack request already taken; this repeat does nothing');
      return;
    }
    await work();
  });
}
