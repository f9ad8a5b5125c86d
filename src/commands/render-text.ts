import { age, metricsRows, noMetrics, outcomeText, short, until } from '../format.ts';
import type { AppView, ApprovalView, AuditRecordView, AuditView, OperationView, ProcessesView, ReleaseView, Result } from '../api/types.ts';

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

function releaseLine(r: ReleaseView): string[] {
  return [`v${r.version}`, r.description, r.status + (r.current ? ' (current)' : ''), short(r.commit), age(r.createdAt)];
}

/** `ps` in Heroku's layout: a heading per process type with its command and count, then each dyno's state since when. */
function processes(p: ProcessesView): string {
  const types = Object.keys(p.formation);
  if (!types.length) return `${p.app} runs no processes: deploy a release with a Procfile first.`;
  return types
    .map((type) => {
      const dynos = p.dynos.filter((d) => d.type === type);
      const command = p.commands[type] ?? dynos[0]?.command ?? '';
      const lines = dynos.map((d) => {
        const since = d.since
          .replace('T', ' ')
          .replace(/\.\d+Z$/, ' +0000')
          .replaceAll('-', '/');
        const exit = d.state === 'crashed' && d.exitCode !== null ? ` (exit ${d.exitCode})` : '';
        return `${d.name}: ${d.state}${exit} ${since} (~ ${age(d.since)})`;
      });
      return [`=== ${type}: \`${command}\` (${p.formation[type]})`, ...(lines.length ? lines : ['(scaled to 0)'])].join('\n');
    })
    .join('\n\n');
}

function appCard(app: AppView): string {
  const release = app.release ? `v${app.release.version} ${short(app.release.commit)} ${age(app.release.createdAt)}` : 'no release yet';
  const lock = app.lock
    ? `\n    locked by ${app.lock.holder} until ${until(app.lock.until)}${app.lock.reason ? `: ${app.lock.reason}` : ''}`
    : '';
  const crashed = app.crashed?.length ? `\n    crashed: ${app.crashed.join(', ')} (\`logs ${app.name}\`, \`ps:restart ${app.name}\`)` : '';
  return `  ${app.name.padEnd(24)} ${release}${app.url ? `  ${app.url}` : ''}${lock}${crashed}`;
}

/** The start of a long operation's progress line: "Promoting demo-staging v6 0f0a53b to demo (production)". */
export function operationHeadline(op: OperationView): string {
  const verbs: Record<string, string> = {
    Deploy: 'Deploying',
    Promote: 'Promoting',
    Rollback: 'Rolling back',
    Set: 'Setting',
    Remove: 'Removing',
  };
  const [first, ...rest] = op.description.split(' ');
  return [verbs[first!] ?? first, ...rest].join(' ');
}

/** One line per target once an operation has ended: "demo-staging: v3 succeeded". */
export function operationOutcome(op: OperationView): string {
  const lines = op.targets.map((t) => `  ${t.app}: ${t.version ? `v${t.version} ` : ''}${t.status}${t.error ? ` (${t.error})` : ''}`);
  if (op.error && !op.targets.some((t) => t.error === op.error)) lines.unshift(`  ${op.error}`);
  return lines.join('\n');
}

/** Where a request stands, in one line: "request 3: Promote shop-staging v5 … — approved by bob (1 of 1), shipped as operation 12". */
export function approvalLine(a: ApprovalView): string {
  const approved = a.approvals.length
    ? `approved by ${a.approvals.map((x) => x.user).join(', ')} (${a.approvals.length} of ${a.needed})`
    : '';
  const state: Record<ApprovalView['status'], string> = {
    pending: `waits for ${a.needed - a.approvals.length} more approval${a.needed - a.approvals.length === 1 ? '' : 's'} until ${until(a.expiresAt)}${approved ? `; ${approved}` : ''}`,
    approved: `${approved}; starting`,
    shipped: `${approved}; shipped as operation ${a.operation}`,
    rejected: `rejected by ${a.decidedBy}: ${a.reason}`,
    withdrawn: `withdrawn by ${a.decidedBy}: ${a.reason}`,
    expired: `expired at ${until(a.expiresAt)} without its approvals`,
    failed: `approved, but did not start: ${a.reason}`,
  };
  return `request ${a.id} (${a.requester}): ${a.description} — ${state[a.status]}`;
}

/** What the CLI says when an operation became an approval request. */
export function approvalNeeded(a: ApprovalView): string {
  return `${a.description} needs ${a.needed} approval${a.needed === 1 ? '' : 's'} (${a.pipeline}:${a.stage}): request ${a.id}.\nSomeone else with deploy on ${a.pipeline} approves it: \`approve ${a.id}\` (or the button in Slack). It expires at ${until(a.expiresAt)}.`;
}

/** A time as the audit trail shows it: `2026-11-23 09:48:40` (UTC). */
const auditTime = (iso: string) => iso.slice(0, 19).replace('T', ' ');

/** The audit trail's table (time, who, from, action, target, outcome, detail), one line per record, header first. */
export function auditTable(records: AuditRecordView[]): string[] {
  return table([
    ['Time (UTC)', 'Who', 'From', 'Action', 'Target', 'Outcome', 'Detail'],
    ...records.map((r) => [auditTime(r.at), r.actor, r.via, r.action, r.target || '-', outcomeText(r), r.detail ?? '']),
  ]).split('\n');
}

/** What an audit answer covers: "shop since 2026-11-16 09:48:40 UTC, by alice". */
export function auditScope(view: AuditView): string {
  return `${view.pipeline} since ${auditTime(view.since)} UTC${view.user ? `, by ${view.user}` : ''}`;
}

/** The line under a long audit answer: how many earlier records matched and how to see them. */
export function auditOmitted(view: AuditView, shown = view.records.length): string | null {
  const hidden = view.omitted + view.records.length - shown;
  return hidden
    ? `${hidden} earlier record${hidden === 1 ? '' : 's'} not shown: narrow with --since or --user (\`audit ${view.pipeline} --since 1d\`)`
    : null;
}

/** Renders a result as the text the CLI prints. */
export function renderText(result: Result): string {
  if (result.kind === 'operation') {
    const op = result.operation;
    return `${operationHeadline(op)}: operation ${op.id} ${op.status}\n${operationOutcome(op)}`;
  }
  if (result.kind === 'approval') return approvalNeeded(result.approval);
  // Kept for the default: a command of a newer server that this CLI does not know yet prints its data as JSON.
  const data: unknown = result.data;
  switch (result.command) {
    case 'help':
      return result.data;
    case 'pipelines': {
      const rows = result.data;
      if (!rows.length) return 'No pipelines you can see. An admin creates one: pipelines:create <name> --repo <path-or-url>';
      return table([['Pipeline', 'Apps', 'Branch', 'Repository'], ...rows.map((p) => [p.name, String(p.apps), p.branch, p.repo])]);
    }
    case 'pipelines:connect': {
      const p = result.data;
      return `Connected ${p.name} to ${p.repo} (branch ${p.branch})`;
    }
    case 'pipelines:create': {
      const p = result.data;
      return `Created pipeline ${p.name} from ${p.repo} (branch ${p.branch})`;
    }
    case 'pipelines:info': {
      const info = result.data;
      const stages = [...new Set(info.apps.map((a) => a.stage))];
      const body = stages.map((s) => [`${s}:`, ...info.apps.filter((a) => a.stage === s).map(appCard)].join('\n'));
      const warning =
        info.sandbox === 'none'
          ? [
              'Warning: this flowops runs repository code unsandboxed (builds, tests and apps can read its settings and data); install bubblewrap',
            ]
          : [];
      return [
        `=== ${info.name}  (${info.repo}, branch ${info.branch})`,
        ...warning,
        ...(body.length ? body : ['No apps yet: apps:create <app> --pipeline ' + info.name + ' --stage staging']),
      ].join('\n');
    }
    case 'pipelines:destroy': {
      const d = result.data;
      return `Destroyed pipeline ${d.name}${d.apps.length ? ` and ${d.apps.join(', ')}` : ''}`;
    }
    case 'apps:create':
      return `Created ${result.data.name} in ${result.data.stage} of ${result.data.pipeline}${result.data.namespace ? `, on Kubernetes in namespace ${result.data.namespace}` : ''}`;
    case 'apps:move':
      return `Moved ${result.data.name} to ${result.data.stage}`;
    case 'apps:destroy':
      return `Destroyed ${result.data.name}`;
    case 'releases': {
      const rows = result.data;
      if (!rows.length) return 'No releases yet.';
      return table(rows.map(releaseLine));
    }
    case 'releases:output': {
      const r = result.data;
      return `=== v${r.version} ${r.description} (${r.status})\n${r.output.trimEnd() || '(no output)'}`;
    }
    case 'config': {
      const vars = Object.entries(result.data).sort(([a], [b]) => a.localeCompare(b));
      if (!vars.length) return 'No config vars.';
      return table(vars.map(([k, v]) => [`${k}:`, v])) + (result.note ? `\n(${result.note})` : '');
    }
    case 'diff': {
      const diffs = result.data;
      if (!diffs.length) return 'Nothing to compare yet: deploy to a stage and its downstream first.';
      return diffs
        .map((d) => {
          const head = `${d.upstream} is ahead of ${d.downstream} by ${d.ahead} commit${d.ahead === 1 ? '' : 's'}`;
          return [head, ...d.commits.map((c) => `  ${short(c.sha)}  ${c.date.slice(0, 10)}  ${c.author}  ${c.message}`)].join('\n');
        })
        .join('\n\n');
    }
    case 'access': {
      const rows = result.data;
      const note = result.note ? `\n(${result.note})` : '';
      if (!rows.length) return `No grants yet (admins can do everything).${note}`;
      return table([['User', 'Permission'], ...rows.map((r) => [r.user, r.permission])]) + note;
    }
    case 'access:add': {
      const g = result.data;
      return `Gave ${g.user} ${g.permission}`;
    }
    case 'access:remove': {
      const r = result.data;
      return `Removed ${r.user}'s grant${r.floor ? `; as a member of the Slack workspace, ${r.user} still has ${r.floor} (access:default)` : ''}`;
    }
    case 'users': {
      const rows = result.data;
      return table([
        ['User', 'Admin', 'CLI token', 'Slack account', 'Linked from'],
        ...rows.map((u) => [u.name, u.admin ? 'yes' : '', u.cli ? 'yes' : '', u.slack ?? '', u.linkedFrom ?? '']),
      ]);
    }
    case 'users:unlink':
      return `Unlinked ${result.data.user} from the Slack account of ${result.data.slack}`;
    case 'login': {
      const l = result.data;
      return 'code' in l
        ? `Type this in your terminal within 10 minutes: flowops login ${l.code}`
        : `Linked: your Slack account (${l.slack}) is ${l.user} now; grants, locks and history are one person's`;
    }
    case 'access:default': {
      const d = result.data;
      return d.permission === 'none'
        ? `${d.pipeline}: only people with a grant can see it`
        : `${d.pipeline}: every member of the Slack workspace has at least ${d.permission}`;
    }
    case 'users:create': {
      const u = result.data;
      return `Created user ${u.name}. Token (shown once; give it to ${u.name} as FLOW_TOKEN):\n${u.token}`;
    }
    case 'ci': {
      const runs = result.data;
      if (!runs.length) return 'No test runs yet. With `ci:enable`, every push to the repository starts one.';
      return table(runs.map((r) => [`#${r.number}`, r.status, short(r.commit), r.branch ?? '-', age(r.createdAt)]));
    }
    case 'ci:info': {
      const r = result.data;
      return `=== Test run #${r.number} ${r.status}: ${short(r.commit)} on ${r.branch ?? '-'}\n${r.output.trimEnd() || '(no output yet)'}`;
    }
    case 'ci:rerun':
      return `Started test run #${result.data.number} of ${short(result.data.commit)}`;
    case 'ci:cancel':
      return `Cancelled test run #${result.data.number}`;
    case 'ci:enable':
    case 'ci:disable': {
      const c = result.data;
      return `CI is ${c.ci ? 'on' : 'off'} for ${c.pipeline}`;
    }
    case 'autodeploy:enable':
    case 'autodeploy:disable': {
      const a = result.data;
      return a.autodeploy
        ? `Pushes to ${a.autodeploy.branch} deploy to ${a.autodeploy.stage} of ${a.pipeline}${a.autodeploy.waitForCi ? ' once CI passes' : ''}`
        : `Auto-deploy is off for ${a.pipeline}`;
    }
    case 'reviewapps': {
      const rows = result.data;
      if (!rows.length) return 'No review apps yet.';
      return table(rows.map((r) => [`#${r.pr}`, r.app, r.status, r.branch, short(r.commit), r.url ?? r.error ?? '']));
    }
    case 'reviewapps:enable':
    case 'reviewapps:disable': {
      const r = result.data;
      if (!r.reviewApps) return `Review apps are off for ${r.pipeline}`;
      const s = r.reviewApps;
      return `Review apps are on for ${r.pipeline}: ${s.autodeploy ? `created for every pull request${s.waitForCi ? ' once CI passes' : ''}` : 'created with reviewapps:create'}${s.autodestroy ? `, destroyed after ${s.staleDays} days without a push` : ''}`;
    }
    case 'reviewapps:create':
    case 'reviewapps:destroy': {
      const r = result.data;
      return `Review app ${r.app} for #${r.pr}: ${r.status}${r.url ? ` at ${r.url}` : ''}${r.error ? ` (${r.error})` : ''}`;
    }
    case 'lock': {
      const l = result.data;
      return `Locked ${l.target} until ${until(l.until)}${l.reason ? `: ${l.reason}` : ''}. Only ${l.holder} can ship there; \`unlock ${l.target}\` ends it`;
    }
    case 'unlock':
      return `Unlocked ${result.data.target}`;
    case 'locks': {
      const rows = result.data;
      if (!rows.length) return 'No deploy locks.';
      return table([['Locked', 'By', 'Until', 'Reason'], ...rows.map((l) => [l.target, l.holder, until(l.until), l.reason ?? ''])]);
    }
    case 'approvals:require':
    case 'approvals:disable': {
      const r = result.data;
      return r.approvers
        ? `${r.pipeline}:${r.stage} needs ${r.approvers} approval${r.approvers === 1 ? '' : 's'}: deploys, promotions and rollbacks there wait for someone else with deploy to \`approve\` them`
        : `${r.pipeline}:${r.stage} no longer needs approvals`;
    }
    case 'approvals': {
      const { rules, requests } = result.data;
      const ruleLines = rules.length
        ? rules.map((r) => `${r.pipeline}:${r.stage} needs ${r.approvers} approval${r.approvers === 1 ? '' : 's'}`)
        : ['No stage needs approvals.'];
      const waiting = requests.length ? requests.map(approvalLine) : ['No requests waiting.'];
      return [...ruleLines, '', ...waiting].join('\n');
    }
    case 'approve':
    case 'reject':
      return approvalLine(result.data);
    case 'subscribe': {
      const sub = result.data;
      return `${sub.channel} is now a feed of ${sub.pipeline} (${sub.events.join(', ')}${sub.optIns.length ? ` + ${sub.optIns.join(', ')}` : ''})`;
    }
    case 'unsubscribe': {
      const sub = result.data;
      if (sub.stopped) return `${sub.channel} stays a feed of ${sub.pipeline}, without ${sub.stopped.join(', ')}`;
      return `${sub.channel} is no longer a feed of ${sub.pipeline}`;
    }
    case 'subscriptions': {
      const rows = result.data;
      if (!rows.length) return 'This channel is not a feed of any pipeline. `subscribe <pipeline>` makes it one.';
      return rows.map((r) => `${r.pipeline}: ${r.events.join(', ')}${r.optIns.length ? ` + ${r.optIns.join(', ')}` : ''}`).join('\n');
    }
    case 'logs':
      return result.data.lines.length ? result.data.lines.join('\n') : `No log lines of ${result.data.app} match.`;
    case 'ps':
    case 'ps:scale':
      return processes(result.data);
    case 'ps:restart':
      return result.data.dynos.length
        ? `Restarting ${result.data.dynos.join(', ')} of ${result.data.app}... done`
        : `${result.data.app} runs no dyno to restart.`;
    case 'ps:stop':
      return `Stopping ${result.data.dynos.join(', ')} of ${result.data.app}... done (idle until \`ps:restart\`, \`ps:scale\` or the next release)`;
    case 'apps': {
      const apps = result.data;
      if (!apps.length) return 'No apps you can see yet.';
      return table([['App', 'Pipeline', 'Stage', 'URL'], ...apps.map((a) => [a.name, a.pipeline, a.stage, a.url ?? ''])]);
    }
    case 'apps:info': {
      const a = result.data;
      return [
        `=== ${a.name}`,
        table([
          ['Pipeline:', `${a.pipeline} (${a.stage})`],
          ['Release:', a.release ? `v${a.release.version} ${short(a.release.commit)} ${age(a.release.createdAt)}` : 'none yet'],
          ['Web URL:', a.url ?? '(no web process)'],
          ...(a.lock ? [['Locked:', `by ${a.lock.holder} until ${until(a.lock.until)}`]] : []),
          ...(a.crashed?.length ? [['Crashed:', a.crashed.join(', ')]] : []),
        ]),
      ].join('\n');
    }
    case 'config:get':
      return result.data.value ?? '';
    case 'open':
      return result.data.url ?? `${result.data.app} has no web process, so no URL`;
    case 'audit': {
      const view = result.data;
      if (!view.records.length) return `No audit records of ${auditScope(view)}.`;
      const more = auditOmitted(view);
      return [...auditTable(view.records), ...(more ? [`(${more})`] : [])].join('\n');
    }
    case 'metrics': {
      const m = result.data;
      const rows = metricsRows(m);
      if (!rows.length) return noMetrics(m);
      const window = `${m.since.slice(0, 16).replace('T', ' ')} to ${m.until.slice(0, 16).replace('T', ' ')} UTC`;
      return [`=== ${m.pipeline}: production, last ${m.days} days (${window})`, table([['Key', 'Value', 'DORA band'], ...rows])].join('\n');
    }
    default: {
      // Every command this build knows has its case: a new one does not compile until it does.
      const unrendered: never = result;
      void unrendered;
      return JSON.stringify(data, null, 2);
    }
  }
}
