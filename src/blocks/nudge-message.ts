import type { KnownBlock } from '@slack/types';
import type {
  ApprovalWaitingNudge,
  CrashLoopNudge,
  DigestNudge,
  LockExpiringNudge,
  NudgeReport,
  StagingAheadNudge,
} from '../engine/views.ts';
import { metricsMessage } from './metrics-message.ts';
import { duration, short, until } from '../format.ts';
import { approveButton, extendButton, promoteButton, rejectButton, restartButton, unlockButton } from './buttons.ts';
import type { SourceLinks } from './links.ts';
import { commitLink, type Card } from './operation-message.ts';
import { code, codeBlock, contextBlock, fallbackText, joinMrkdwn, mrkdwn, section, type Mrkdwn } from './mrkdwn.ts';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
/** A commit's first line, cut to fit a list line. */
const firstLine = (message: string) => {
  const line = message.split('\n')[0]!.trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
};

/**
 * A nudge's message: what flowops noticed before anyone asked, with the button
 * that acts on it. A snapshot of when it was due, posted once and never
 * redrawn; every button checks again on the click (a stale one says what is
 * current and changes nothing).
 */
export function nudgeMessage(report: NudgeReport, links: SourceLinks): Card {
  if (report.kind === 'digest') return { ...digest(report.pipeline, report.data), live: false, replies: [], chart: report.data.metrics };
  const message = render(report, links);
  return { ...message, live: false, replies: [] };
}

function render(report: NudgeReport, links: SourceLinks): { text: string; blocks: KnownBlock[] } {
  switch (report.kind) {
    case 'staging_ahead':
      return stagingAhead(report.pipeline, report.data, links);
    case 'lock_expiring':
      return lockExpiring(report.data, report.at);
    case 'approval_waiting':
      return approvalWaiting(report.data, report.at);
    case 'crash_loop':
      return crashLoop(report.pipeline, report.data);
    case 'digest':
      return digest(report.pipeline, report.data);
  }
}

const onceADay = (pipeline: string): Mrkdwn =>
  mrkdwn`flowops nudges this feed once a day while it stays so · ${code(`/flow unsubscribe ${pipeline} --nudges`)} stops these`;

/** Staging waiting to be promoted: the commits production does not run, with who wrote them, and Promote. */
function stagingAhead(pipeline: string, n: StagingAheadNudge, links: SourceLinks): { text: string; blocks: KnownBlock[] } {
  const { offer } = n;
  const lines: Mrkdwn[] = [];
  if (offer.unlisted) lines.push(mrkdwn`_flowops could not list its commits just now._`);
  else {
    for (const c of offer.commits.slice(0, 10)) lines.push(mrkdwn`• ${commitLink(links, c.sha)} ${firstLine(c.message)} — ${c.author}`);
    const more = offer.ahead - Math.min(offer.commits.length, 10);
    if (more > 0) lines.push(mrkdwn`…and ${more} more`);
  }
  const what = offer.first
    ? mrkdwn`${offer.downstream} runs nothing yet: *${n.app}* v${n.version} (${commitLink(links, n.commit)}) would be its first release`
    : offer.unlisted
      ? mrkdwn`*${n.app}* v${n.version} (${commitLink(links, n.commit)}) runs commits ${offer.downstream} does not`
      : mrkdwn`*${n.app}* v${n.version} (${commitLink(links, n.commit)}) runs ${plural(offer.ahead, 'commit')} ${offer.downstream} does not:`;
  const blocks: KnownBlock[] = [
    section(mrkdwn`:hourglass_flowing_sand: *${pipeline}*: staging has been ahead of ${offer.downstream} for ${plural(n.days, 'day')}`),
    section(joinMrkdwn([what, ...lines])),
    { type: 'actions', elements: [promoteButton({ pipeline, app: n.app, version: n.version, offer })] },
    contextBlock(mrkdwn`Ahead since ${until(n.since)} · ${onceADay(pipeline)}`),
  ];
  return {
    text: fallbackText(
      `⏳ ${pipeline}: staging has been ahead of ${offer.downstream} for ${plural(n.days, 'day')} (${n.app} v${n.version}, ${short(n.commit)})`,
    ),
    blocks,
  };
}

/** A lock about to expire, to its holder: Extend 1h, or Unlock. */
function lockExpiring(n: LockExpiringNudge, at: string): { text: string; blocks: KnownBlock[] } {
  const { lock } = n;
  const left = Math.max(0, Date.parse(lock.until) - Date.parse(at));
  const blocks: KnownBlock[] = [
    section(
      joinMrkdwn([
        mrkdwn`:lock: Your lock on *${lock.target}* expires at ${until(lock.until, Date.parse(at))}, in ${Math.max(1, Math.round(left / 60_000))} minutes.`,
        ...(lock.reason ? [mrkdwn`_${lock.reason}_`] : []),
      ]),
    ),
    { type: 'actions', elements: [extendButton(lock), unlockButton(lock)] },
    contextBlock(
      mrkdwn`Locked since ${until(lock.since, Date.parse(at))} · pipeline ${lock.pipeline} · ${code(`/flow locks ${lock.pipeline}`)}`,
    ),
  ];
  return { text: fallbackText(`🔒 Your lock on ${lock.target} expires at ${until(lock.until, Date.parse(at))}`), blocks };
}

/** An approval request waiting over an hour, to the people who may approve it: Approve or Reject. */
function approvalWaiting(n: ApprovalWaitingNudge, at: string): { text: string; blocks: KnownBlock[] } {
  const r = n.request;
  const waited = duration(Math.max(0, Date.parse(at) - Date.parse(r.createdAt)));
  const left = r.needed - r.approvals.length;
  const blocks: KnownBlock[] = [
    section(
      joinMrkdwn([
        mrkdwn`:raising_hand: *${r.pipeline}*: request ${r.id} has waited ${waited} for approval`,
        mrkdwn`${r.requester} asks to ship: *${r.description}*`,
      ]),
    ),
    {
      type: 'actions',
      elements: [
        approveButton({ id: r.id, description: r.description, needed: r.needed, approved: r.approvals.length }),
        rejectButton(r.id),
      ],
    },
    contextBlock(
      mrkdwn`Needs ${plural(left, 'more approval')} · expires ${until(r.expiresAt, Date.parse(at))} · you may approve it: you have deploy on ${r.pipeline} · ${code(`/flow approvals ${r.pipeline}`)}`,
    ),
  ];
  return { text: fallbackText(`🙋 Request ${r.id} has waited ${waited} for your approval: ${r.description}`), blocks };
}

/** A dyno in a crash loop: its last lines and Restart. */
function crashLoop(pipeline: string, n: CrashLoopNudge): { text: string; blocks: KnownBlock[] } {
  const status = n.exitCode === null ? 'it could not start' : `exit ${n.exitCode}`;
  const blocks: KnownBlock[] = [
    section(
      mrkdwn`:rotating_light: *${pipeline}*: *${n.app}* ${n.dyno} keeps crashing (${status}): crashed again and again since ${until(n.since)}. flowops keeps restarting it, backing off up to 5 minutes.`,
    ),
  ];
  if (n.lines.length) blocks.push(section(codeBlock(n.lines.join('\n'), 2500, 'end')));
  blocks.push({ type: 'actions', elements: [restartButton(n.app, n.dyno)] });
  blocks.push(contextBlock(mrkdwn`${code(`/flow logs ${n.app}`)} · ${code(`/flow ps ${n.app}`)} · ${onceADay(pipeline)}`));
  return { text: fallbackText(`🚨 ${pipeline}: ${n.app} ${n.dyno} keeps crashing (${status})`), blocks };
}

/** The weekly digest: the week's delivery metrics (the chart follows in its thread). */
function digest(pipeline: string, n: DigestNudge): { text: string; blocks: KnownBlock[] } {
  const m = metricsMessage(n.metrics);
  const deployments = n.metrics.deploymentFrequency.deployments;
  return {
    text: fallbackText(`📊 ${pipeline}: weekly digest, ${n.week}: ${plural(deployments, 'production deployment')} in the last 7 days`),
    blocks: [
      section(mrkdwn`:bar_chart: *${pipeline}*: weekly digest, ${n.week}`),
      ...m.blocks,
      contextBlock(mrkdwn`flowops posts this digest on Mondays · ${code(`/flow unsubscribe ${pipeline} --digest`)} stops it`),
    ],
  };
}
