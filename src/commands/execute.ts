import type { Actor } from '../engine/access.ts';
import type { Engine } from '../engine/engine.ts';
import type { OperationView } from '../engine/views.ts';
import { InvalidInput } from '../errors.ts';
import { helpText, type Command, type CommandName } from './grammar.ts';

/** What a command returns: an operation under way, or data to show (with a note the text fronts print below it). */
export type Result =
  | { kind: 'operation'; command: CommandName; operation: OperationView }
  | { kind: 'data'; command: CommandName; data: unknown; note?: string };

/** Where a command was typed: in Slack, the channel it came from. */
export interface CommandContext {
  channel?: string;
}

function channelOf(command: { name: string; channel?: string }, context: CommandContext): string {
  const channel = command.channel ?? context.channel;
  if (!channel) throw new InvalidInput(`\`${command.name}\` needs a channel: type it in a Slack channel, or give --channel <channel id>`);
  return channel;
}

/** Runs a parsed command against the engine as `actor`. The engine checks permission. */
export async function execute(engine: Engine, actor: Actor, command: Command, context: CommandContext = {}): Promise<Result> {
  const data = (value: unknown): Result => ({ kind: 'data', command: command.name, data: value });
  const operation = (value: OperationView): Result => ({ kind: 'operation', command: command.name, operation: value });
  switch (command.name) {
    case 'pipelines':
      return data(await engine.listPipelines(actor));
    case 'pipelines:create': {
      const p = await engine.createPipeline(actor, { name: command.pipeline, repo: command.repo, branch: command.branch });
      return data({ name: p.name, repo: p.repo, branch: p.branch });
    }
    case 'pipelines:connect':
      return data(await engine.connectPipeline(actor, command.pipeline, command.repository));
    case 'pipelines:info':
      return data(await engine.pipelineInfo(actor, command.pipeline));
    case 'pipelines:destroy':
      return data(await engine.destroyPipeline(actor, command.pipeline, command.confirm));
    case 'apps:create':
      return data(await engine.createApp(actor, { name: command.app, pipeline: command.pipeline, stage: command.stage }));
    case 'apps:move':
      return data(await engine.moveApp(actor, command.app, command.stage));
    case 'apps:destroy':
      return data(await engine.destroyApp(actor, command.app, command.confirm));
    case 'deploy':
      return operation(await engine.deploy(actor, command));
    case 'promote':
      return operation(await engine.promote(actor, command));
    case 'releases':
      return data(await engine.releases(actor, command.app));
    case 'releases:output':
      return data(await engine.releaseOutput(actor, command.app, command.version));
    case 'rollback':
      return operation(await engine.rollback(actor, command.app, command.version));
    case 'config': {
      const { vars, hidden } = await engine.config(actor, command.app);
      return hidden ? { kind: 'data', command: command.name, data: vars, note: hidden } : data(vars);
    }
    case 'config:set':
      return operation(await engine.setConfig(actor, command.app, command.vars));
    case 'config:unset':
      return operation(await engine.unsetConfig(actor, command.app, command.keys));
    case 'diff':
      return data(await engine.diff(actor, command.pipeline));
    case 'access':
      return data(await engine.access(actor, command.pipeline));
    case 'access:add':
      return data(await engine.addAccess(actor, command.pipeline, command.user, command.permission));
    case 'access:remove':
      return data(await engine.removeAccess(actor, command.pipeline, command.user));
    case 'users:create':
      return data(await engine.createUser(actor, command.user));
    case 'ci':
      return data(await engine.testRuns(actor, command.pipeline));
    case 'ci:info':
      return data(await engine.testRunInfo(actor, command.pipeline, command.number));
    case 'ci:rerun':
      return data(await engine.rerunTests(actor, command.pipeline, command.number));
    case 'ci:cancel':
      return data(await engine.cancelTests(actor, command.pipeline, command.number));
    case 'ci:enable':
    case 'ci:disable':
      return data(await engine.setCi(actor, command.pipeline, command.name === 'ci:enable'));
    case 'autodeploy:enable':
      return data(await engine.setAutodeploy(actor, command.pipeline, { branch: command.branch, stage: command.stage, waitForCi: command.waitForCi }));
    case 'autodeploy:disable':
      return data(await engine.setAutodeploy(actor, command.pipeline, null));
    case 'reviewapps':
      return data(await engine.reviewApps(actor, command.pipeline));
    case 'reviewapps:enable':
      return data(await engine.setReviewApps(actor, command.pipeline, { autodeploy: command.autodeploy, autodestroy: command.autodestroy, staleDays: command.staleDays, waitForCi: command.waitForCi }));
    case 'reviewapps:disable':
      return data(await engine.setReviewApps(actor, command.pipeline, null));
    case 'reviewapps:create':
      return data(await engine.createReviewApp(actor, command.pipeline, command.pr));
    case 'reviewapps:destroy':
      return data(await engine.destroyReviewApp(actor, command.pipeline, command.pr));
    case 'subscribe':
      return data(await engine.subscribe(actor, command.pipeline, channelOf(command, context), command.events));
    case 'unsubscribe':
      return data(await engine.unsubscribe(actor, command.pipeline, channelOf(command, context)));
    case 'subscriptions':
      return data(await engine.subscriptions(actor, channelOf(command, context)));
    case 'help':
      return data(helpText(command.command));
  }
}
