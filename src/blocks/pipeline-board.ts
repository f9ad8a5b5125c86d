import type { KnownBlock, SectionBlock } from '@slack/types';
import type { BoardApp, BoardPipeline } from '../engine/views.ts';
import { age, short } from '../format.ts';
import { lockLine, promoteButton, restartButton, rollbackButton, unlockButton } from './buttons.ts';
import { MAX_BLOCKS_HOME, MAX_BLOCKS_MESSAGE, truncate } from './limits.ts';
import { code, contextBlock, link, mrkdwn, section, slackMessage } from './mrkdwn.ts';

export type { BoardApp, BoardPipeline };

/** What the board says on a server without a sandbox. */
export const UNSANDBOXED_WARNING = mrkdwn`:warning: This flowops runs repository code *unsandboxed*: builds, tests and apps can read its settings and data. An admin should install bubblewrap.`;

function appCard(pipeline: BoardPipeline, app: BoardApp, now: number): KnownBlock[] {
  const r = app.release;
  const facts = r ? mrkdwn`v${r.version} · ${code(short(r.commit))} · ${age(r.createdAt, now)} · ${r.status}` : mrkdwn`_no release yet_`;
  const p = app.promote;
  const ahead = !p
    ? mrkdwn``
    : p.unlisted
      ? mrkdwn`\n:arrow_up: not in ${p.downstream} yet (commits not counted yet)`
      : p.first
        ? mrkdwn`\n:arrow_up: not in ${p.downstream} yet: first release (${p.ahead} commit${p.ahead === 1 ? '' : 's'})`
        : mrkdwn`\n:arrow_up: ${p.ahead} commit${p.ahead === 1 ? '' : 's'} ahead of ${p.downstream}`;
  const name = app.url ? link(app.url, app.name) : app.name;
  let accessory: SectionBlock['accessory'];
  if (pipeline.canDeploy && r) {
    if (p) accessory = promoteButton({ pipeline: pipeline.name, app: app.name, version: r.version, offer: p });
    else if (app.rollback) accessory = rollbackButton(app.rollback);
  }
  const blocks: KnownBlock[] = [section(mrkdwn`*${name}*  ${facts}${ahead}`, accessory)];
  // A stage's lock shows on each of its apps (the button names what it unlocks).
  if (app.lock) blocks.push(section(lockLine(app.lock), pipeline.canOperate ? unlockButton(app.lock) : undefined));
  const crashed = app.crashed ?? [];
  if (crashed.length)
    blocks.push(
      section(
        mrkdwn`:boom: ${crashed.join(', ')} crashed; flowops restarts ${crashed.length === 1 ? 'it' : 'them'} with a back-off · ${code(`/flow logs ${app.name}`)}`,
        pipeline.canDeploy ? restartButton(app.name, crashed[0]!) : undefined,
      ),
    );
  return blocks;
}

/** A pipeline as stages with app cards: version, commit, age, status, what a promotion would ship, and the buttons the viewer may use. */
export function pipelineBlocks(pipeline: BoardPipeline, now = Date.now()): KnownBlock[] {
  const blocks: KnownBlock[] = [{ type: 'header', text: { type: 'plain_text', text: truncate(pipeline.name, 150) } }];
  if (pipeline.unsandboxed) blocks.push(contextBlock(UNSANDBOXED_WARNING));
  const stages = [...new Set(pipeline.apps.map((a) => a.stage))];
  if (!stages.length) blocks.push(section(mrkdwn`No apps yet: \`/flow apps:create <app> --pipeline ${pipeline.name} --stage staging\``));
  for (const stage of stages) {
    blocks.push(contextBlock(mrkdwn`*${stage.toUpperCase()}*`));
    for (const app of pipeline.apps.filter((a) => a.stage === stage)) blocks.push(...appCard(pipeline, app, now));
  }
  return blocks;
}

/** Keeps whole pipelines while they fit in `max` blocks, then says how many were left out. */
function fit(pipelines: BoardPipeline[], max: number, now: number): KnownBlock[] {
  const blocks: KnownBlock[] = [];
  for (const [i, pipeline] of pipelines.entries()) {
    const next = [...pipelineBlocks(pipeline, now), { type: 'divider' } as KnownBlock];
    if (blocks.length + next.length > max - 1) {
      blocks.push(
        contextBlock(
          mrkdwn`…and ${pipelines.length - i} more pipeline${pipelines.length - i === 1 ? '' : 's'}: \`/flow pipelines:info <pipeline>\``,
        ),
      );
      break;
    }
    blocks.push(...next);
  }
  return blocks;
}

/** `/flow pipelines:info` in Slack: one pipeline, within a message's 50 blocks. */
export function pipelineMessage(pipeline: BoardPipeline, now = Date.now()): { text: string; blocks: KnownBlock[] } {
  const blocks = pipelineBlocks(pipeline, now);
  const shown =
    blocks.length > MAX_BLOCKS_MESSAGE
      ? [...blocks.slice(0, MAX_BLOCKS_MESSAGE - 1), contextBlock(mrkdwn`…${blocks.length - MAX_BLOCKS_MESSAGE + 1} more apps not shown`)]
      : blocks;
  return slackMessage(mrkdwn`Pipeline ${pipeline.name}`, shown);
}

/** The App Home's picker: which pipeline to show first (Slack sends its choice as action `home_pick`). */
export const HOME_PICK = 'home_pick';
/** A static select holds at most 100 options. */
const MAX_OPTIONS = 100;

export interface HomeOptions {
  now?: number;
  /** The pipeline this person picked to see first (ignored unless they can see it). */
  picked?: string | null;
}

/**
 * The App Home tab: every pipeline the user can see, within the Home tab's 100
 * blocks. When they do not all fit, a picker names them all (the first 100) and
 * the one picked is shown first.
 */
export function homeView(pipelines: BoardPipeline[], options: HomeOptions = {}): { type: 'home'; blocks: KnownBlock[] } {
  const now = options.now ?? Date.now();
  if (!pipelines.length) {
    return {
      type: 'home',
      blocks: [section(mrkdwn`You cannot see any pipeline yet. Ask an admin for access: \`/flow access:add <pipeline> @you view\``)],
    };
  }
  const picked = pipelines.find((p) => p.name === options.picked);
  const ordered = picked ? [picked, ...pipelines.filter((p) => p !== picked)] : pipelines;
  const shown = fit(ordered, MAX_BLOCKS_HOME - 1, now);
  const all = shown.filter((b) => b.type === 'header').length === pipelines.length;
  const title = mrkdwn`*Your pipelines* (${pipelines.length})`;
  if (all) return { type: 'home', blocks: [section(title), ...shown] };
  const option = (name: string) => ({ text: { type: 'plain_text' as const, text: truncate(name, 75) }, value: name });
  const picker: SectionBlock['accessory'] = {
    type: 'static_select',
    action_id: HOME_PICK,
    placeholder: { type: 'plain_text', text: 'Show a pipeline first' },
    options: pipelines.slice(0, MAX_OPTIONS).map((p) => option(p.name)),
    ...(picked && pipelines.indexOf(picked) < MAX_OPTIONS ? { initial_option: option(picked.name) } : {}),
  };
  const more =
    pipelines.length > MAX_OPTIONS ? mrkdwn` · the list names the first ${MAX_OPTIONS}; \`/flow pipelines\` names them all` : mrkdwn``;
  return { type: 'home', blocks: [section(mrkdwn`${title}: more than fit here; pick one to see it first${more}`, picker), ...shown] };
}
