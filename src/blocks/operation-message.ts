import type { KnownBlock } from '@slack/types';
import type { Commit } from '../source/source.ts';
import type { OperationView } from '../engine/views.ts';
import { promoteButton, rollbackButton } from './buttons.ts';
import { actionButton } from './actions.ts';
import { MAX_TEXT } from './limits.ts';
import { contextBlock, joinMrkdwn, mrkdwn, section, slackMessage, type Mrkdwn } from './mrkdwn.ts';

export interface TargetLine {
  app: string;
  stage: string;
  version: number | null;
  commit: string | null;
  status: 'pending' | 'succeeded' | 'failed';
  /** True once the release exists and its release phase or boot is under way. */
  releasing: boolean;
  error?: string;
}

export interface OperationMessageInput {
  operation: OperationView;
  pipeline: string;
  actor: string | null;
  via: string;
  targets: TargetLine[];
  /** A succeeded release on staging: offer to promote it, listing what it ships. */
  promote?: { app: string; version: number; downstream: string; ahead: number; commits: Commit[] };
  /** A succeeded release on production: offer to roll it back. */
  rollback?: { app: string; version: number };
  /** A target whose release failed: offer to retry it and to show its output. */
  failed?: { app: string; version: number; stage: string; commit: string | null };
}

const short = (sha: string | null) => (sha ? sha.slice(0, 7) : '-');

function targetLine(t: TargetLine, kind: string): Mrkdwn {
  const [icon, state] =
    t.status === 'succeeded'
      ? [':white_check_mark:', 'live']
      : t.status === 'failed'
        ? [':x:', `failed${t.error ? `: ${t.error}` : ''}`]
        : t.releasing
          ? [':hourglass_flowing_sand:', 'release phase']
          : [':hourglass:', kind === 'deploy' ? 'building' : 'waiting'];
  return mrkdwn`${icon} *${t.app}* (${t.stage}) ${t.version ? `v${t.version}` : ''} \`${short(t.commit)}\` ${state}`;
}

/** The one message that follows a deploy, promotion, rollback or config change until it ends. */
export function operationMessage(input: OperationMessageInput): { text: string; blocks: KnownBlock[] } {
  const op = input.operation;
  const icon = op.status === 'succeeded' ? ':white_check_mark:' : op.status === 'failed' ? ':x:' : ':rocket:';
  const blocks: KnownBlock[] = [
    section(mrkdwn`${icon} *${input.pipeline}*: ${op.description}`),
    section(joinMrkdwn(input.targets.map((t) => targetLine(t, op.kind)))),
  ];
  if (op.error && !input.targets.some((t) => t.error === op.error)) blocks.push(section(mrkdwn`:warning: ${op.error}`));
  const buttons: KnownBlock = { type: 'actions', block_id: 'operation_actions', elements: [] };
  if (input.promote) buttons.elements.push(promoteButton({ pipeline: input.pipeline, ...input.promote }));
  if (input.rollback) buttons.elements.push(rollbackButton(input.rollback));
  if (input.failed) {
    const f = input.failed;
    if (f.commit && op.kind === 'deploy') {
      buttons.elements.push(
        actionButton('retry', { p: input.pipeline, a: f.app, s: f.stage, c: f.commit }, { text: { type: 'plain_text', text: 'Retry' } }),
      );
    }
    buttons.elements.push(actionButton('output', { a: f.app, v: f.version }, { text: { type: 'plain_text', text: 'Output' } }));
  }
  if (buttons.elements.length) blocks.push(buttons);
  blocks.push(contextBlock(mrkdwn`Operation ${op.id} · started by ${input.actor ?? 'flowops'} via ${input.via}`));
  return slackMessage(mrkdwn`${input.pipeline}: ${op.description} — ${op.status === 'succeeded' ? 'done' : op.status}`, blocks, MAX_TEXT);
}
