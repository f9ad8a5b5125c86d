import type { KnownBlock } from '@slack/types';
import type { AuditRecordView, AuditView, Result } from '../api/types.ts';
import { age, outcomeText, short, until } from '../format.ts';
import { MAX_BLOCKS_MESSAGE, MAX_TEXT } from './limits.ts';
import {
  channelMention,
  code,
  codeBlock,
  contextBlock,
  joinMrkdwn,
  link,
  mention,
  mrkdwn,
  section,
  slackMessage,
  type Mrkdwn,
} from './mrkdwn.ts';

/** A command's answer as Slack shows it. */
export type Answer = { text: string; blocks: KnownBlock[] };

/**
 * The commands whose answer is a table (or a program's output): Slack shows
 * them as the CLI prints them, in a code block. Every other answer is a
 * sentence or a list in mrkdwn, with people and channels as mentions.
 */
export const TABLE_ANSWERS: ReadonlySet<string> = new Set([
  'releases',
  'releases:output',
  'diff',
  'config',
  'ci:info',
  'pipelines',
  'ps',
  'ps:scale',
  'apps',
  'apps:info',
]);

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function answer(m: Mrkdwn, more: Mrkdwn[] = []): Answer {
  return slackMessage(m, [section(m), ...more.map((x) => section(x))].slice(0, MAX_BLOCKS_MESSAGE));
}

/** A list in as many sections as it needs (3,000 characters each). */
function list(title: Mrkdwn, items: Mrkdwn[]): Answer {
  const sections: Mrkdwn[] = [];
  let current = title;
  for (const item of items) {
    const next = mrkdwn`${current}\n• ${item}`;
    if (next.text.length > 2900) {
      sections.push(current);
      current = mrkdwn`• ${item}`;
    } else current = next;
  }
  sections.push(current);
  return slackMessage(
    title,
    sections.slice(0, MAX_BLOCKS_MESSAGE).map((s) => section(s)),
  );
}

/** How many records of the audit trail one Slack answer shows (the newest); the CLI shows 500. */
export const MAX_AUDIT_LINES = 40;

const OUTCOME_ICONS: Record<AuditRecordView['outcome'], string> = {
  done: ':white_check_mark:',
  running: ':arrows_counterclockwise:',
  failed: ':x:',
  refused: ':no_entry:',
  'pending approval': ':hourglass_flowing_sand:',
  approved: ':heavy_check_mark:',
  rejected: ':no_entry_sign:',
  withdrawn: ':leftwards_arrow_with_hook:',
  expired: ':hourglass:',
};

/**
 * `/flow audit`: one line per record, oldest first, the newest MAX_AUDIT_LINES of them,
 * with people as mentions; what was left out, and how to see it, below.
 */
function auditAnswer(view: AuditView, person: (name: string) => Mrkdwn): Answer {
  const scope = mrkdwn`${view.pipeline} since ${view.since.slice(0, 16).replace('T', ' ')} UTC${view.user ? ` by ${view.user}` : ''}`;
  if (!view.records.length) return answer(mrkdwn`No audit records of ${scope}.`);
  const shown = view.records.slice(-MAX_AUDIT_LINES);
  const hidden = view.omitted + view.records.length - shown.length;
  const lines = shown.map(
    (r) =>
      mrkdwn`${code(r.at.slice(0, 19).replace('T', ' '))} ${r.via === 'github' || r.via === 'system' ? mrkdwn`${r.actor}` : person(r.actor)} (${r.via}) *${r.action}* ${r.target || '-'} · ${OUTCOME_ICONS[r.outcome] ?? ''} ${outcomeText(r)}${r.detail ? mrkdwn` · ${r.detail}` : mrkdwn``}`,
  );
  const count = plural(view.records.length + view.omitted, 'record');
  // The fallback (notifications, screen readers) without the title's bold.
  const body = {
    ...list(mrkdwn`*Audit trail of ${scope}* · ${count}, times in UTC`, lines),
    text: mrkdwn`Audit trail of ${scope}: ${count}`.text,
  };
  if (!hidden) return body;
  return {
    ...body,
    blocks: [
      ...body.blocks.slice(0, MAX_BLOCKS_MESSAGE - 1),
      contextBlock(
        mrkdwn`${plural(hidden, 'earlier record')} not shown: narrow with ${code('--since')} or ${code('--user')}, or run ${code(`flowops audit ${view.pipeline}`)} in a terminal (up to 500)`,
      ),
    ],
  };
}

/**
 * A command's answer in mrkdwn, or null for the answers that are tables
 * (TABLE_ANSWERS). `people` maps flowops user names to Slack user ids, so a
 * grant names the person as a mention.
 */
export function commandAnswer(result: Result, people: Record<string, string>): Answer | null {
  if (result.kind === 'operation' || TABLE_ANSWERS.has(result.command)) return null;
  const person = (name: string) => mention({ name, slackUser: people[name] ?? null });
  switch (result.command) {
    case 'help': {
      // `help <command>`: its usage and what it does (the whole list is helpAnswer).
      const [usage = '', ...summary] = result.data.split('\n');
      if (summary.length > 2) return null;
      return answer(mrkdwn`${code(`/flow ${usage}`)} ${summary.join(' ').trim()}`);
    }
    case 'pipelines:create':
    case 'pipelines:connect': {
      const p = result.data;
      return answer(mrkdwn`:white_check_mark: Pipeline *${p.name}* takes its code from ${code(p.repo)} (branch ${code(p.branch)})`);
    }
    case 'pipelines:info':
      return null;
    case 'pipelines:destroy': {
      const d = result.data;
      return answer(mrkdwn`:wastebasket: Destroyed pipeline *${d.name}*${d.apps.length ? ` and ${d.apps.join(', ')}` : ''}`);
    }
    case 'apps:create':
      return answer(
        mrkdwn`:white_check_mark: Created *${result.data.name}* in ${result.data.stage} of ${result.data.pipeline}${result.data.namespace ? mrkdwn`, on Kubernetes in namespace \`${result.data.namespace}\`` : ''}`,
      );
    case 'apps:move':
      return answer(mrkdwn`:white_check_mark: Moved *${result.data.name}* to ${result.data.stage}`);
    case 'apps:destroy':
      return answer(mrkdwn`:wastebasket: Destroyed *${result.data.name}*`);
    case 'access': {
      const rows = result.data;
      if (!rows.length)
        return answer(mrkdwn`No grants yet: admins can do everything. \`/flow access:add <pipeline> @someone deploy\` gives one.`);
      const floor = result.note ? [mrkdwn`_${result.note}_`] : [];
      return list(mrkdwn`*Who can do what*`, [...rows.map((r) => mrkdwn`${person(r.user)}: ${r.permission}`), ...floor]);
    }
    case 'access:add':
      return answer(mrkdwn`:white_check_mark: ${person(result.data.user)} now has *${result.data.permission}*`);
    case 'login': {
      const l = result.data;
      // Ephemeral, like every answer: only the person who typed it sees the code.
      return 'code' in l
        ? answer(
            mrkdwn`:key: Type this in your terminal within 10 minutes, with your own flowops token: ${code(`flowops login ${l.code}`)}\nIt links this Slack account to your CLI user: one person, one set of grants. The code works once.`,
          )
        : answer(mrkdwn`:white_check_mark: Linked to ${l.user}`);
    }
    case 'access:default': {
      const d = result.data;
      return answer(
        d.permission === 'none'
          ? mrkdwn`:white_check_mark: *${d.pipeline}*: only people with a grant can see it`
          : mrkdwn`:white_check_mark: *${d.pipeline}*: every member of this workspace has at least *${d.permission}*`,
      );
    }
    case 'access:remove': {
      const r = result.data;
      return answer(
        r.floor
          ? mrkdwn`:white_check_mark: ${person(r.user)} no longer has a grant; as a member of this workspace they still have *${r.floor}* (\`/flow access:default\`)`
          : mrkdwn`:white_check_mark: ${person(r.user)} no longer has access`,
      );
    }
    case 'users:create': {
      const u = result.data;
      // Shown once, only to whoever typed it (the answer is ephemeral); a code span so it copies cleanly.
      return answer(
        mrkdwn`:key: Created user *${u.name}*. Their token, shown this once: ${code(u.token)}\nGive it to ${u.name} as \`FLOW_TOKEN\`.`,
      );
    }
    case 'ci': {
      const runs = result.data;
      if (!runs.length) return answer(mrkdwn`No test runs yet. With \`/flow ci:enable\`, every push to the repository starts one.`);
      const icon: Record<string, string> = {
        succeeded: ':white_check_mark:',
        failed: ':x:',
        errored: ':warning:',
        cancelled: ':heavy_minus_sign:',
      };
      return list(
        mrkdwn`*Test runs*`,
        runs.map(
          (r) =>
            mrkdwn`${icon[r.status] ?? ':hourglass_flowing_sand:'} #${r.number} ${r.status} · ${code(short(r.commit))}${r.branch ? mrkdwn` on ${code(r.branch)}` : mrkdwn``} · ${age(r.createdAt)}`,
        ),
      );
    }
    case 'ci:rerun':
      return answer(
        mrkdwn`:arrows_counterclockwise: Started test run #${result.data.number} of ${code(short(result.data.commit))}; its result comes to the pipeline's feeds.`,
      );
    case 'ci:cancel':
      return answer(mrkdwn`:heavy_minus_sign: Cancelled test run #${result.data.number}`);
    case 'ci:enable':
    case 'ci:disable':
      return answer(mrkdwn`:white_check_mark: CI is *${result.data.ci ? 'on' : 'off'}* for ${result.data.pipeline}`);
    case 'autodeploy:enable':
    case 'autodeploy:disable': {
      const a = result.data;
      return answer(
        a.autodeploy
          ? mrkdwn`:white_check_mark: Pushes to ${code(a.autodeploy.branch)} deploy to ${a.autodeploy.stage} of ${a.pipeline}${a.autodeploy.waitForCi ? ' once CI passes' : ''}`
          : mrkdwn`:white_check_mark: Auto-deploy is off for ${a.pipeline}`,
      );
    }
    case 'reviewapps': {
      const rows = result.data;
      if (!rows.length) return answer(mrkdwn`No review apps yet.`);
      return list(
        mrkdwn`*Review apps*`,
        rows.map(
          (r) =>
            mrkdwn`#${r.pr} ${r.url ? link(r.url, r.app) : r.app} · ${r.status} · ${code(r.branch)} ${code(short(r.commit))}${r.error ? ` · ${r.error.split('\n')[0]!}` : ''}`,
        ),
      );
    }
    case 'reviewapps:enable':
    case 'reviewapps:disable': {
      const r = result.data;
      if (!r.reviewApps) return answer(mrkdwn`:white_check_mark: Review apps are off for ${r.pipeline}`);
      const s = r.reviewApps;
      return answer(
        mrkdwn`:white_check_mark: Review apps are on for ${r.pipeline}: ${s.autodeploy ? `created for every pull request${s.waitForCi ? ' once CI passes' : ''}` : 'created with `/flow reviewapps:create`'}${s.autodestroy ? `, destroyed after ${plural(s.staleDays, 'day')} without a push` : ''}`,
      );
    }
    case 'reviewapps:create':
    case 'reviewapps:destroy': {
      const r = result.data;
      return answer(
        mrkdwn`Review app ${r.url ? link(r.url, r.app) : r.app} for #${r.pr}: ${r.status}${r.error ? ` (${r.error.split('\n')[0]!})` : ''}`,
      );
    }
    case 'lock': {
      const l = result.data;
      return answer(
        mrkdwn`:lock: Locked *${l.target}* until ${until(l.until)}${l.reason ? `: ${l.reason}` : ''}. Only ${person(l.holder)} can ship there; \`/flow unlock ${l.target}\` ends it.`,
      );
    }
    case 'unlock':
      return answer(mrkdwn`:unlock: Unlocked *${result.data.target}*`);
    case 'locks': {
      const rows = result.data;
      if (!rows.length) return answer(mrkdwn`No deploy locks. \`/flow lock <app>\` takes one.`);
      return list(
        mrkdwn`*Deploy locks*`,
        rows.map((l) => mrkdwn`:lock: *${l.target}* by ${person(l.holder)} until ${until(l.until)}${l.reason ? `: ${l.reason}` : ''}`),
      );
    }
    case 'subscribe': {
      const sub = result.data;
      return answer(
        mrkdwn`:white_check_mark: ${channelMention(sub.channel)} now follows *${sub.pipeline}*: ${sub.events.join(', ')}${sub.optIns.length ? ` + ${sub.optIns.join(', ')}` : ''}`,
      );
    }
    case 'unsubscribe':
      if (result.data.stopped)
        return answer(
          mrkdwn`:white_check_mark: ${channelMention(result.data.channel)} still follows *${result.data.pipeline}*, without ${result.data.stopped.join(', ')}`,
        );
      return answer(mrkdwn`:white_check_mark: ${channelMention(result.data.channel)} no longer follows *${result.data.pipeline}*`);
    case 'subscriptions': {
      const rows = result.data;
      if (!rows.length) return answer(mrkdwn`This channel follows no pipeline. \`/flow subscribe <pipeline>\` makes it a feed.`);
      return list(
        mrkdwn`*This channel follows*`,
        rows.map((r) => mrkdwn`*${r.pipeline}*: ${r.events.join(', ')}${r.optIns.length ? ` + ${r.optIns.join(', ')}` : ''}`),
      );
    }
    case 'audit':
      return auditAnswer(result.data, person);
    case 'logs': {
      const { app, lines } = result.data;
      if (!lines.length) return answer(mrkdwn`No log lines for *${app}* yet.`);
      // The newest lines that fit a message; `--tail` follows the log in a terminal.
      return answer(mrkdwn`*${app}*: the last lines of its log · ${code(`flowops logs ${app} --tail`)} follows it`, [
        codeBlock(lines.join('\n'), MAX_TEXT - 100, 'end'),
      ]);
    }
    default:
      return null;
  }
}

/** `/flow help`: short sections by topic, each command with what it does; the full reference is in the README. */
export function helpAnswer(topics: { title: string; commands: { usage: string; summary: string }[] }[]): Answer {
  const blocks: KnownBlock[] = [
    section(mrkdwn`*flowops* ships your pipelines from Slack. \`/flow help <command>\` says more about one command.`),
  ];
  for (const topic of topics) {
    blocks.push(
      section(joinMrkdwn([mrkdwn`*${topic.title}*`, ...topic.commands.map((c) => mrkdwn`${code(`/flow ${c.usage}`)} ${c.summary}`)])),
    );
  }
  return slackMessage(mrkdwn`flowops commands: /flow help <command> for one`, blocks.slice(0, MAX_BLOCKS_MESSAGE));
}
