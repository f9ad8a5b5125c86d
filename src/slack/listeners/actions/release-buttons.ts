import type { App, BlockAction, ButtonAction, RespondFn } from '@slack/bolt';
import { z } from 'zod';
import { errorMessage, noticeMessage, staleMessage, textMessage } from '../../../blocks/result-message.ts';
import { buttonValue } from '../../../blocks/limits.ts';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import type { KnownBlock } from '@slack/types';
import { FlowError, InvalidInput } from '../../../errors.ts';
import type { Actor } from '../../../engine/access.ts';
import { log } from '../../../log.ts';
import { slackActor, type SlackDeps } from '../../context.ts';
import { asSlashCommands } from '../commands/flow.ts';

const promoteValue = z.object({ p: z.string(), a: z.string(), v: z.number().int() });
const rollbackValue = z.object({ a: z.string(), v: z.number().int() });
const retryValue = z.object({ p: z.string(), a: z.string(), s: z.string(), c: z.string() });
const outputValue = z.object({ a: z.string(), v: z.number().int() });
const rerunValue = z.object({ p: z.string(), n: z.number().int() });

type Respond = (message: { text: string; blocks?: KnownBlock[]; response_type?: 'ephemeral'; replace_original?: boolean }) => Promise<unknown>;

function parseValue<T>(schema: z.ZodType<T>, action: ButtonAction): T {
  try {
    return schema.parse(JSON.parse(action.value ?? ''));
  } catch {
    throw new InvalidInput('this button is from an older flowops message; run the command instead (`/flow help`)');
  }
}

/**
 * The buttons on release messages and the board. A button's payload is never
 * trusted: the pipeline, app and release are looked up again, the engine checks
 * the clicking user's permission, and a button whose release is no longer the
 * app's current one says so and offers the current one.
 */
export function register(app: App, deps: SlackDeps): void {
  const handle = (actionId: string, work: (actor: Actor, action: ButtonAction, channel: string | undefined, respond: Respond) => Promise<void>) => {
    app.action<BlockAction<ButtonAction>>(actionId, async ({ ack, body, action, respond }) => {
      await ack();
      void deps.work.add(() => click(body, action, respond));
    });
    const click = async (body: BlockAction<ButtonAction>, action: ButtonAction, respond: RespondFn) => {
      const reply: Respond = async (message) => {
        if (body.response_url) await respond({ response_type: 'ephemeral', replace_original: false, ...message });
        else await deps.api.call((web) => web.chat.postMessage({ channel: body.user.id, text: message.text, blocks: message.blocks }));
      };
      try {
        const actor = await slackActor(deps, body.team?.id ?? body.user.team_id, body.user.id, body.user.username ?? body.user.name);
        await work(actor, action, body.channel?.id, reply);
      } catch (err) {
        if (!(err instanceof FlowError)) log.error({ err, action: actionId }, 'button failed');
        const message = err instanceof FlowError ? asSlashCommands(err.message) : 'flowops hit an unexpected error; the server log has the details';
        await reply(errorMessage(message)).catch((e: unknown) => log.warn({ err: e }, 'could not answer a button'));
      }
    };
  };

  /** Where an operation started by a click is shown: the clicked message's channel, or the feeds (App Home). */
  const follow = async (operationId: number, channel: string | undefined) => {
    if (channel) await deps.engine.ensureStatusMessage(operationId, channel);
  };

  handle('promote', async (actor, action, channel, reply) => {
    const { p, a, v } = parseValue(promoteValue, action);
    const info = await deps.engine.pipelineInfo(actor, p);
    const source = info.apps.find((x) => x.name === a);
    if (!source?.release) throw new InvalidInput(`${a} is no longer in ${p}; see \`pipelines:info ${p}\``);
    if (source.release.version !== v) {
      await reply(
        staleMessage(mrkdwn`${a} has moved on since: it now runs v${source.release.version} (${source.release.commit?.slice(0, 7) ?? '-'}), not v${v}.`, {
          action: 'promote',
          label: `Promote v${source.release.version}`,
          value: buttonValue({ p, a, v: source.release.version }),
        }),
      );
      return;
    }
    const op = await deps.engine.promote(actor, { pipeline: p, fromStage: source.stage, fromApp: a });
    await follow(op.id, channel);
  });

  handle('rollback', async (actor, action, channel, reply) => {
    const { a, v } = parseValue(rollbackValue, action);
    const current = (await deps.engine.releases(actor, a)).find((r) => r.current);
    if (!current) throw new InvalidInput(`${a} has no release to roll back`);
    if (current.version !== v) {
      await reply(
        staleMessage(mrkdwn`${a} has moved on since: it now runs v${current.version}, not v${v}.`, {
          action: 'rollback',
          label: `Roll back v${current.version}`,
          value: buttonValue({ a, v: current.version }),
        }),
      );
      return;
    }
    const op = await deps.engine.rollback(actor, a);
    await follow(op.id, channel);
  });

  handle('retry', async (actor, action, channel) => {
    const { p, a, s, c } = parseValue(retryValue, action);
    const op = await deps.engine.deploy(actor, { pipeline: p, ref: c, stage: s, app: a });
    await follow(op.id, channel);
  });

  handle('ci_rerun', async (actor, action, _channel, reply) => {
    const { p, n } = parseValue(rerunValue, action);
    const run = await deps.engine.rerunTests(actor, p, n);
    await reply(noticeMessage(mrkdwn`Started test run #${run.number} of ${run.commit.slice(0, 7)}; its result comes to the feed.`));
  });

  handle('output', async (actor, action, _channel, reply) => {
    const { a, v } = parseValue(outputValue, action);
    const release = await deps.engine.releaseOutput(actor, a, v);
    await reply(textMessage(`v${release.version} ${release.description} (${release.status})\n${release.output.trimEnd() || '(no output)'}`));
  });
}
