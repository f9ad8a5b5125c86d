import type { App, RespondFn, SlashCommand } from '@slack/bolt';
import { errorMessage, textMessage } from '../../../blocks/result-message.ts';
import { pipelineMessage } from '../../../blocks/pipeline-board.ts';
import { execute } from '../../../commands/execute.ts';
import { COMMAND_NAMES, helpTopics, parseCommand, tokenize } from '../../../commands/grammar.ts';
import { commandAnswer, helpAnswer } from '../../../blocks/command-answer.ts';
import type { Result } from '../../../api/types.ts';
import { renderText } from '../../../commands/render-text.ts';
import { FlowError, PermissionDenied } from '../../../errors.ts';
import type { KnownBlock } from '@slack/types';
import { contextBlock, joinMrkdwn, mention, mrkdwn } from '../../../blocks/mrkdwn.ts';
import { log } from '../../../log.ts';
import { privateMetricsMessage } from '../../../blocks/metrics-message.ts';
import { boardPipeline } from '../../board.ts';
import { metricsReport, shareMetricsChart } from '../../metrics-post.ts';
import { afterAck, slackActor, slackPeople, slackWords, type SlackDeps } from '../../context.ts';
import type { Actor } from '../../../engine/access.ts';

/** Writes the commands a message suggests (`access:add shop bob deploy`) as Slack users type them (`/flow access:add ...`). */
export function asSlashCommands(message: string): string {
  return message.replace(/`([a-z]+(?::[a-z]+)?)((?: [^`]*)?)`/g, (whole, name: string, rest: string) =>
    (COMMAND_NAMES as string[]).includes(name) ? `\`/flow ${name}${rest}\`` : whole,
  );
}

/**
 * What a person is told when a command or a click fails: a FlowError in
 * `/flow` words, with the pipeline's managers as mentions when it is a refusal
 * they can lift; anything else, a generic line (the log has the details).
 */
export async function refusal(deps: SlackDeps, team: string | undefined, err: unknown): Promise<{ text: string; blocks: KnownBlock[] }> {
  if (!(err instanceof FlowError)) return errorMessage('flowops hit an unexpected error; the server log has the details');
  const message = errorMessage(asSlashCommands(err.message));
  if (!(err instanceof PermissionDenied) || !err.managers.length) return message;
  const people = await slackPeople(deps, team, err.managers);
  const managers = err.managers.map((name) => mention({ name, slackUser: people[name] ?? null }));
  return { ...message, blocks: [...message.blocks, contextBlock(mrkdwn`Who can grant it: ${joinMrkdwn(managers, ', ')}`)] };
}

/** The flowops users an answer names, to show as mentions. */
function namesIn(result: Result): string[] {
  if (result.kind !== 'data') return [];
  switch (result.command) {
    case 'access':
      return result.data.map((g) => g.user);
    case 'access:add':
    case 'access:remove':
      return [result.data.user];
    case 'lock':
      return [result.data.holder];
    case 'locks':
      return result.data.map((l) => l.holder);
    case 'audit':
      return [...new Set(result.data.records.map((r) => r.actor))];
    default:
      return [];
  }
}

/**
 * `/flow <words>`: the CLI's grammar. Acks at once; then a long operation gets
 * one message in this channel that the notifier keeps up to date, and anything
 * else an ephemeral answer. Refusals are ephemeral and say what to do next.
 * Answers are ephemeral because some carry secrets: `users:create` shows its
 * token once, to whoever typed it, never to the channel.
 */
export function register(app: App, deps: SlackDeps): void {
  app.command('/flow', async ({ command, ack, respond, context }) => {
    await ack();
    afterAck(deps, context, () => run(command, respond));
  });

  async function run(command: SlashCommand, respond: RespondFn): Promise<void> {
    try {
      // Typed in a pipeline's feed, a refusal may name the pipeline (and its managers).
      const actor = {
        ...(await slackActor(deps, command.team_id, command.user_id, command.user_name)),
        shown: { channel: command.channel_id },
      };
      const words = await slackWords(deps, command.team_id, tokenize(command.text));
      const parsed = parseCommand(words);
      if (parsed.name === 'pipelines:info') {
        await respond({ response_type: 'ephemeral', ...pipelineMessage(await boardPipeline(deps.engine, actor, parsed.pipeline)) });
        return;
      }
      if (parsed.name === 'metrics') {
        await postMetrics(command, respond, actor, parsed.pipeline, parsed.days);
        return;
      }
      if (parsed.name === 'help' && !parsed.command) {
        await respond({ response_type: 'ephemeral', ...helpAnswer(helpTopics()) });
        return;
      }
      const result = await execute(deps.engine, actor, parsed, { channel: command.channel_id });
      if (result.kind === 'operation' || result.kind === 'approval') {
        await deps.engine.ensureStatusMessage(result.kind === 'operation' ? result.operation : result.approval, command.channel_id);
        return;
      }
      const answer = commandAnswer(result, await slackPeople(deps, command.team_id, namesIn(result)));
      await respond({ response_type: 'ephemeral', ...(answer ?? textMessage(asSlashCommands(renderText(result)))) });
    } catch (err) {
      // The command's name only: its words can hold config values.
      if (!(err instanceof FlowError))
        log.error(
          { err, user: command.user_id, channel: command.channel_id, command: command.text.trim().split(/\s+/)[0]?.slice(0, 40) },
          'slash command failed',
        );
      await respond({ response_type: 'ephemeral', ...(await refusal(deps, command.team_id, err)) }).catch((e: unknown) =>
        log.warn({ err: e }, 'could not answer a slash command'),
      );
    }
  }

  /**
   * `/flow metrics <pipeline>`: the summary in the channel for everyone, then
   * the chart uploaded under it, in a feed of the pipeline or by one of its
   * managers; anywhere else, and when there is nothing to show, the summary to
   * the person alone. The person alone hears when the chart could not be posted.
   */
  async function postMetrics(command: SlashCommand, respond: RespondFn, actor: Actor, pipeline: string, days?: number): Promise<void> {
    const report = await metricsReport(deps.engine, actor, pipeline, days);
    if (!report.chart) {
      await respond({ response_type: 'ephemeral', ...report.message });
      return;
    }
    if (!(await deps.engine.mayShareIn(actor, report.metrics.pipeline, command.channel_id))) {
      await respond({ response_type: 'ephemeral', ...privateMetricsMessage(report.message, report.metrics.pipeline) });
      return;
    }
    await respond({ response_type: 'in_channel', ...report.message });
    try {
      await shareMetricsChart(deps, report, command.channel_id);
    } catch (err) {
      log.warn({ err, channel: command.channel_id, pipeline }, 'metrics chart not shared');
      await respond({
        response_type: 'ephemeral',
        ...errorMessage(
          'The chart could not be posted here: Slack refused the upload. Invite flowops to this channel (`/invite @flowops`) and try again.',
        ),
      });
    }
  }
}
