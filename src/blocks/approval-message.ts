import type { KnownBlock } from '@slack/types';
import type { ApprovalReport, Person } from '../engine/views.ts';
import { until } from '../format.ts';
import { approveButton, commitList, rejectButton } from './buttons.ts';
import type { SourceLinks } from './links.ts';
import { MAX_TEXT } from './limits.ts';
import { contextBlock, fallbackText, joinMrkdwn, mention, mrkdwn, section, type Mrkdwn } from './mrkdwn.ts';
import { byline, operationMessage, whatChanged, type Card, type ThreadReply } from './operation-message.ts';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A person, mentioned when they have a Slack account (linked CLI users too), else by name and front. */
const who = (p: Person): Mrkdwn => (p.slackUser ? mention(p) : byline(p));

/** The commits a request adds over what its stage runs now, as a list. */
function adds(report: ApprovalReport): Mrkdwn | null {
  const d = report.details;
  const ships = d.promotion ?? d.adds;
  if (!ships) return null;
  if (ships.ahead === 0) return mrkdwn`No commits that the stage does not run already.`;
  const intro = ships.base
    ? mrkdwn`Adds ${plural(ships.ahead, 'commit')}:`
    : mrkdwn`First release to the stage: ${plural(ships.ahead, 'commit')}:`;
  return commitList(intro, ships.ahead, ships.commits, 1500);
}

/** Where a decided request stands: one line, and the fallback text. */
function decision(report: ApprovalReport): { line: Mrkdwn; text: string } {
  const r = report.request;
  const by = report.decidedBy ?? { name: r.decidedBy ?? 'flowops', slackUser: null, via: 'system' };
  const approved = report.approvers.length ? mrkdwn` by ${joinMrkdwn(report.approvers.map(who), ', ')}` : mrkdwn``;
  switch (r.status) {
    case 'rejected':
      return { line: mrkdwn`:no_entry: *Rejected* by ${who(by)}: ${r.reason ?? ''}`, text: `⛔ ${r.description}: rejected by ${by.name}` };
    case 'withdrawn':
      return {
        line: mrkdwn`:leftwards_arrow_with_hook: *Withdrawn* by ${who(by)}: ${r.reason ?? ''}`,
        text: `↩️ ${r.description}: withdrawn`,
      };
    case 'expired':
      return {
        line: mrkdwn`:hourglass: *Expired* at ${until(r.expiresAt)} with ${r.approvals.length} of ${r.needed} approvals — nothing shipped`,
        text: `⌛ ${r.description}: expired without its approvals`,
      };
    case 'failed':
      return {
        line: mrkdwn`:x: *Approved${approved}, but it did not start:* ${r.reason ?? ''}`,
        text: `❌ ${r.description}: approved, but did not start`,
      };
    default:
      return { line: mrkdwn`:white_check_mark: *Approved*${approved} — starting…`, text: `✅ ${r.description}: approved, starting` };
  }
}

/**
 * The one message of an approval request: who asks to ship what (the exact
 * release, the commits it adds) with **Approve** and **Reject** while it
 * waits; how it was decided after; and once it ships, the operation's own
 * message, crediting its approvers — one message from the asking to live.
 */
export function approvalMessage(report: ApprovalReport, links: SourceLinks): Card {
  const r = report.request;
  const asked = mrkdwn`Asked by ${who(report.requester)} · request ${r.id}${report.approvers.length ? mrkdwn` · approved by ${joinMrkdwn(report.approvers.map(who), ', ')}` : mrkdwn``}`;
  const movedOn = report.sourceNow
    ? mrkdwn`:information_source: ${report.sourceNow.app} has moved on to v${report.sourceNow.version} since; ${r.status === 'pending' ? 'approving ships' : 'what shipped is'} the release that was asked for`
    : null;
  if (report.operation) {
    const card = operationMessage(report.operation, links);
    const context = card.blocks.pop()!;
    return { ...card, blocks: [...card.blocks, contextBlock(joinMrkdwn([asked, ...(movedOn ? [movedOn] : [])])), context] };
  }
  // What it ships: the commits it adds (a deploy, a promotion), or the versions (a rollback, or a source that could not list them).
  const body: Mrkdwn[] = [];
  const list = adds(report);
  const changed = list ? null : whatChangedOfRequest(report, links);
  if (list) body.push(list);
  if (changed) body.push(changed);
  if (report.details.note) body.push(mrkdwn`:memo: ${report.details.note}`);
  if (r.status === 'pending') {
    const left = r.needed - r.approvals.length;
    const blocks: KnownBlock[] = [
      section(joinMrkdwn([mrkdwn`:raising_hand: ${who(report.requester)} asks to ship: *${r.description}*`, ...body])),
      {
        type: 'actions',
        block_id: 'approval_actions',
        elements: [
          approveButton({ id: r.id, description: r.description, needed: r.needed, approved: r.approvals.length }),
          rejectButton(r.id),
        ],
      },
      contextBlock(
        joinMrkdwn([
          mrkdwn`Needs ${plural(left, 'more approval')} from someone with deploy on ${r.pipeline} other than ${report.requester.name} · expires ${until(r.expiresAt)}`,
          asked,
          ...(movedOn ? [movedOn] : []),
        ]),
      ),
    ];
    return {
      text: fallbackText(`🙋 ${report.requester.name} asks to ship: ${r.description} — needs ${plural(left, 'approval')}`),
      blocks,
      live: true,
      replies: [],
    };
  }
  const { line, text } = decision(report);
  const blocks: KnownBlock[] = [
    section(joinMrkdwn([line, mrkdwn`${r.description}`, ...body])),
    contextBlock(joinMrkdwn([asked, ...(movedOn ? [movedOn] : [])])),
  ];
  const replies: ThreadReply[] = [];
  // The requester hears how it ended, in the thread: a rejection's reason, an expiry, a failure to start.
  if (r.status === 'rejected' || r.status === 'expired' || r.status === 'failed') {
    const ping = report.requester.slackUser ? mrkdwn`${mention(report.requester)} ` : mrkdwn``;
    replies.push({ key: `decided:${r.status}`, text: fallbackText(text), blocks: [section(mrkdwn`${ping}${line}`)], broadcast: false });
  }
  return { text: fallbackText(text), blocks: blocks.slice(0, 50), live: false, replies };
}

/** The commit a deploy builds, the release a promotion copies, the versions of a rollback: as an operation's message says them. */
function whatChangedOfRequest(report: ApprovalReport, links: SourceLinks): Mrkdwn | null {
  const line = whatChanged({ kind: report.request.action, description: report.request.description }, report.details, links);
  return line && line.text.length < MAX_TEXT ? line : null;
}
