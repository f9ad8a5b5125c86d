import { SubscriptionEntity } from '../db/entities.ts';
import { type Actor } from './access.ts';
import { InvalidInput, NotFound } from '../errors.ts';
import type { EngineContext } from './context.ts';
import type { Access } from './access-control.ts';
import type { Pipelines } from './pipelines.ts';
import { FEED_EVENTS, FEED_OPT_INS, type FeedOptIn } from './feed-kinds.ts';
import { subjectKey } from './subjects.ts';
import type { ApprovalView, OperationView } from './views.ts';

/** A Slack channel id (public, private, direct): what a feed is kept by. */
const CHANNEL = /^[CGD][A-Z0-9]{2,20}$/;

export { FEED_EVENTS, FEED_OPT_INS, type FeedOptIn } from './feed-kinds.ts';

/**
 * Which feed a one-off line of an event goes to. Only for events no message
 * follows: test runs, pull requests and pushes have their own (src/engine/cards.ts).
 */
export function feedKindOf(type: string): (typeof FEED_EVENTS)[number] | null {
  if (type === 'github.status_refused') return 'ci';
  if (/^lock\.(added|removed|expired|overridden)$/.test(type)) return 'deploy';
  if (type === 'approval.bypassed' || type === 'approvals.required' || type === 'approvals.disabled') return 'deploy';
  if (type === 'github.deployment_refused') return 'deploy';
  if (type === 'dyno.crashed' || type === 'formation.changed') return 'deploy';
  return null;
}

/** The opt-ins asked for, each known. */
function checkOptIns(optIns: string[]): FeedOptIn[] {
  const unknown = optIns.filter((o) => !(FEED_OPT_INS as readonly string[]).includes(o));
  if (unknown.length) throw new InvalidInput(`${unknown.join(', ')}: a feed can ask for ${FEED_OPT_INS.join(', ')}`);
  return [...new Set(optIns)] as FeedOptIn[];
}

/** A feed is a Slack channel, named by its id (in Slack, a #channel mention becomes one). */
function assertChannel(channel: string): void {
  if (!CHANNEL.test(channel))
    throw new InvalidInput(
      `"${channel.slice(0, 60)}" is not a Slack channel id (like C0123ABCD): give --channel the channel's id, or in Slack mention the #channel`,
    );
}
/** A pipeline's feeds: the channels that follow it, and the messages that track an operation. */
export class Feeds {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly pipelines: Pipelines,
  ) {}

  /**
   * Makes `channel` a feed of the pipeline for the given operation kinds (all
   * when none), with the opt-ins asked for (`nudges`). A feed that exists keeps
   * its opt-ins; asked for an opt-in only, it also keeps its events.
   */
  async subscribe(
    actor: Actor,
    pipelineName: string,
    channel: string,
    events: string[],
    options: { optIns?: string[] } = {},
  ): Promise<{ pipeline: string; channel: string; events: string[]; optIns: string[] }> {
    const pipeline = await this.authz.authorize(actor, pipelineName, 'operate', `subscribe ${pipelineName}`);
    assertChannel(channel);
    const unknown = events.filter((e) => !(FEED_EVENTS as readonly string[]).includes(e));
    if (unknown.length)
      throw new InvalidInput(
        `${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not a feed event: use ${FEED_EVENTS.join(', ')}, or none for all`,
      );
    const asked = checkOptIns(options.optIns ?? []);
    return this.ctx.transaction(async (m) => {
      const before = await m.findOneBy(SubscriptionEntity, { pipelineId: pipeline.id, channel });
      const chosen = events.length ? [...new Set(events)] : before && asked.length ? before.events : [...FEED_EVENTS];
      const optIns = [...new Set([...(before?.optIns ?? []), ...asked])];
      await m.upsert(SubscriptionEntity, { pipelineId: pipeline.id, channel, events: chosen, optIns }, ['pipelineId', 'channel']);
      await this.ctx.emit(m, {
        type: 'subscription.added',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} made ${channel} a feed of ${pipeline.name}${optIns.length ? ` (with ${optIns.join(', ')})` : ''}`,
        data: { channel, events: chosen, optIns },
      });
      return { pipeline: pipeline.name, channel, events: chosen, optIns };
    });
  }

  /** Stops the channel's feed of the pipeline; with opt-ins (`--nudges`), only those, and the feed stays. */
  async unsubscribe(
    actor: Actor,
    pipelineName: string,
    channel: string,
    options: { optIns?: string[] } = {},
  ): Promise<{ pipeline: string; channel: string; stopped?: string[] }> {
    const pipeline = await this.authz.authorize(actor, pipelineName, 'operate', `unsubscribe ${pipelineName}`);
    assertChannel(channel);
    const dropped = checkOptIns(options.optIns ?? []);
    return this.ctx.transaction(async (m) => {
      if (dropped.length) {
        const before = await m.findOneBy(SubscriptionEntity, { pipelineId: pipeline.id, channel });
        if (!before) throw new NotFound(`this channel is not a feed of ${pipeline.name}`);
        const missing: string[] = dropped.filter((o) => !before.optIns.includes(o));
        if (missing.length)
          throw new NotFound(`this channel's feed of ${pipeline.name} does not get ${missing.join(', ')}; nothing changed`);
        const optIns = before.optIns.filter((o) => !(dropped as string[]).includes(o));
        await m.update(SubscriptionEntity, { pipelineId: pipeline.id, channel }, { optIns });
        await this.ctx.emit(m, {
          type: 'subscription.changed',
          pipeline: pipeline.name,
          actor: actor.name,
          via: actor.via,
          message: `${actor.name} stopped ${dropped.join(', ')} of ${pipeline.name} in ${channel}`,
          data: { channel, dropped, optIns },
        });
        return { pipeline: pipeline.name, channel, stopped: dropped };
      }
      const removed = await m.delete(SubscriptionEntity, { pipelineId: pipeline.id, channel });
      if (!removed.affected) throw new NotFound(`this channel is not a feed of ${pipeline.name}`);
      await this.ctx.emit(m, {
        type: 'subscription.removed',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} stopped the ${pipeline.name} feed in ${channel}`,
        data: { channel },
      });
      return { pipeline: pipeline.name, channel };
    });
  }

  /** The feeds of a channel, among the pipelines the actor can see. */
  async subscriptions(actor: Actor, channel: string): Promise<{ pipeline: string; events: string[]; optIns: string[] }[]> {
    assertChannel(channel);
    const visible = new Set((await this.pipelines.listPipelines(actor)).map((p) => p.name));
    const rows: { pipeline: string; events: string[]; optIns: string[] }[] = await this.ctx.db.query(
      'SELECT p.name AS pipeline, s.events, s.opt_ins AS "optIns" FROM subscriptions s JOIN pipelines p ON p.id = s.pipeline_id WHERE s.channel = $1 ORDER BY p.name',
      [channel],
    );
    return rows.filter((r) => visible.has(r.pipeline));
  }

  /**
   * Records that `channel` shows an operation (or an approval request, and the
   * operation it becomes) in one message, kept up to date by the front's
   * notifier. Idempotent.
   */
  async ensureStatusMessage(shown: OperationView | ApprovalView, channel: string): Promise<void> {
    const subject =
      shown.kind === 'approval' ? subjectKey({ kind: 'approval', request: shown.id }) : subjectKey({ kind: 'op', operation: shown.id });
    await this.ctx.outbox.addStatusMessage(subject, shown.pipeline, channel);
    this.ctx.notify();
  }

  /**
   * Records that the source host refused something flowops reported to it
   * (a commit status, a deployment) for good, as an event of the pipeline:
   * the audit trail keeps it and the pipeline's feeds show it.
   */
  async recordRefusal(event: {
    type: 'github.status_refused' | 'github.deployment_refused';
    pipeline: string;
    app: string | null;
    message: string;
    data: Record<string, unknown>;
  }): Promise<void> {
    await this.ctx.transaction((m) => this.ctx.emit(m, { ...event, via: 'system' }));
  }
}
