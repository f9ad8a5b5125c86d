import type { ApprovalView, CommandName, OperationView, Result } from '../api/types.ts';
import type { Actor } from '../engine/access.ts';
import type { Engine } from '../engine/engine.ts';
import { InvalidInput, PermissionDenied } from '../errors.ts';
import { helpText, type Command } from './grammar.ts';

/** Where a command was typed: in Slack, the channel it came from. */
export interface CommandContext {
  channel?: string;
}

/** The parsed command named `N`. */
type CommandOf<N extends CommandName> = Extract<Command, { name: N }>;

/** A command's call into the engine. A name the grammar does not parse gets no handler (`never`), so the table cannot list it. */
type Handler<N extends CommandName> = [CommandOf<N>] extends [never]
  ? never
  : (engine: Engine, actor: Actor, command: CommandOf<N>, context: CommandContext) => Promise<Result<N>>;

function channelOf(command: { name: string; channel?: string }, context: CommandContext): string {
  const channel = command.channel ?? context.channel;
  if (!channel) throw new InvalidInput(`\`${command.name}\` needs a channel: type it in a Slack channel, or give --channel <channel id>`);
  return channel;
}

/** Data to show. The table below checks it against the command's entry in CommandResults. */
async function data<N extends CommandName, T>(command: { name: N }, value: Promise<T>): Promise<{ kind: 'data'; command: N; data: T }> {
  return { kind: 'data', command: command.name, data: await value };
}

/** An operation under way: its progress arrives as events. */
async function operation<N extends CommandName>(
  command: { name: N },
  value: Promise<OperationView>,
): Promise<{ kind: 'operation'; command: N; operation: OperationView }> {
  return { kind: 'operation', command: command.name, operation: await value };
}

/** An operation under way, or the approval request its stage made of it. */
async function operationOrRequest<N extends CommandName>(
  command: { name: N },
  value: Promise<OperationView | ApprovalView>,
): Promise<{ kind: 'operation'; command: N; operation: OperationView } | { kind: 'approval'; command: N; approval: ApprovalView }> {
  const result = await value;
  return result.kind === 'approval'
    ? { kind: 'approval', command: command.name, approval: result }
    : { kind: 'operation', command: command.name, operation: result };
}

/** One entry per command: the compiler checks each answer against CommandResults, the API's shapes. */
const HANDLERS: { [N in CommandName]: Handler<N> } = {
  pipelines: (engine, actor, command) => data(command, engine.listPipelines(actor)),
  'pipelines:create': async (engine, actor, command) => {
    const p = await engine.createPipeline(actor, { name: command.pipeline, repo: command.repo, branch: command.branch });
    return { kind: 'data', command: command.name, data: { name: p.name, repo: p.repo, branch: p.branch } };
  },
  'pipelines:connect': (engine, actor, command) => data(command, engine.connectPipeline(actor, command.pipeline, command.repository)),
  'pipelines:info': (engine, actor, command) => data(command, engine.pipelineInfo(actor, command.pipeline)),
  'pipelines:destroy': (engine, actor, command) => data(command, engine.destroyPipeline(actor, command.pipeline, command.confirm)),
  'apps:create': (engine, actor, command) =>
    data(
      command,
      engine.createApp(actor, {
        name: command.app,
        pipeline: command.pipeline,
        stage: command.stage,
        ...(command.platform !== undefined ? { platform: command.platform } : {}),
        ...(command.namespace !== undefined ? { namespace: command.namespace } : {}),
      }),
    ),
  'apps:move': (engine, actor, command) => data(command, engine.moveApp(actor, command.app, command.stage)),
  'apps:destroy': (engine, actor, command) => data(command, engine.destroyApp(actor, command.app, command.confirm)),
  deploy: (engine, actor, command) => operationOrRequest(command, engine.deploy(actor, command)),
  promote: async (engine, actor, command) => {
    // Heroku's `pipelines:promote -a <app>`: the source app names the pipeline and the stage.
    if (!command.pipeline && command.fromApp) {
      const source = await engine.appInfo(actor, command.fromApp);
      command = { ...command, pipeline: source.pipeline, fromStage: source.stage };
    }
    return operationOrRequest(command, engine.promote(actor, command));
  },
  releases: (engine, actor, command) => data(command, engine.releases(actor, command.app)),
  'releases:output': (engine, actor, command) => data(command, engine.releaseOutput(actor, command.app, command.version)),
  rollback: (engine, actor, command) =>
    operationOrRequest(command, engine.rollback(actor, command.app, command.version, { force: command.force, reason: command.reason })),
  lock: (engine, actor, command) => data(command, engine.lock(actor, command.target, { reason: command.reason, for: command.for })),
  unlock: (engine, actor, command) => data(command, engine.unlock(actor, command.target)),
  locks: (engine, actor, command) => data(command, engine.locks(actor, command.pipeline)),
  'approvals:require': (engine, actor, command) =>
    data(command, engine.requireApprovals(actor, command.pipeline, command.stage, command.approvers)),
  'approvals:disable': (engine, actor, command) => data(command, engine.disableApprovals(actor, command.pipeline, command.stage)),
  approvals: (engine, actor, command) => data(command, engine.approvals(actor, command.pipeline)),
  approve: (engine, actor, command) => data(command, engine.approve(actor, command.id)),
  reject: (engine, actor, command) => data(command, engine.reject(actor, command.id, command.reason)),
  config: async (engine, actor, command) => {
    const { vars, hidden } = await engine.config(actor, command.app);
    return hidden ? { kind: 'data', command: command.name, data: vars, note: hidden } : { kind: 'data', command: command.name, data: vars };
  },
  'config:set': (engine, actor, command) => operation(command, engine.setConfig(actor, command.app, command.vars, command)),
  'config:unset': (engine, actor, command) => operation(command, engine.unsetConfig(actor, command.app, command.keys, command)),
  diff: async (engine, actor, command) => {
    // Heroku's `pipelines:diff -a <app>`: the app's pipeline.
    const pipeline = command.pipeline || (await engine.appInfo(actor, command.app ?? '')).pipeline;
    return data(command, engine.diff(actor, pipeline));
  },
  logs: (engine, actor, command) => {
    if (command.tail && actor.via === 'slack')
      throw new InvalidInput(
        `\`--tail\` follows a log in a terminal: \`flowops logs ${command.app} --tail\`; here, \`logs ${command.app}\` shows the last lines`,
      );
    return data(command, engine.logs(actor, command.app, { num: command.num, dyno: command.dyno, source: command.source }));
  },
  ps: (engine, actor, command) => data(command, engine.processes(actor, command.app)),
  'ps:scale': (engine, actor, command) => data(command, engine.scale(actor, command.app, command.formation)),
  'ps:restart': (engine, actor, command) => data(command, engine.restartDynos(actor, command.app, command.target)),
  'ps:stop': (engine, actor, command) => data(command, engine.stopDynos(actor, command.app, command.target)),
  apps: (engine, actor, command) => data(command, engine.listApps(actor)),
  'apps:info': (engine, actor, command) => data(command, engine.appInfo(actor, command.app)),
  'config:get': async (engine, actor, command) => {
    const { vars, hidden } = await engine.config(actor, command.app);
    // A masked value would pass for the value in a script: say why there is none instead.
    if (hidden) throw new PermissionDenied(hidden);
    const value = Object.hasOwn(vars, command.key) ? vars[command.key]! : null;
    return { kind: 'data', command: command.name, data: { app: command.app, key: command.key, value } };
  },
  open: async (engine, actor, command) => {
    const app = await engine.appInfo(actor, command.app);
    return { kind: 'data', command: command.name, data: { app: app.name, url: app.url } };
  },
  access: async (engine, actor, command) => {
    const grants = await engine.access(actor, command.pipeline);
    const floor = await engine.defaultAccess(actor, command.pipeline);
    const note = floor ? `every member of the Slack workspace has at least ${floor} here (access:default)` : undefined;
    return note ? { kind: 'data', command: command.name, data: grants, note } : { kind: 'data', command: command.name, data: grants };
  },
  'access:add': (engine, actor, command) => data(command, engine.addAccess(actor, command.pipeline, command.user, command.permission)),
  'access:remove': (engine, actor, command) => data(command, engine.removeAccess(actor, command.pipeline, command.user)),
  'access:default': (engine, actor, command) => data(command, engine.setDefaultAccess(actor, command.pipeline, command.permission)),
  users: (engine, actor, command) => data(command, engine.users(actor)),
  'users:unlink': (engine, actor, command) => data(command, engine.unlink(actor, command.user)),
  login: async (engine, actor, command) => ({
    kind: 'data',
    command: command.name,
    data: command.code ? await engine.login(actor, command.code) : await engine.loginCode(actor),
  }),
  'users:create': (engine, actor, command) => data(command, engine.createUser(actor, command.user)),
  ci: (engine, actor, command) => data(command, engine.testRuns(actor, command.pipeline)),
  'ci:info': (engine, actor, command) => data(command, engine.testRunInfo(actor, command.pipeline, command.number)),
  'ci:rerun': (engine, actor, command) => data(command, engine.rerunTests(actor, command.pipeline, command.number)),
  'ci:cancel': (engine, actor, command) => data(command, engine.cancelTests(actor, command.pipeline, command.number)),
  'ci:enable': (engine, actor, command) => data(command, engine.setCi(actor, command.pipeline, true)),
  'ci:disable': (engine, actor, command) => data(command, engine.setCi(actor, command.pipeline, false)),
  'autodeploy:enable': (engine, actor, command) =>
    data(
      command,
      engine.setAutodeploy(actor, command.pipeline, { branch: command.branch, stage: command.stage, waitForCi: command.waitForCi }),
    ),
  'autodeploy:disable': (engine, actor, command) => data(command, engine.setAutodeploy(actor, command.pipeline, null)),
  reviewapps: (engine, actor, command) => data(command, engine.reviewApps(actor, command.pipeline)),
  'reviewapps:enable': (engine, actor, command) =>
    data(
      command,
      engine.setReviewApps(actor, command.pipeline, {
        autodeploy: command.autodeploy,
        autodestroy: command.autodestroy,
        staleDays: command.staleDays,
        waitForCi: command.waitForCi,
      }),
    ),
  'reviewapps:disable': (engine, actor, command) => data(command, engine.setReviewApps(actor, command.pipeline, null)),
  'reviewapps:create': (engine, actor, command) => data(command, engine.createReviewApp(actor, command.pipeline, command.pr)),
  'reviewapps:destroy': (engine, actor, command) => data(command, engine.destroyReviewApp(actor, command.pipeline, command.pr)),
  subscribe: (engine, actor, command, context) =>
    data(command, engine.subscribe(actor, command.pipeline, channelOf(command, context), command.events, { optIns: command.optIns })),
  unsubscribe: (engine, actor, command, context) =>
    data(command, engine.unsubscribe(actor, command.pipeline, channelOf(command, context), { optIns: command.optIns })),
  subscriptions: (engine, actor, command, context) => data(command, engine.subscriptions(actor, channelOf(command, context))),
  audit: (engine, actor, command) => data(command, engine.audit(actor, command.pipeline, { since: command.since, user: command.user })),
  metrics: (engine, actor, command) => data(command, engine.metrics(actor, command.pipeline, command.days)),
  help: async (_engine, _actor, command) => ({ kind: 'data', command: command.name, data: helpText(command.command) }),
};

/** Runs a parsed command against the engine as `actor`. The engine checks permission. */
export async function execute<N extends CommandName>(
  engine: Engine,
  actor: Actor,
  command: CommandOf<N>,
  context: CommandContext = {},
): Promise<Result<N>> {
  const handler: Handler<N> = HANDLERS[command.name];
  return handler(engine, actor, command, context);
}
