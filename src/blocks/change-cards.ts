import type { Button, KnownBlock } from '@slack/types';
import type { PullRequestReport, PushReport, TestRunBrief } from '../engine/views.ts';
import { short } from '../format.ts';
import { rerunButton } from './buttons.ts';
import type { SourceLinks } from './links.ts';
import { MAX_TEXT } from './limits.ts';
import { code, codeBlock, contextBlock, fallbackText, joinMrkdwn, link, mrkdwn, section, type Mrkdwn } from './mrkdwn.ts';
import { commitLink, lastLines, operationParts, type Card, type ThreadReply } from './operation-message.ts';

/*
 * The messages that follow a change rather than an operation: one per pull
 * request (opened, its tests, its review app, pushes, merged or closed) and one
 * per push to the deploy branch (its tests and the auto-deploy they lead to).
 * Titles, branches and authors come from GitHub: text, never markup.
 */

const ENDED = new Set(['succeeded', 'failed', 'errored', 'cancelled']);

function testsLine(run: TestRunBrief | null): { line: Mrkdwn; text: string } | null {
  if (!run) return null;
  switch (run.status) {
    case 'succeeded':
      return { line: mrkdwn`:white_check_mark: Tests passed (run #${run.number})`, text: 'tests passed' };
    case 'failed':
      return { line: mrkdwn`:x: Tests failed (run #${run.number})`, text: 'tests failed' };
    case 'errored':
      return { line: mrkdwn`:warning: Tests could not run (run #${run.number})`, text: 'tests could not run' };
    case 'cancelled':
      return { line: mrkdwn`:heavy_minus_sign: Tests cancelled (run #${run.number})`, text: 'tests cancelled' };
    default:
      return { line: mrkdwn`:hourglass_flowing_sand: Tests ${run.status} (run #${run.number})…`, text: `tests ${run.status}` };
  }
}

/** Re-run applies to a run that did not pass and that no newer run on its branch replaced. */
function rerunOf(pipeline: string, run: TestRunBrief | null, primary: boolean): Button | null {
  return run && ENDED.has(run.status) && run.status !== 'succeeded' && run.latest ? rerunButton(pipeline, run.number, primary) : null;
}

/** A failed run's output, in the thread. Re-run stays on the message itself, where it is retired when it no longer applies. */
function testFailureReply(run: TestRunBrief | null, where: Mrkdwn, whereText: string, broadcast: boolean): ThreadReply[] {
  if (!run || (run.status !== 'failed' && run.status !== 'errored')) return [];
  const blocks: KnownBlock[] = [
    section(mrkdwn`:x: *Tests ${run.status === 'failed' ? 'failed' : 'could not run'}* on ${where} (run #${run.number})`),
  ];
  if (run.output.trim()) blocks.push(section(codeBlock(lastLines(run.output), MAX_TEXT, 'end')));
  return [
    { key: `tests#${run.number}`, text: fallbackText(`❌ Tests ${run.status} on ${whereText} (run #${run.number})`), blocks, broadcast },
  ];
}

/** The one message of a pull request: title and state, its tests, its review app, its pushes. */
export function pullRequestCard(pr: PullRequestReport, links: SourceLinks): Card {
  const url = links.pull(pr.number);
  const title = url ? link(url, `#${pr.number} ${pr.title}`) : mrkdwn`#${pr.number} ${pr.title}`;
  const icon = pr.state === 'merged' ? ':twisted_rightwards_arrows:' : pr.state === 'closed' ? ':no_entry_sign:' : ':arrow_heading_up:';
  const state = pr.state === 'open' ? mrkdwn`` : mrkdwn` ${pr.state}`;
  // The title is not bold: a `*` in it would end the bold early, and Slack has no escape for it.
  const lines: Mrkdwn[] = [mrkdwn`${icon} ${title}${state}\n${code(pr.branch)}${pr.author ? mrkdwn` by ${pr.author}` : mrkdwn``}`];
  const texts = [`PR #${pr.number} ${pr.title}${pr.state === 'open' ? '' : ` ${pr.state}`}`];
  const tests = testsLine(pr.tests);
  if (tests) {
    lines.push(tests.line);
    texts.push(tests.text);
  }
  const ra = pr.reviewApp;
  if (ra) {
    let line: Mrkdwn;
    if (ra.status === 'deleted' || ra.status === 'deleting')
      line = mrkdwn`:wastebasket: Review app ${ra.app} ${ra.status === 'deleted' ? 'destroyed' : 'being destroyed'}`;
    else if (ra.status === 'errored')
      line = mrkdwn`:warning: Review app ${ra.app} failed: ${(ra.error ?? 'unknown error').split('\n')[0]!}`;
    else if (ra.deploying || ra.status !== 'created')
      line = mrkdwn`:hourglass_flowing_sand: Review app ${ra.app}: deploying ${short(pr.headSha)}…`;
    else line = mrkdwn`:eyes: Review app ${ra.url ? link(ra.url, ra.app) : ra.app} is up`;
    lines.push(line);
    texts.push(ra.status === 'created' && !ra.deploying ? 'review app up' : `review app ${ra.status}`);
  }
  const blocks: KnownBlock[] = [section(joinMrkdwn(lines))];
  const rerun = pr.state === 'open' ? rerunOf(pr.pipeline, pr.tests, true) : null;
  if (rerun) blocks.push({ type: 'actions', block_id: 'pull_request_actions', elements: [rerun] });
  const pushes = pr.pushes ? mrkdwn`${pr.pushes} push${pr.pushes === 1 ? '' : 'es'} since opened · ` : mrkdwn``;
  blocks.push(contextBlock(mrkdwn`${pr.pipeline} · ${pushes}head ${commitLink(links, pr.headSha)}`));
  const replies = testFailureReply(pr.tests, mrkdwn`#${pr.number}`, `#${pr.number}`, false);
  if (ra?.status === 'errored')
    replies.push({
      key: `reviewapp@${pr.headSha}`,
      text: fallbackText(`⚠️ Review app ${ra.app} failed`),
      blocks: [
        section(
          mrkdwn`:warning: *Review app ${ra.app} failed* on ${short(pr.headSha)}:\n${codeBlock(ra.error ?? 'unknown error', 2000, 'end')}`,
        ),
      ],
      broadcast: false,
    });
  return { text: fallbackText(texts.join(' · ')), blocks, live: !!rerun, replies };
}

/** The one message of a push to the deploy branch: the commit, its tests, and the auto-deploy it led to. */
export function pushCard(push: PushReport, links: SourceLinks): Card {
  const subject = push.subject ? mrkdwn` ${push.subject}` : mrkdwn``;
  const lines: Mrkdwn[] = [mrkdwn`:arrow_up: ${push.pusher} pushed ${commitLink(links, push.sha)} to ${code(push.branch)}${subject}`];
  const texts = [`${push.branch} ${short(push.sha)}`];
  const tests = testsLine(push.tests);
  if (tests) {
    lines.push(tests.line);
    texts.push(tests.text);
  }
  const groups: Button[][] = [];
  const replies: ThreadReply[] = [];
  const fates: Mrkdwn[] = [];
  if (push.operation) {
    const parts = operationParts(push.operation, links);
    lines.push(parts.outcome, ...parts.more);
    texts.push(parts.text.replace(/^\S+ /, ''));
    groups.push(...parts.buttons);
    replies.push(...parts.replies);
    fates.push(...parts.fates);
  } else if (push.autodeployNote) {
    lines.push(mrkdwn`:double_vertical_bar: ${push.autodeployNote}`);
    texts.push('not deployed');
  } else if (push.autodeploy?.waitForCi && push.tests && !ENDED.has(push.tests.status)) {
    lines.push(mrkdwn`:hourglass: Deploys to ${push.autodeploy.stage} once the tests pass`);
  } else if (push.autodeploy?.waitForCi && push.tests && push.tests.status !== 'succeeded') {
    lines.push(mrkdwn`:double_vertical_bar: Not deployed to ${push.autodeploy.stage}: the tests did not pass`);
  }
  const rerun = rerunOf(push.pipeline, push.tests, !groups.flat().some((b) => b.style === 'primary'));
  if (rerun) groups.push([rerun]);
  const blocks: KnownBlock[] = [section(joinMrkdwn(lines))];
  for (const [i, group] of groups.entries()) blocks.push({ type: 'actions', block_id: `push_actions_${i}`, elements: group });
  blocks.push(contextBlock(joinMrkdwn([mrkdwn`${push.pipeline}`, ...fates], '\n')));
  replies.unshift(...testFailureReply(push.tests, code(push.branch), push.branch, true));
  const failed = push.tests?.status === 'failed' || push.operation?.operation.status === 'failed';
  return { text: fallbackText(`${failed ? '❌' : '⬆️'} ${texts.join(' · ')}`), blocks, live: groups.length > 0, replies };
}
