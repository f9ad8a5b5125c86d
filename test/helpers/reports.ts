import type { OperationReport, PullRequestReport, PushReport, ReportTarget } from '../../src/engine/views.ts';

/*
 * Reports as the engine gives them to the message builders, for the builders'
 * own tests (the end-to-end tests get theirs from a real engine).
 */

export const SHA = 'c'.repeat(40);

export function target(overrides: Partial<ReportTarget> = {}): ReportTarget {
  return {
    app: 'shop-staging',
    stage: 'staging',
    version: 4,
    commit: SHA,
    status: 'succeeded',
    releasing: true,
    output: '',
    current: true,
    url: 'http://shop-staging.localhost:5000',
    serving: null,
    fate: null,
    promote: null,
    rollback: null,
    rerelease: null,
    lock: null,
    ...overrides,
  };
}

export function operationReport(overrides: Partial<OperationReport> = {}, targets: ReportTarget[] = [target()]): OperationReport {
  return {
    operation: {
      id: 41,
      kind: 'deploy',
      pipeline: 'shop',
      status: 'succeeded',
      description: `Deploy ccccccc to ${targets.map((t) => t.app).join(', ')} (staging)`,
      targets: targets.map((t) => ({ app: t.app, version: t.version, status: t.status })),
      error: null,
      createdAt: '2026-11-23T10:00:00.000Z',
    },
    repo: 'github:acme/shop',
    actor: { name: 'ada', slackUser: 'UADA', via: 'slack' },
    details: { commit: { sha: SHA, subject: 'Add search', author: 'Ada' } },
    step: null,
    startedAt: '2026-11-23T10:00:00.000Z',
    endedAt: '2026-11-23T10:00:42.000Z',
    buildOutput: null,
    targets,
    ...overrides,
  };
}

export function pullRequestReport(overrides: Partial<PullRequestReport> = {}): PullRequestReport {
  return {
    pipeline: 'shop',
    repo: 'github:acme/shop',
    number: 7,
    title: 'Add search',
    author: 'octocat',
    branch: 'feature/search',
    headSha: SHA,
    state: 'open',
    pushes: 0,
    tests: null,
    reviewApp: null,
    ...overrides,
  };
}

export function pushReport(overrides: Partial<PushReport> = {}): PushReport {
  return {
    pipeline: 'shop',
    repo: 'github:acme/shop',
    sha: SHA,
    branch: 'main',
    subject: 'Add search',
    pusher: 'octocat',
    tests: null,
    autodeploy: null,
    autodeployNote: null,
    operation: null,
    ...overrides,
  };
}
