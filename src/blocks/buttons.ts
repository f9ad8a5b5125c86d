import type { Button } from '@slack/types';
import type { LockView, PromoteOffer, ReleaseRef, RollbackOffer } from '../engine/views.ts';
import { short, until } from '../format.ts';
import type { Commit } from '../source/source.ts';
import { actionButton } from './actions.ts';
import { MAX_CONFIRM_TEXT, truncate } from './limits.ts';
import { mrkdwn, mrkdwnText, truncateMrkdwn, type Mrkdwn } from './mrkdwn.ts';

const plain = (text: string, max = 75) => ({ type: 'plain_text' as const, text: truncate(text, max) });
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `intro` then one line per commit, within a confirm dialog's 300 characters (counted after escaping). */
export function commitList(intro: Mrkdwn, ahead: number, commits: Commit[], max = MAX_CONFIRM_TEXT): Mrkdwn {
  let text = intro;
  for (const [i, commit] of commits.entries()) {
    const line = mrkdwn`• ${short(commit.sha)} ${commit.message} (${commit.author})`;
    const rest = ahead - i - 1;
    const more = rest > 0 ? mrkdwn`\n…and ${rest} more` : mrkdwn``;
    if (mrkdwn`${text}\n${line}${more}`.text.length > max) return truncateMrkdwn(mrkdwn`${text}\n…and ${ahead - i} more`, max);
    text = mrkdwn`${text}\n${line}`;
  }
  return truncateMrkdwn(text, max);
}

/** What a promotion would ship, for its confirm dialog. */
export function promoteSummary(offer: PromoteOffer): Mrkdwn {
  if (offer.unlisted)
    return offer.first
      ? mrkdwn`First release to ${offer.downstream}. (flowops could not list its commits just now.)`
      : mrkdwn`Ships the commits ${offer.downstream} does not run yet. (flowops could not list them just now.)`;
  const intro = offer.first
    ? mrkdwn`First release to ${offer.downstream}: ships ${plural(offer.ahead, 'commit')}:`
    : mrkdwn`Ships ${plural(offer.ahead, 'commit')} to ${offer.downstream}:`;
  return commitList(intro, offer.ahead, offer.commits);
}

/** **Promote to <stage>**: opens the promote dialog (the commits it ships, the apps, a note). The value names the release it was shown for. */
export function promoteButton(p: {
  pipeline: string;
  app: string;
  version: number;
  offer: PromoteOffer;
  primary?: boolean;
  /** Name the app on the button (an operation with several apps has one button per app). */
  named?: boolean;
}): Button {
  return actionButton(
    'promote',
    { p: p.pipeline, a: p.app, v: p.version },
    {
      ...(p.primary === false ? {} : { style: 'primary' as const }),
      text: plain(p.named ? `Promote ${p.app} to ${p.offer.downstream}` : `Promote to ${p.offer.downstream}`),
    },
  );
}

/** **Roll back to vN**, dangerous, confirmed with both versions and the commits it takes away. */
export function rollbackButton(offer: RollbackOffer, named = false): Button {
  const { from, to } = offer;
  const intro = mrkdwn`${from.app} goes from v${from.version} (${short(from.commit)}) back to v${to.version} (${short(to.commit)}), with v${to.version}'s slug and config vars.`;
  const text = offer.ahead
    ? commitList(mrkdwn`${intro} It takes away ${plural(offer.ahead, 'commit')}:`, offer.ahead, offer.commits)
    : intro;
  return actionButton(
    'rollback',
    { a: from.app, v: from.version },
    {
      style: 'danger',
      text: plain(named ? `Roll back ${from.app} to v${to.version}` : `Roll back to v${to.version}`),
      confirm: {
        title: plain(`Roll back ${from.app}?`, 100),
        text: mrkdwnText(text, MAX_CONFIRM_TEXT),
        confirm: plain(`Roll back to v${to.version}`, 30),
        deny: plain('Cancel', 30),
        style: 'danger',
      },
    },
  );
}

/** **Re-release vN** after a rollback: the release it went back from, again (its slug and config). */
export function rereleaseButton(release: ReleaseRef, current: number, named = false): Button {
  return actionButton(
    'rerelease',
    { a: release.app, v: release.version, c: current },
    {
      text: plain(named ? `Re-release ${release.app} v${release.version}` : `Re-release v${release.version}`),
      confirm: {
        title: plain(`Release ${release.app} v${release.version} again?`, 100),
        text: mrkdwnText(
          mrkdwn`A new release of ${release.app} with v${release.version}'s slug (${short(release.commit)}) and config vars, in place of v${current}.`,
        ),
        confirm: plain('Re-release', 30),
        deny: plain('Cancel', 30),
      },
    },
  );
}

export function retryButton(p: { pipeline: string; app: string; stage: string; commit: string; named?: boolean }): Button {
  return actionButton(
    'retry',
    { p: p.pipeline, a: p.app, s: p.stage, c: p.commit },
    { style: 'primary', text: plain(p.named ? `Retry ${p.app}` : 'Retry') },
  );
}

export function outputButton(app: string, version: number, named = false): Button {
  return actionButton('output', { a: app, v: version }, { text: plain(named ? `Output of ${app} v${version}` : 'Output') });
}

/** **Unlock** beside a deploy lock, confirmed (it lets everyone ship there again). */
export function unlockButton(lock: LockView): Button {
  return actionButton(
    'unlock',
    { t: lock.target, i: lock.id },
    {
      text: plain(`Unlock ${lock.target}`),
      confirm: {
        title: plain(`Unlock ${lock.target}?`, 100),
        text: mrkdwnText(
          mrkdwn`${lock.holder} locked it${lock.reason ? ` ("${lock.reason}")` : ''}. Unlocked, anyone with deploy can ship there again.`,
        ),
        confirm: plain('Unlock', 30),
        deny: plain('Cancel', 30),
      },
    },
  );
}

/** **Extend 1h** on a lock's reminder: its holder keeps it an hour longer (operate and holding it are checked on the click). */
export function extendButton(lock: LockView): Button {
  return actionButton('extend', { t: lock.target, i: lock.id }, { style: 'primary', text: plain('Extend 1h') });
}

/** **Approve**, confirmed with what it ships: with the last approval it needs, it ships at once. */
export function approveButton(request: { id: number; description: string; needed: number; approved: number }): Button {
  const last = request.approved + 1 >= request.needed;
  return actionButton(
    'approve',
    { i: request.id },
    {
      style: 'primary',
      text: plain('Approve'),
      confirm: {
        title: plain('Approve this request?', 100),
        text: mrkdwnText(
          last
            ? mrkdwn`${request.description}: it ships as soon as you approve.`
            : mrkdwn`${request.description}: ${plural(request.needed - request.approved - 1, 'more approval')} after yours.`,
          MAX_CONFIRM_TEXT,
        ),
        confirm: plain(last ? 'Approve and ship' : 'Approve', 30),
        deny: plain('Cancel', 30),
      },
    },
  );
}

/** **Reject**: opens a dialog that asks why. */
export function rejectButton(id: number): Button {
  return actionButton('reject', { i: id }, { style: 'danger', text: plain('Reject') });
}

/** "🔒 shop-staging is locked by ada until 14:05 UTC: migrating the database". */
/** **Restart web.1**: restarts a crashed dyno now instead of after its back-off (deploy is checked on the click). */
export function restartButton(app: string, dyno: string): Button {
  return actionButton('restart', { a: app, d: dyno }, { text: { type: 'plain_text', text: truncate(`Restart ${dyno}`, 75) } });
}

export function lockLine(lock: LockView): Mrkdwn {
  return mrkdwn`:lock: ${lock.target} is locked by ${lock.holder} until ${until(lock.until)}${lock.reason ? `: ${lock.reason}` : ''}`;
}

export function rerunButton(pipeline: string, number: number, primary = true): Button {
  return actionButton(
    'ci_rerun',
    { p: pipeline, n: number },
    { ...(primary ? { style: 'primary' as const } : {}), text: plain('Re-run tests') },
  );
}
