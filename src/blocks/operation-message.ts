import type { Button, KnownBlock } from '@slack/types';
import type { MetricsView } from '../api/types.ts';
import { DOWNSTREAM } from '../engine/stages.ts';
import type { LockView, OperationDetails, OperationReport, OperationView, Person, ReleaseFate, ReportTarget } from '../engine/views.ts';
import { duration, short } from '../format.ts';
import { lockLine, outputButton, promoteButton, rereleaseButton, retryButton, rollbackButton, unlockButton } from './buttons.ts';
import type { SourceLinks } from './links.ts';
import { MAX_TEXT } from './limits.ts';
import { code, codeBlock, contextBlock, fallbackText, joinMrkdwn, link, mention, mrkdwn, section, type Mrkdwn } from './mrkdwn.ts';

/** A thread reply a message wants under it: posted once (by key), updated if it changes. */
export interface ThreadReply {
  key: string;
  text: string;
  blocks: KnownBlock[];
  /** Also shown in the channel (`reply_broadcast`): failures that need their person. */
  broadcast: boolean;
}

/** A message as the notifier keeps it: what it shows now, whether it has buttons, and the replies in its thread. */
export interface Card {
  text: string;
  blocks: KnownBlock[];
  /** It shows buttons, so it is redrawn when something newer happens in its pipeline. */
  live: boolean;
  replies: ThreadReply[];
  /** A chart of these metrics goes in its thread once it is posted (the weekly digest). */
  chart?: MetricsView;
}

/** How many lines of output a failure's thread reply quotes. */
const TAIL_LINES = 15;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The last lines of some output, for a thread reply. */
export function lastLines(output: string, lines = TAIL_LINES): string {
  return output.trimEnd().split('\n').slice(-lines).join('\n');
}

/** A commit as a link to its page when the source has pages, else its short sha. */
export function commitLink(links: SourceLinks, sha: string | null): Mrkdwn {
  if (!sha) return mrkdwn``;
  const url = links.commit(sha);
  return url ? link(url, code(short(sha))) : code(short(sha));
}

/** How a person is credited: a mention for Slack users; a name and where they came from for everyone else. */
export function byline(person: Person): Mrkdwn {
  if (person.via === 'slack') return mention(person);
  const where: Record<string, string> = { cli: 'CLI', api: 'API', github: 'GitHub', system: 'flowops' };
  return person.via === 'system' ? mrkdwn`${person.name}` : mrkdwn`${person.name} (${where[person.via] ?? person.via})`;
}

function failurePhrase(t: ReportTarget): string {
  if (t.phase === 'build') return 'failed to build';
  if (t.phase === 'release') return 'failed in the release phase';
  if (t.phase === 'start') return 'failed to start';
  const why = t.error?.split('\n')[0];
  return why ? `failed: ${why}` : 'failed';
}

function servingPhrase(t: ReportTarget): string {
  if (t.stage === 'destroyed') return 'the app is gone';
  return t.serving ? `v${t.serving.version} still serving` : 'nothing was serving yet';
}

/** "shop-staging v6" or, before the release exists, "shop-staging". */
const releaseName = (t: ReportTarget) => (t.version ? `${t.app} v${t.version}` : t.app);

function appLink(t: ReportTarget): Mrkdwn {
  return t.url && t.status === 'succeeded' ? link(t.url, releaseName(t)) : mrkdwn`${releaseName(t)}`;
}

/** What the operation does ("Deploying 1a2b3c4 to shop-staging") or did ("Deployed 1a2b3c4 to shop-staging"). */
function doing(report: OperationReport, tense: 'now' | 'done' = 'now'): string {
  const d = report.details;
  const apps = report.targets.map((t) => t.app).join(', ');
  const verb = (now: string, done: string) => (tense === 'now' ? now : done);
  switch (report.operation.kind) {
    case 'deploy':
      return `${verb('Deploying', 'Deployed')} ${short(d.commit?.sha)} to ${apps}`;
    case 'promote': {
      const from = d.promotion?.from;
      return `${verb('Promoting', 'Promoted')} ${from ? `${from.app} v${from.version} ` : ''}to ${apps}`;
    }
    case 'rollback': {
      const r = d.rollback;
      if (r?.again) return `${verb('Re-releasing', 'Re-released')} ${r.to.app} v${r.to.version}`;
      return r
        ? `${verb('Rolling back', 'Rolled back')} ${r.from.app} from v${r.from.version} to v${r.to.version}`
        : `${verb('Rolling back', 'Rolled back')} ${apps}`;
    }
    case 'config':
      return tense === 'now'
        ? report.operation.description.replace(/^Set /, 'Setting ').replace(/^Remove /, 'Removing ')
        : report.operation.description;
  }
}

/** One line per target, for an operation with several. */
function targetLine(t: ReportTarget): Mrkdwn {
  if (t.status === 'succeeded') return mrkdwn`:white_check_mark: ${appLink(t)} is live`;
  if (t.status === 'failed') return mrkdwn`:x: ${releaseName(t)} ${failurePhrase(t)} — ${servingPhrase(t)}`;
  return t.releasing ? mrkdwn`:hourglass_flowing_sand: ${releaseName(t)}: releasing` : mrkdwn`:hourglass: ${t.app}: waiting`;
}

/** The outcome, first: "✅ *shop-staging v5 is live*", "❌ *shop-staging v6 failed in the release phase* — v5 still serving". */
export function outcome(report: OperationReport): { blocks: Mrkdwn; text: string } {
  const op = report.operation;
  const [only] = report.targets.length === 1 ? report.targets : [];
  if (op.status === 'pending' || op.status === 'running') {
    const step = report.step?.trim().replace(/\.{3}$/, '');
    return {
      blocks: mrkdwn`:rocket: *${doing(report)}*\n:hourglass_flowing_sand: ${step || 'Waiting for its turn'}…`,
      text: `🚀 ${doing(report)}${step ? `: ${step}` : ''}`,
    };
  }
  if (op.status === 'succeeded') {
    if (only) return { blocks: mrkdwn`:white_check_mark: *${appLink(only)} is live*`, text: `✅ ${releaseName(only)} is live` };
    const live = report.targets.map(releaseName).join(', ');
    return { blocks: mrkdwn`:white_check_mark: *${doing(report, 'done')}*`, text: `✅ ${live} live` };
  }
  if (only) {
    const what = `${releaseName(only)} ${failurePhrase(only)}`;
    return { blocks: mrkdwn`:x: *${what}* — ${servingPhrase(only)}`, text: `❌ ${what} — ${servingPhrase(only)}` };
  }
  const failed = report.targets.filter((t) => t.status === 'failed');
  const some = failed.length && failed.length < report.targets.length ? ` for ${failed.map((t) => t.app).join(', ')}` : '';
  const what = `${failedWhat(report)} failed${some}`;
  return { blocks: mrkdwn`:x: *${what}*`, text: `❌ ${what}` };
}

/** The operation as a noun, for "… failed": "Deploy of 1a2b3c4 to shop-us, shop-eu". */
function failedWhat(report: OperationReport): string {
  const d = report.details;
  const apps = report.targets.map((t) => t.app).join(', ');
  switch (report.operation.kind) {
    case 'deploy':
      return `Deploy of ${short(d.commit?.sha)} to ${apps}`;
    case 'promote':
      return `Promotion${d.promotion ? ` of ${d.promotion.from.app} v${d.promotion.from.version}` : ''} to ${apps}`;
    case 'rollback':
      return d.rollback?.again ? `Re-release of ${apps} v${d.rollback.to.version}` : `Rollback of ${apps}`;
    case 'config':
      return report.operation.description;
  }
}

/** What the operation ships: the commit and its subject, the commits a promotion adds, what a rollback goes back to. */
export function whatChanged(
  op: { kind: OperationView['kind']; description: string },
  d: OperationDetails,
  links: SourceLinks,
): Mrkdwn | null {
  switch (op.kind) {
    case 'deploy':
      if (!d.commit) return null;
      return d.commit.subject ? mrkdwn`${commitLink(links, d.commit.sha)} ${d.commit.subject}` : commitLink(links, d.commit.sha);
    case 'promote': {
      const p = d.promotion;
      if (!p) return null;
      const count = plural(p.ahead, 'commit');
      const compare = p.base && p.from.commit ? links.compare(p.base, p.from.commit) : null;
      const commits = p.ahead === 0 ? mrkdwn`no new commits` : compare ? link(compare, count) : mrkdwn`${count}`;
      return mrkdwn`From ${p.from.app} v${p.from.version} ${commitLink(links, p.from.commit)} · ${commits}${p.base ? mrkdwn`` : mrkdwn` (first release)`}`;
    }
    case 'rollback': {
      const r = d.rollback;
      if (!r) return null;
      if (r.again)
        return mrkdwn`v${r.to.version} ${commitLink(links, r.to.commit)} again, in place of v${r.from.version} ${commitLink(links, r.from.commit)}`;
      return mrkdwn`Back from v${r.from.version} ${commitLink(links, r.from.commit)} to v${r.to.version} ${commitLink(links, r.to.commit)}`;
    }
    case 'config':
      return mrkdwn`${op.description}`;
  }
}

/** The line that says why a message's buttons went. */
export function fateLine(fate: ReleaseFate, stage: string): Mrkdwn {
  const by = (p: Person | null) => (p ? mrkdwn` by ${byline(p)}` : mrkdwn``);
  switch (fate.kind) {
    case 'promoted': {
      const to = fate.to.map((r) => `${r.app} v${r.version}`).join(', ');
      return mrkdwn`:arrow_right: Promoted to ${DOWNSTREAM[stage as keyof typeof DOWNSTREAM] ?? 'the next stage'}${by(fate.by)} — ${to}`;
    }
    case 'rolled_back':
      return fate.to
        ? mrkdwn`:rewind: Rolled back to v${fate.to}${by(fate.by)} (now v${fate.now.version})`
        : mrkdwn`:rewind: Rolled back${by(fate.by)} (now v${fate.now.version})`;
    case 'superseded':
      return mrkdwn`:information_source: Superseded by v${fate.now.version}${by(fate.by)}`;
  }
}

/** The deploy locks on an operation's apps, each once (a stage's lock covers several apps). */
function locksOn(report: OperationReport): LockView[] {
  return [...new Map(report.targets.flatMap((t) => (t.lock ? [[t.lock.target, t.lock] as const] : []))).values()];
}

/** Who started it and how long it took: "Started by @ada · 42s". No internal ids. */
function credit(report: OperationReport): Mrkdwn {
  const took = report.endedAt ? mrkdwn` · ${duration(Date.parse(report.endedAt) - Date.parse(report.startedAt))}` : mrkdwn``;
  return mrkdwn`Started by ${byline(report.actor)}${took}`;
}

/**
 * The buttons that still apply, one group per app (an actions block each:
 * Slack wants an action id once per block), at most one primary in all. With
 * several apps, each button names its app.
 */
export function operationButtons(report: OperationReport): Button[][] {
  const op = report.operation;
  const pipeline = op.pipeline;
  if (!pipeline) return [];
  const named = report.targets.length > 1;
  const groups: Button[][] = [];
  let primary = true;
  for (const t of report.targets) {
    const buttons: Button[] = [];
    if (t.fate) continue;
    if (t.status === 'succeeded' && t.version) {
      if (t.promote) {
        buttons.push(promoteButton({ pipeline, app: t.app, version: t.version, offer: t.promote, primary, named }));
        primary = false;
      }
      if (t.rollback) buttons.push(rollbackButton(t.rollback, named));
      if (t.rerelease) buttons.push(rereleaseButton(t.rerelease, t.version, named));
      if (t.output.trim() && buttons.length) buttons.push(outputButton(t.app, t.version, named));
    } else if (t.status === 'failed' && op.status === 'failed') {
      const failed = failureButtons(report, t, primary, named);
      if (failed.some((b) => b.style === 'primary')) primary = false;
      buttons.push(...failed);
    }
    if (buttons.length) groups.push(buttons);
  }
  // Each lock on the operation's apps once (a stage's lock covers several), in a row of its own.
  for (const lock of locksOn(report)) groups.push([unlockButton(lock)]);
  // A message has at most 50 blocks; an operation on more apps than that leaves the rest to the CLI.
  return groups.slice(0, 20);
}

/** **Retry** (a deploy, while nothing newer was released) and **Output** (a release that ran) on a failed target. */
function failureButtons(report: OperationReport, t: ReportTarget, primary: boolean, named: boolean): Button[] {
  const pipeline = report.operation.pipeline;
  if (t.fate || t.stage === 'destroyed' || !pipeline) return [];
  const buttons: Button[] = [];
  const commit = report.details.commit?.sha;
  if (report.operation.kind === 'deploy' && commit) {
    const retry = retryButton({ pipeline, app: t.app, stage: t.stage, commit, named });
    buttons.push(primary ? retry : { ...retry, style: undefined });
  }
  if (t.version) buttons.push(outputButton(t.app, t.version, named));
  return buttons;
}

/**
 * The thread replies of a failure: its person mentioned, broadcast, with the
 * end of the output and what to do. One build that failed is one reply, however
 * many apps it was for.
 */
function failureReplies(report: OperationReport): ThreadReply[] {
  if (report.operation.status !== 'failed') return [];
  const replies: ThreadReply[] = [];
  const who = report.actor.via === 'slack' ? mrkdwn`${mention(report.actor)} ` : mrkdwn``;
  const failed = report.targets.filter((x) => x.status === 'failed');
  const unbuilt = failed.filter((t) => t.phase === 'build');
  const named = report.targets.length > 1;
  if (unbuilt.length) {
    const what =
      unbuilt.length === 1
        ? `${releaseName(unbuilt[0]!)} failed to build — ${servingPhrase(unbuilt[0]!)}`
        : `${failedWhat(report)} failed to build`;
    const blocks: KnownBlock[] = [section(mrkdwn`${who}:x: *${what}*`)];
    if (report.buildOutput?.trim()) blocks.push(section(codeBlock(lastLines(report.buildOutput), MAX_TEXT, 'end')));
    const retry = unbuilt.flatMap((t) => failureButtons(report, t, true, named).filter((b) => b.action_id === 'retry')).slice(0, 1);
    if (retry.length) blocks.push({ type: 'actions', elements: retry });
    replies.push({ key: 'fail:build', text: fallbackText(`❌ ${what}`), blocks, broadcast: true });
  }
  for (const t of failed.filter((x) => x.phase !== 'build')) {
    const what = `${releaseName(t)} ${failurePhrase(t)} — ${servingPhrase(t)}`;
    const blocks: KnownBlock[] = [section(mrkdwn`${who}:x: *${what}*`)];
    if (t.output.trim()) blocks.push(section(codeBlock(lastLines(t.output), MAX_TEXT, 'end')));
    const buttons = failureButtons(report, t, true, named);
    if (buttons.length) blocks.push({ type: 'actions', elements: buttons });
    replies.push({ key: `fail:${t.app}@${t.version ?? 'build'}`, text: fallbackText(`❌ ${what}`), blocks, broadcast: true });
  }
  return replies.slice(0, 10);
}

/** The parts of an operation a message shows, for the operation's own message and for a push's. */
export function operationParts(
  report: OperationReport,
  links: SourceLinks,
): { outcome: Mrkdwn; changed: Mrkdwn | null; more: Mrkdwn[]; text: string; buttons: Button[][]; fates: Mrkdwn[]; replies: ThreadReply[] } {
  const out = outcome(report);
  const more: Mrkdwn[] = [];
  if (report.details.note) more.push(mrkdwn`:memo: ${report.details.note}`);
  if (report.targets.length > 1) more.push(joinMrkdwn(report.targets.map(targetLine)));
  const op = report.operation;
  if (op.error && op.status === 'failed' && !report.targets.some((t) => t.error === op.error))
    more.push(mrkdwn`:warning: ${op.error.split('\n')[0]!}`);
  return {
    outcome: out.blocks,
    changed: whatChanged(report.operation, report.details, links),
    more,
    text: out.text,
    buttons: operationButtons(report),
    fates: [...report.targets.flatMap((t) => (t.fate ? [fateLine(t.fate, t.stage)] : [])), ...locksOn(report).map(lockLine)],
    replies: failureReplies(report),
  };
}

/** The one message that follows a deploy, promotion, rollback or config change: outcome first, then what changed, then who. */
export function operationMessage(report: OperationReport, links: SourceLinks): Card {
  const parts = operationParts(report, links);
  const blocks: KnownBlock[] = [section(joinMrkdwn([parts.outcome, ...(parts.changed ? [parts.changed] : []), ...parts.more]))];
  for (const [i, group] of parts.buttons.entries()) blocks.push({ type: 'actions', block_id: `operation_actions_${i}`, elements: group });
  blocks.push(contextBlock(joinMrkdwn([credit(report), ...parts.fates], '\n')));
  return { text: fallbackText(parts.text), blocks, live: parts.buttons.length > 0, replies: parts.replies };
}
